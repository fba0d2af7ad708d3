"""Web speed at arXiv scale: `paperwire serve` over a synthetic corpus of N papers, loaded by wrk.

    python bench/web.py --n 1000000                # builds (or reuses) the corpus of bench/search.py
    python bench/web.py --n 1000000 --workers 2 --seconds 20

wrk (Debian package `wrk`) runs in its own process on loopback with keep-alive connections; each
scenario cycles through its own list of URLs. Scenarios:

- `healthz`: the framework's ceiling on this machine (no search): the baseline the others are compared to;
- `api cold`: `/api/papers/search` (the Hugging Face-compatible API) with 4,000 distinct queries, so that
  the result cache never answers (every request runs a search);
- `api popular`: the same endpoint with 100 popular queries (what the result cache is for);
- `page cold`: the HTML search page `/search` with distinct queries (search + template).

Without `--vectors` the index has no vectors, so the API's hybrid ranking runs as keyword ranking; with
`--vectors` (after bench/hybrid.py) every distinct API query is also embedded by MiniLM on the CPU and
searched in the nearest-neighbour graph, as on a deployment whose papers are embedded.

For each: requests/s, p50/p99 latency, errors, the ratio to `healthz`, and the server's CPU time per
request (all its processes; steadier than requests/s on a shared host); then the server's RSS.

wrk holds its connections busy, so at saturation its latencies are the queue it builds. The target
("≥ 500 req/s with p99 ≤ 100 ms") is a latency at a rate: bench/loadgen.py then sends the API's distinct
queries, shuffled (the kinds mixed as users mix them), at each constant rate of `--rates`, timing every
request from when it was due.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote_plus

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.search import build_store, make_queries  # noqa: E402
from bench.synthetic import CorpusModel  # noqa: E402
from paperwire.search.keyword import KeywordIndex  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = r"""
local paths = {}
for line in io.lines(os.getenv("PW_PATHS")) do paths[#paths + 1] = line end
local counter = 0
function setup(thread)
  thread:set("start", counter * 7919)
  counter = counter + 1
end
local i = nil
function request()
  if i == nil then i = start end
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
"""


def start_server(env: dict[str, str], port: int, workers: int) -> subprocess.Popen:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"port {port} is taken: the run would measure that server, not this one")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "paperwire.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
        ],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode} (is port {port} taken?)")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not start")


def wrk(url: str, paths: list[str], seconds: int, connections: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "paths.txt").write_text("\n".join(paths) + "\n")
        (Path(tmp) / "cycle.lua").write_text(WRK_SCRIPT)
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "--timeout",
                "5s",
                "-s",
                str(Path(tmp) / "cycle.lua"),
                url,
            ],
            env={**os.environ, "PW_PATHS": str(Path(tmp) / "paths.txt")},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    latency = {q: _ms(re.search(rf"\s{q}%\s+([\d.]+\w+)", out)[1]) for q in ("50", "99")}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50": latency["50"],
        "p99": latency["99"],
        "errors": int(errors[1]) if errors else 0,
        "socket": socket_errors[1] if socket_errors else "",
    }


def open_loop(url: str, paths: list[str], rate: float, seconds: int) -> dict:
    """bench/loadgen.py in its own process: ``paths`` at ``rate`` requests/s."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "paths.txt").write_text("\n".join(paths) + "\n")
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "loadgen.py"),
                "--url",
                url,
                "--paths",
                str(Path(tmp) / "paths.txt"),
                "--rate",
                str(rate),
                "--seconds",
                str(seconds),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return json.loads(out)


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def server_cpu(proc: subprocess.Popen) -> float:
    """CPU seconds (user + system) used so far by the server's processes: per request, the cost of a
    request, which a busy neighbour on the host changes far less than it changes requests/s."""
    root = psutil.Process(proc.pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def server_memory(proc: subprocess.Popen) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) over the server's processes: RSS counts the index pages every worker maps
    once per worker; PSS shares them out, so its sum is what the machine really holds."""
    root = psutil.Process(proc.pid)
    procs = [root, *root.children(recursive=True)]
    rss = sum(p.memory_info().rss for p in procs)
    pss = sum(p.memory_full_info().pss for p in procs)
    return rss, pss


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pwbench-search"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--rates",
        default="400,500,600",
        help="constant request rates (req/s, comma-separated) for the open-loop runs of the API",
    )
    parser.add_argument(
        "--vectors",
        action="store_true",
        help="serve with the random vectors (and graph) of bench/hybrid.py, so the API ranks by hybrid "
        "search and embeds every query, as a deployment with vectors does (run bench/hybrid.py first)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")

    work = args.workdir / str(args.n)
    work.mkdir(parents=True, exist_ok=True)
    # The server finds vectors at <index dir>/vectors/minilm: link bench/hybrid.py's there, or none.
    vectors_link = work / "index" / "vectors" / "minilm"
    vectors_link.parent.mkdir(parents=True, exist_ok=True)
    if vectors_link.is_symlink():
        vectors_link.unlink()
    if args.vectors:
        if not (work / "random-vectors" / "manifest.json").exists():
            raise SystemExit(
                f"no vectors in {work / 'random-vectors'}: run python bench/hybrid.py --n {args.n}"
            )
        vectors_link.symlink_to(work / "random-vectors")
    store = build_store(work / "paperwire.db", args.n)
    KeywordIndex(work / "index" / "keyword").catch_up(store)
    papers = store.count()
    store.close()

    model = CorpusModel(seed=1)
    queries = make_queries(model, 1000, seed=11)
    distinct = [q for kind in ("keyword", "typo", "prefix", "phrase/field") for q in queries[kind]]
    popular = queries["keyword"][:100]
    env = {
        "PAPERWIRE_DATA_DIR": str(work),
        "PAPERWIRE_DATABASE_URL": f"sqlite:///{work / 'paperwire.db'}",
        "PAPERWIRE_INDEX_DIR": str(work / "index"),
        "PAPERWIRE_SEARCH_RATE_LIMIT": "0",
    }
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{papers:,} papers; {args.workers} server workers; wrk 2 threads, {args.connections} connections, "
        f"{args.seconds} s per scenario (same run, same machine)"
    )
    proc = start_server(env, args.port, args.workers)
    url = f"http://127.0.0.1:{args.port}"
    try:
        # Warm the OS page cache as a running server would be (not the result cache: other queries).
        for q in queries["keyword"][-50:]:
            httpx.get(f"{url}/api/papers/search", params={"q": q}, timeout=30)
        scenarios = {
            "healthz (baseline)": ["/healthz"],
            "api cold": [f"/api/papers/search?q={quote_plus(q)}&limit=10" for q in distinct],
            "api popular": [f"/api/papers/search?q={quote_plus(q)}&limit=10" for q in popular],
            "page cold": [f"/search?q={quote_plus(q)}&mode=keyword" for q in reversed(distinct)],
        }
        print()
        print("| scenario | req/s | p50 ms | p99 ms | non-2xx | req/s vs healthz | server CPU ms/request |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        baseline = None
        for name, paths in scenarios.items():
            cpu_before = server_cpu(proc)
            result = wrk(url, paths, args.seconds, args.connections, 2)
            requests = result["rps"] * args.seconds
            cpu_ms = (server_cpu(proc) - cpu_before) * 1000 / max(1.0, requests)
            baseline = baseline or result["rps"]
            print(
                f"| {name} | {result['rps']:,.0f} | {result['p50']:.1f} | {result['p99']:.1f} | "
                f"{result['errors']} | {result['rps'] / baseline:.2f} | {cpu_ms:.2f} |"
                + (f" socket errors: {result['socket']}" if result["socket"] else "")
            )
        mixed = scenarios["api cold"][:]
        random.Random(3).shuffle(mixed)
        print()
        print(
            f"Open loop (bench/loadgen.py, {args.seconds} s per rate, up to 64 connections): `/api/papers/search` "
            "with the distinct queries, shuffled"
        )
        print()
        print(
            "| offered req/s | answered req/s | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU ms/request |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for rate in [float(r) for r in args.rates.split(",") if r.strip()]:
            cpu_before = server_cpu(proc)
            r = open_loop(url, mixed, rate, args.seconds)
            cpu_ms = (server_cpu(proc) - cpu_before) * 1000 / max(1, r["answered"])
            errors = r["non_2xx"] + r["failed"] + r["unanswered"]
            print(
                f"| {rate:,.0f} | {r['achieved_rps']:,.0f} | {r['p50']:.1f} | {r['p90']:.1f} | {r['p99']:.1f} | "
                f"{r['max']:.1f} | {errors} | {cpu_ms:.2f} |"
            )
        rss, pss = server_memory(proc)
        print(
            f"\nserver memory after the run, all processes: RSS {rss / 2**20:,.0f} MiB, PSS {pss / 2**20:,.0f} MiB"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
