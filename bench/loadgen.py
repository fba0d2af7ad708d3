"""An open-loop HTTP load generator: requests at a constant rate, latency from when each was due.

    python bench/loadgen.py --url http://127.0.0.1:8765 --paths paths.txt --rate 500 --seconds 20

wrk keeps a fixed number of connections busy (a closed loop): at saturation its latencies are mostly
the queue it builds itself, and below saturation it cannot hold a rate. Here request i is due at
start + i / rate whatever the server does, and its latency counts from then (a request that waits for
a free connection waits on the clock, which avoids coordinated omission, as wrk2 does). Prints one JSON
object: offered and achieved rate, latency percentiles in ms, errors (non-2xx, failed connections,
requests not answered within the run plus a grace period), and the p99 of each second of the run (a
stall shows as a spike there; a rate the server cannot hold, as a climb).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

try:
    import uvloop
except ImportError:  # the standard loop: the generator costs more CPU, it still holds the rate
    uvloop = None

GRACE_SECONDS = 10.0


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def get(self, request: bytes) -> int:
        """One keep-alive GET; the response's status."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is None:
            raise ValueError("response without Content-Length")
        await self.reader.readexactly(length)
        return status


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run(url: str, paths: list[str], rate: float, seconds: float, connections: int) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode() for p in paths]
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(Connection(*await asyncio.open_connection(host, port)))
    latencies: list[float] = []
    by_second: dict[int, list[float]] = {}
    errors = {"status": 0, "failed": 0}

    async def one(request: bytes, due: float) -> None:
        conn = await idle.get()
        try:
            status = await conn.get(request)
        except (OSError, ValueError, asyncio.IncompleteReadError):
            errors["failed"] += 1
            conn.writer.close()
            try:
                conn = Connection(*await asyncio.open_connection(host, port))
            except OSError:
                return
        else:
            latencies.append((time.perf_counter() - due) * 1000)
            by_second.setdefault(int(due - start), []).append(latencies[-1])
            if not 200 <= status < 300:
                errors["status"] += 1
        idle.put_nowait(conn)

    total = int(rate * seconds)
    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.ensure_future(one(requests[i % len(requests)], due)))
    sent_for = time.perf_counter() - start
    done, pending = await asyncio.wait(tasks, timeout=GRACE_SECONDS) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    finished = time.perf_counter() - start
    return {
        "offered_rps": rate,
        "sent_rps": total / sent_for if sent_for > 0 else 0.0,
        "achieved_rps": len(latencies) / finished if finished > 0 else 0.0,
        "requests": total,
        "answered": len(latencies),
        "p50": percentile(latencies, 0.50),
        "p90": percentile(latencies, 0.90),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies, default=float("nan")),
        "non_2xx": errors["status"],
        "failed": errors["failed"],
        "unanswered": len(pending),
        "p99_by_second": [round(percentile(by_second[k], 0.99)) for k in sorted(by_second)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="http://host:port")
    parser.add_argument("--paths", required=True, help="file with one request path per line, cycled")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections to use")
    args = parser.parse_args()
    with open(args.paths, encoding="utf-8") as f:
        paths = [line.strip() for line in f if line.strip()]
    if not paths:
        raise SystemExit(f"{args.paths}: no paths")
    if uvloop is not None:
        uvloop.install()
    result = asyncio.run(run(args.url, paths, args.rate, args.seconds, args.connections))
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
