"""Snapshot import speed and memory: generate N synthetic snapshot records, import them, print a table.

    python bench/ingest.py                   # N = 1,000,000
    python bench/ingest.py --n 100000 --n 1000000

For each N it reports papers/s and peak RSS of the import (parent and parser processes), for a fresh
import and a re-import of the same file (all unchanged). As a baseline measured in the same run it also
times the raw floor: reading the file and json-decoding every line, so the ratio shows what parsing,
clean-up and the store cost on top of the machine's own speed.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.synthetic import write_snapshot  # noqa: E402


def raw_floor(path: Path) -> float:
    started = time.monotonic()
    n = 0
    with open(path, "rb") as f:
        for line in f:
            orjson.loads(line)
            n += 1
    return n / (time.monotonic() - started)


def timed_import(path: Path, env: dict) -> tuple[float, float, str]:
    """Run `paperwire import snapshot` as its own process; returns (seconds, peak RSS MB, summary).

    Peak RSS is the largest sum over the whole process tree (the writer and its parser process),
    sampled every 50 ms."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "paperwire.cli", "import", "snapshot", "--quiet", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.monotonic() - started
    out, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"import failed ({proc.returncode}): {err}")
    return seconds, peak / 1e6, out.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, action="append", help="corpus sizes (repeatable); default 1,000,000")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    sizes = args.n or [1_000_000]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="paperwire-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"# workdir: {workdir}")
    print(
        "| N | file MB | raw read+json papers/s | import papers/s | ratio to raw | re-import papers/s | peak RSS MB (all processes) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        path = workdir / f"snapshot-{n}.jsonl"
        if not path.exists():
            t = time.monotonic()
            write_snapshot(path, n)
            print(f"# generated {n:,} records in {time.monotonic() - t:.0f}s", file=sys.stderr)
        db = workdir / f"paperwire-{n}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        env = dict(os.environ, PAPERWIRE_DATABASE_URL=f"sqlite:///{db}", PAPERWIRE_DATA_DIR=str(workdir))
        floor = raw_floor(path)
        seconds, rss, summary = timed_import(path, env)
        re_seconds, re_rss, _ = timed_import(path, env)
        print(f"# {summary}", file=sys.stderr)
        rate = n / seconds
        print(
            f"| {n:,} | {path.stat().st_size / 1e6:,.0f} | {floor:,.0f} | {rate:,.0f} | {rate / floor:.2f} | "
            f"{n / re_seconds:,.0f} | {max(rss, re_rss):,.0f} |"
        )


if __name__ == "__main__":
    main()
