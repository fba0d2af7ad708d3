"""Digest sending at scale: N subscribers with varied topics, every digest composed and handed to SMTP.

    python bench/digest.py                                  # 100,000 subscribers
    python bench/digest.py --subscribers 20000 --reuse      # keep the built data dir between runs
    python bench/digest.py --subscribers 2000 --profile     # cProfile of compose_due, then deliver_due
    python bench/digest.py --compose-only                   # `digest run --no-deliver`: composing alone

Setup (not timed): a data dir with the bundled sample papers (`paperwire import sample`: 341 real papers,
a Hugging Face daily list with upvotes, keyword index and MiniLM vectors) and N active subscribers
bulk-inserted into `subscribers` / `subscriber_topics`. Their topics are drawn with a fixed seed from
realistic pools, popular items more often: the sample's categories (and whole archives, `cs.*`), its
authors, ~200 saved searches built from frequent title words and bigrams, and a few papers to be "like";
0-5 topics each; sizes 5-50; mostly daily, some weekly; delivery hours and time zones varied, each chosen
so that the subscriber is due at --now. With --recent the sample's papers are re-dated into the week
before its newest paper, so that topics find matches in the digest window (as on a live instance)
instead of nearly only the trending section.

Measured: `paperwire digest run --now ... -q` as its own process, exactly as cron would run it, mailing
through `PAPERWIRE_SMTP_URL=smtp+insecure://127.0.0.1:PORT` to an aiosmtpd sink in a process of its own
that only counts messages, bytes and recipients (so the sink's CPU is not in the measured process; on a
2-core machine it still takes much of one core). Compose and deliver seconds are the ones the command
prints, when it times them apart (since it delivers while composing, from a second process, it does
not); total is its wall time, start-up included; the sink stamps its first and last message; peak RSS
and CPU come from the kernel (wait4) for that process and its delivery process (CPU: both together;
RSS: the larger). The baseline, in the same run: as many
messages of the same mean size pushed through smtplib to the same sink (no composing, no database), so
the ratio is paperwire's overhead over the SMTP floor. At the end the sink must have received exactly
one message per due subscriber.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gzip
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import sysconfig
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.machine import cores_and_memory  # noqa: E402
from paperwire.cli import SAMPLE_DAILY_PATH, SAMPLE_PATH  # noqa: E402
from paperwire.digest.schedule import due_period  # noqa: E402
from paperwire.store import Store  # noqa: E402
from paperwire.store.schema import papers, subscriber_topics, subscribers  # noqa: E402
from paperwire.store.subscriptions import Subscriber  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATE = 330  # digests/s: 100,000 in about 5 minutes on the standard 2-core machine
DEFAULT_NOW = "2026-04-07T06:00:00+00:00"  # a Tuesday, the day after the sample's daily lists
BASE_URL = "https://paperwire.example.org"
LAYOUT = 1  # bump when the data dir's contents change, so --reuse rebuilds

TIMEZONES = {
    "UTC": 8,
    "Europe/London": 8,
    "Europe/Berlin": 12,
    "Europe/Paris": 6,
    "Europe/Moscow": 2,
    "Asia/Jerusalem": 2,
    "Africa/Nairobi": 1,
    "Asia/Kolkata": 6,
    "Asia/Shanghai": 8,
    "Asia/Seoul": 3,
    "Asia/Tokyo": 6,
    "Australia/Sydney": 3,
    "Pacific/Auckland": 1,
    "America/Sao_Paulo": 3,
    "America/New_York": 14,
    "America/Chicago": 5,
    "America/Denver": 2,
    "America/Los_Angeles": 10,
}
TOPIC_COUNTS = {0: 10, 1: 25, 2: 25, 3: 18, 4: 12, 5: 10}  # weights of 0..5 topics
TOPIC_KINDS = {"category": 40, "query": 30, "author": 20, "like": 10}
SIZES = [5, 10, 10, 10, 10, 15, 20, 20, 25, 30, 40, 50]
_STOPWORDS = (
    "a an and are as at be by for from in into is it its of on or our over the their this to towards "
    "under using via vs what when which with without based new study approach analysis toward through "
    "case two one can does how why beyond between within"
)
STOPWORDS = frozenset(_STOPWORDS.split())


def machine() -> str:
    return f"{cores_and_memory()}, Python {platform.python_version()}, SQLite (WAL)"


def paperwire_env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERWIRE_")}
    env.update(
        PAPERWIRE_DATA_DIR=str(data),
        PAPERWIRE_DATABASE_URL=f"sqlite:///{data / 'paperwire.db'}",
        PAPERWIRE_INDEX_DIR=str(data / "index"),
        PAPERWIRE_BASE_URL=BASE_URL,
        PAPERWIRE_SECRET_KEY="bench-digest-secret-key-not-for-production",
    )
    env.update(extra)
    return env


def cli(data: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "paperwire.cli", *args],
        env=paperwire_env(data),
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


# -- setup (not timed) ----------------------------------------------------------------------------------


def import_papers(data: Path, recent: bool, seed: int) -> None:
    if not recent:
        cli(data, "import", "sample", "-q")
        return
    # The same papers, re-dated into the week before the sample's newest paper.
    with gzip.open(SAMPLE_PATH, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    newest = max(datetime.fromisoformat(r["published"]) for r in records if r.get("published"))
    rng = random.Random(seed)
    for r in records:
        when = newest - timedelta(seconds=rng.randrange(7 * 86400))
        r["published"] = r["updated"] = when.isoformat()
    path = data / "recent-sample.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    cli(data, "import", "jsonl", str(path), "-q", "--no-index")
    cli(data, "import", "hf-daily", str(SAMPLE_DAILY_PATH), "-q")


def zipf_weights(n: int, s: float = 0.9) -> list[float]:
    return [1 / (rank + 1) ** s for rank in range(n)]


def topic_pools(store: Store, rng: random.Random) -> dict[str, tuple[list[str], list[float]]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            papers.select()
            .with_only_columns(
                papers.c.id, papers.c.title, papers.c.authors, papers.c.categories, papers.c.published
            )
            .where(papers.c.deleted.is_(False))
        ).all()
    categories: collections.Counter[str] = collections.Counter()
    authors: collections.Counter[str] = collections.Counter()
    words: collections.Counter[str] = collections.Counter()
    bigrams: collections.Counter[str] = collections.Counter()
    for r in rows:
        cats = r.categories.split()
        categories.update(cats)
        categories.update({f"{c.split('.')[0]}.*" for c in cats if "." in c})
        authors.update(a["name"] for a in json.loads(r.authors))
        tokens = [t.lower() for t in re.findall(r"[A-Za-z][A-Za-z0-9-]+", r.title)]
        words.update(t for t in tokens if len(t) >= 4 and t not in STOPWORDS)
        bigrams.update(
            f"{a} {b}"
            for a, b in zip(tokens, tokens[1:], strict=False)
            if a not in STOPWORDS and b not in STOPWORDS and len(a) > 2 and len(b) > 2
        )

    def ranked(counter: collections.Counter[str], limit: int | None = None) -> list[str]:
        return [k for k, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))][:limit]

    queries = list(dict.fromkeys(ranked(words, 120) + ranked(bigrams, 80)))
    rng.shuffle(queries)  # words and bigrams mixed in popularity
    newest = sorted((r for r in rows if r.published), key=lambda r: r.published, reverse=True)
    likes = [r.id for r in newest[:10]] + rng.sample([r.id for r in newest[10:]], 15)
    pools = {
        "category": ranked(categories),
        "author": ranked(authors),
        "query": queries,
        "like": likes,
    }
    return {kind: (values, zipf_weights(len(values))) for kind, values in pools.items()}


def due_hours(now: datetime) -> dict[tuple[str, str, bool], list[int]]:
    """Delivery hours at which a subscriber with this time zone, frequency and weekends flag is due at
    ``now``, as the product's own schedule decides."""
    confirmed = now - timedelta(days=30)
    table = {}
    for tz in TIMEZONES:
        for frequency in ("daily", "weekly"):
            for weekends in (False, True):
                hours = [
                    h
                    for h in range(24)
                    if due_period(
                        Subscriber(
                            id=0,
                            email="x@example.org",
                            user_id=None,
                            status="active",
                            created_at=confirmed,
                            confirmed_at=confirmed,
                            unsubscribed_at=None,
                            frequency=frequency,
                            hour=h,
                            timezone=tz,
                            size=10,
                            weekends=weekends,
                            empty_note=False,
                            token_version=1,
                            last_confirmation_sent_at=None,
                        ),
                        now,
                    )
                    is not None
                ]
                if hours:
                    table[(tz, frequency, weekends)] = hours
    return table


def email_of(i: int) -> str:
    return f"reader{i}@example.org"


def add_subscribers(store: Store, n: int, now: datetime, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    pools = topic_pools(store, rng)
    hours = due_hours(now)
    zones, zone_weights = list(TIMEZONES), list(TIMEZONES.values())
    counts, count_weights = list(TOPIC_COUNTS), list(TOPIC_COUNTS.values())
    kinds, kind_weights = list(TOPIC_KINDS), list(TOPIC_KINDS.values())
    sub_rows: list[dict] = []
    topic_rows: list[dict] = []
    stats = collections.Counter()
    distinct: set[tuple[str, str]] = set()

    def flush(conn) -> None:  # noqa: ANN001
        if sub_rows:
            conn.execute(subscribers.insert(), sub_rows)
        if topic_rows:
            conn.execute(subscriber_topics.insert(), topic_rows)
        sub_rows.clear()
        topic_rows.clear()

    with store.engine.begin() as conn:
        for i in range(1, n + 1):
            while True:
                tz = rng.choices(zones, zone_weights)[0]
                frequency = "weekly" if rng.random() < 0.15 else "daily"
                weekends = rng.random() < 0.2
                if (tz, frequency, weekends) in hours:
                    break
            created = now - timedelta(days=rng.randint(4, 400), seconds=rng.randrange(86400))
            sub_rows.append(
                {
                    "id": i,
                    "email": email_of(i),
                    "status": "active",
                    "created_at": created,
                    "confirmed_at": created + timedelta(minutes=rng.randint(1, 600)),
                    "frequency": frequency,
                    "hour": rng.choice(hours[(tz, frequency, weekends)]),
                    "timezone": tz,
                    "size": rng.choice(SIZES),
                    "weekends": weekends,
                    "empty_note": rng.random() < 0.1,
                    "token_version": 1,
                }
            )
            chosen: set[tuple[str, str]] = set()
            for _ in range(rng.choices(counts, count_weights)[0]):
                kind = rng.choices(kinds, kind_weights)[0]
                values, weights = pools[kind]
                chosen.add((kind, rng.choices(values, weights)[0]))
            for kind, value in chosen:
                topic_rows.append({"subscriber_id": i, "kind": kind, "value": value})
                stats[kind] += 1
            distinct |= chosen
            stats[frequency] += 1
            if len(sub_rows) >= 10_000:
                flush(conn)
        flush(conn)
    return {
        "topics per subscriber": sum(stats[k] for k in TOPIC_KINDS) / n,
        **{f"{k} topics": stats[k] for k in TOPIC_KINDS},
        "distinct topics": len(distinct),
        "weekly share": stats["weekly"] / n,
    }


def build(template: Path, n: int, now: datetime, seed: int, recent: bool, reuse: bool) -> dict:
    marker = template / "bench.json"
    params = {"layout": LAYOUT, "subscribers": n, "now": now.isoformat(), "seed": seed, "recent": recent}
    if reuse and marker.exists():
        built = json.loads(marker.read_text())
        if built["params"] == params:
            print(f"# reusing {template} (built in {built['seconds']:.0f} s)", file=sys.stderr)
            return built
    shutil.rmtree(template, ignore_errors=True)
    template.mkdir(parents=True)
    started = time.monotonic()
    import_papers(template, recent, seed)
    store = Store.open(f"sqlite:///{template / 'paperwire.db'}")
    try:
        t = time.monotonic()
        mix = add_subscribers(store, n, now, seed)
        print(f"# inserted {n:,} subscribers in {time.monotonic() - t:.1f} s", file=sys.stderr)
    finally:
        store.close()
    built = {"params": params, "mix": mix, "seconds": time.monotonic() - started}
    marker.write_text(json.dumps(built, indent=1))
    return built


def fresh_copy(template: Path, run: Path) -> None:
    """A copy of the built data dir to run in: a run marks every period done, so it cannot run twice."""
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(template, run, ignore=shutil.ignore_patterns("bench.json", "recent-sample.jsonl"))


# -- the SMTP sink (its own process) --------------------------------------------------------------------


def sink_main(conn, port: int) -> None:  # noqa: ANN001
    from aiosmtpd.controller import Controller

    class Counting:
        def __init__(self) -> None:
            self.reset()

        def reset(self) -> None:
            self.messages = 0
            self.bytes = 0
            self.recipients: collections.Counter[str] = collections.Counter()
            self.cpu = time.process_time()
            self.first = self.last = None

        async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001
            self.last = time.time()
            self.first = self.first or self.last
            self.messages += 1
            self.bytes += len(envelope.content)
            self.recipients.update(envelope.rcpt_tos)
            return "250 OK"

    handler = Counting()
    controller = Controller(handler, hostname="127.0.0.1", port=port, data_size_limit=None)
    controller.start()
    conn.send("ready")
    while True:
        command = conn.recv()
        if command in ("take", "stop"):
            conn.send(
                {
                    "messages": handler.messages,
                    "bytes": handler.bytes,
                    "recipients": dict(handler.recipients),
                    "cpu": time.process_time() - handler.cpu,
                    "first": handler.first,  # epoch seconds of the first and the last message received
                    "last": handler.last,
                }
            )
            handler.reset()
        if command == "stop":
            controller.stop()
            return


class Sink:
    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=sink_main, args=(child, self.port), daemon=True)
        self.process.start()
        if not self._conn.poll(60) or self._conn.recv() != "ready":
            raise SystemExit("the SMTP sink did not start")

    def take(self) -> dict:
        """What the sink received since the last take (and start counting again)."""
        self._conn.send("take")
        return self._conn.recv()

    def stop(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._conn.send("stop")
            self._conn.recv()
        self.process.join(10)


# -- measured ---------------------------------------------------------------------------------------------


def digest_run(run: Path, now: datetime, port: int | None) -> dict:
    """`paperwire digest run` as its own process (``--no-deliver`` without a ``port``): its output, wall
    time, and the kernel's rusage."""
    out, err = run / "digest-run.out", run / "digest-run.err"
    command = [sys.executable, "-m", "paperwire.cli", "digest", "run", "--now", now.isoformat(), "-q"]
    if port is None:
        env = paperwire_env(run)
        command.append("--no-deliver")
    else:
        env = paperwire_env(run, PAPERWIRE_SMTP_URL=f"smtp+insecure://127.0.0.1:{port}")
    with out.open("w") as stdout, err.open("w") as stderr:
        started, started_epoch = time.perf_counter(), time.time()
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdout=stdout,
            stderr=stderr,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    text = out.read_text()
    if proc.returncode != 0:
        raise SystemExit(f"digest run exited {proc.returncode}:\n{text}\n{err.read_text()[-3000:]}")
    # What the command prints has changed over time (compose and deliver timed apart, or one run in which
    # they overlap): read what is there; the wall time, rusage and the sink are the measurements.
    number = r"(\d[\d,]*)"
    checked = re.search(
        rf"Checked {number} subscribers(?: in ([\d.]+)s)?: {number} of {number} subscribers due", text
    )
    queued = re.search(rf"{number} digests queued", text)
    delivered = re.search(rf"Delivered through \S+?(?: in ([\d.]+)s)?: {number} sent", text)
    if not (checked and queued and (delivered or port is None)):
        raise SystemExit(f"cannot read the output of digest run:\n{text}")

    def count(text: str) -> int:
        return int(text.replace(",", ""))

    return {
        "checked": count(checked[1]),
        "compose": float(checked[2]) if checked[2] else None,  # None: not reported apart
        "due": count(checked[3]),
        "queued": count(queued[1]),
        "deliver": float(delivered[1]) if delivered and delivered[1] else None,
        "sent": count(delivered[2]) if delivered else 0,
        "started": started_epoch,
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": usage.ru_maxrss * 1024,  # KiB on Linux
        "output": text.strip(),
    }


def baseline_message(size: int) -> bytes:
    """A plain message of ``size`` bytes (CRLF lines of 76 characters), like a digest on the wire."""
    head = (
        "From: paperwire <digest@paperwire.example.org>\r\nTo: <reader@example.net>\r\n"
        "Subject: baseline\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    line = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor " * 2)[:76] + "\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return (head + body).encode()


def smtplib_baseline(port: int, count: int, size: int) -> float:
    message = baseline_message(size)
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for i in range(count):
            smtp.sendmail("digest@paperwire.example.org", f"baseline{i}@example.net", message)
    return time.perf_counter() - started


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def compose_only(run: Path, now: datetime, n: int) -> None:
    """`paperwire digest run --no-deliver`: composing alone (digests left in the outbox)."""
    result = digest_run(run, now, None)
    db_mb = (run / "paperwire.db").stat().st_size / 2**20
    rate = result["queued"] / result["wall"]
    print(f"`paperwire digest run --no-deliver` output: {result['output']}".replace("\n", " / "))
    print()
    print("| subscribers | due | queued | compose s | total s | digests/s | peak RSS MiB | vs 330/s target |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {n:,} | {result['due']:,} | {result['queued']:,} | {seconds(result['compose'])} | {result['wall']:.1f} "
        f"| {rate:,.0f} | {result['rss'] / 2**20:,.0f} | {rate / TARGET_RATE:.2f} |"
    )
    print(
        f"\ndigest run CPU {result['cpu']:.1f} s (user+sys) for {result['wall']:.1f} s wall; "
        f"database after the run {db_mb:,.0f} MiB (outbox included); nothing delivered, nothing verified"
    )


def measure(run: Path, now: datetime, n: int) -> None:
    sink = Sink()
    try:
        result = digest_run(run, now, sink.port)
        received = sink.take()
        mean = received["bytes"] / max(1, received["messages"])
        base_s = smtplib_baseline(sink.port, received["messages"], round(mean))
        base = sink.take()
    finally:
        sink.stop()
    db_mb = (run / "paperwire.db").stat().st_size / 2**20

    rate = result["queued"] / result["wall"]
    first = received["first"] - result["started"] if received["first"] else float("nan")
    last = received["last"] - result["started"] if received["last"] else float("nan")
    print(f"`paperwire digest run` output: {result['output']}".replace("\n", " / "))
    print()
    print(
        "| subscribers | compose s | deliver s | total s | first / last mail at sink s | digests/s "
        "| received by sink | mean message KiB | peak RSS MiB | vs 330/s target |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {n:,} | {seconds(result['compose'])} | {seconds(result['deliver'])} | {result['wall']:.1f} "
        f"| {first:.1f} / {last:.1f} | {rate:,.0f} | {received['messages']:,} | {mean / 1024:.1f} "
        f"| {result['rss'] / 2**20:,.0f} | {rate / TARGET_RATE:.2f} |"
    )
    print()
    print(
        "compose s / deliver s: as `digest run` reports them (— when it does not time them apart: it "
        "delivers while it composes); total: its wall time, start-up included; first / last mail: when the "
        "sink received them, from the command's start."
    )
    print(
        f"digest run CPU {result['cpu']:.1f} s (user+sys) for {result['wall']:.1f} s wall; "
        f"sink CPU {received['cpu']:.1f} s; database after the run {db_mb:,.0f} MiB (outbox included)"
    )
    print()
    base_rate = base["messages"] / base_s
    print("| path | messages | mean KiB | seconds | messages/s | ratio to baseline |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| smtplib straight to the sink (baseline) | {base['messages']:,} "
        f"| {base['bytes'] / max(1, base['messages']) / 1024:.1f} | {base_s:.1f} | {base_rate:,.0f} | 1.00 |"
    )
    if result["deliver"]:
        deliver_rate = result["sent"] / result["deliver"]
        print(
            f"| outbox → SMTP only (deliver_due) | {result['sent']:,} | {mean / 1024:.1f} "
            f"| {result['deliver']:.1f} | {deliver_rate:,.0f} | {deliver_rate / base_rate:.3f} |"
        )
    print(
        f"| paperwire digest run (compose + deliver) | {result['queued']:,} | {mean / 1024:.1f} "
        f"| {result['wall']:.1f} | {rate:,.0f} | {rate / base_rate:.3f} |"
    )
    print()

    # Exactly one message per due subscriber, to the right addresses.
    problems = []
    if not result["checked"] == result["due"] == n:
        problems.append(f"{result['due']:,} of {result['checked']:,} checked due, expected {n:,}")
    if not result["queued"] == received["messages"] == result["due"] or result["sent"] != result["queued"]:
        problems.append(
            f"queued {result['queued']:,}, sent {result['sent']:,}, sink received {received['messages']:,}, "
            f"due {result['due']:,}"
        )
    recipients = received["recipients"]
    expected = {email_of(i) for i in range(1, n + 1)}
    twice = sum(1 for c in recipients.values() if c > 1)
    missing = len(expected - recipients.keys())
    unexpected = len(recipients.keys() - expected)
    if twice or missing or unexpected:
        problems.append(
            f"{twice:,} got more than one, {missing:,} got none, {unexpected:,} unknown recipients"
        )
    if base["messages"] != received["messages"]:
        problems.append(f"baseline: sink received {base['messages']:,} of {received['messages']:,}")
    if problems:
        raise SystemExit("verification FAILED: " + "; ".join(problems))
    print(f"verified: the sink received exactly one message for each of the {n:,} due subscribers")


def profile(run: Path, now: datetime, top: int) -> None:
    """cProfile of compose_due, then of deliver_due to the sink, in this process: the two halves of
    `paperwire digest run` (which overlaps them in two threads), each on its own."""
    import cProfile

    sink = Sink()
    os.environ.update(paperwire_env(run, PAPERWIRE_SMTP_URL=f"smtp+insecure://127.0.0.1:{sink.port}"))
    import paperwire.web.subscribe  # noqa: F401  (imported by the first digest: start-up, not composing)
    from paperwire.cli import _digest_engine
    from paperwire.config import get_settings
    from paperwire.digest.run import compose_due
    from paperwire.mail import deliver_due, transport_from_settings
    from paperwire.store import open_store

    settings = get_settings()
    store = open_store()
    try:
        engine = _digest_engine(store)
        composing = cProfile.Profile()
        started = time.perf_counter()
        composing.enable()
        report = compose_due(store, engine, settings, now=now)
        composing.disable()
        compose_s = time.perf_counter() - started
        delivering = cProfile.Profile()
        started = time.perf_counter()
        delivering.enable()
        with transport_from_settings(settings) as transport:
            delivery = deliver_due(store, transport, settings.mail_from)
        delivering.disable()
        deliver_s = time.perf_counter() - started
    finally:
        store.close()
        received = sink.take()
        sink.stop()
    print(
        f"\ncompose_due under cProfile: {report} in {compose_s:.1f} s ({report.queued / compose_s:,.0f} digests/s)"
    )
    print_profile(composing, top)
    print(
        f"\ndeliver_due under cProfile: {delivery} in {deliver_s:.1f} s ({delivery.sent / deliver_s:,.0f} "
        f"messages/s); the sink received {received['messages']:,} (sink CPU {received['cpu']:.1f} s)"
    )
    print_profile(delivering, top)


def print_profile(profiler, top: int) -> None:  # noqa: ANN001
    import pstats

    stats = pstats.Stats(profiler)
    total = stats.total_tt
    prefixes = [*(sysconfig.get_paths()[k] + "/" for k in ("purelib", "stdlib")), str(ROOT) + "/"]

    def short(file: str) -> str:
        for prefix in prefixes:
            file = file.removeprefix(prefix)
        return file

    for key, title in ((3, "cumulative"), (2, "total (own) time")):
        print(f"\nTop {top} by {title}:\n")
        print("| calls | own s | cumulative s | cum % | function |")
        print("|---:|---:|---:|---:|---|")
        rows = sorted(stats.stats.items(), key=lambda kv: kv[1][key], reverse=True)[:top]
        for (file, line, name), (_, calls, own, cum, _) in rows:
            label = f"{name} ({short(file)}:{line})" if line else name
            print(f"| {calls:,} | {own:.2f} | {cum:.2f} | {100 * cum / total:.0f}% | `{label}` |")

    # Own time by where the code lives: the stdlib's email package, Jinja2, SQLAlchemy, paperwire...
    groups: collections.Counter[str] = collections.Counter()
    for (file, _, name), (_, _, own, _, _) in stats.stats.items():
        where = short(file)
        # C code: "<method 'commit' of 'sqlite3.Connection' objects>", "<built-in method posix.listdir>"
        if where == "~":
            if " of '" in name:
                owner = name.split(" of '")[1].split("'")[0]
            else:
                owner = name.removeprefix("<built-in method ").split(" ")[0].rstrip(">")
                owner = owner if "." in owner else "builtins"
            group = "C: " + owner.split(".")[0]
        elif where.startswith("paperwire/"):
            group = "/".join(where.split("/")[:2])
        else:
            group = where.split("/")[0].removesuffix(".py")
        groups[group] += own
    print("\nOwn time by module or package:\n")
    print("| where | own s | share |")
    print("|---|---:|---:|")
    for group, own in groups.most_common(15):
        print(f"| {group} | {own:.2f} | {100 * own / total:.0f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/pwbench-digest"), help="work dir")
    parser.add_argument("--reuse", action="store_true", help="reuse a data dir built for the same options")
    parser.add_argument("--recent", action="store_true", help="re-date the sample into the digest window")
    parser.add_argument("--now", default=DEFAULT_NOW, help=f"the run's time (default {DEFAULT_NOW})")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile compose_due instead of the benchmark"
    )
    parser.add_argument(
        "--compose-only", action="store_true", help="time `digest run --no-deliver` (no SMTP, no baseline)"
    )
    parser.add_argument("--top", type=int, default=25, help="functions listed by --profile")
    args = parser.parse_args()
    now = datetime.fromisoformat(args.now)
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    n = args.subscribers

    template = args.data / f"built-{n}{'-recent' if args.recent else ''}"
    run = args.data / "run"
    print(f"# machine: {machine()}")
    print(f"# command: python bench/digest.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}, load average {os.getloadavg()[0]:.1f}")
    built = build(template, n, now, args.seed, args.recent, args.reuse)
    mix = built["mix"]
    kinds = ", ".join(f"{mix[kind + ' topics']:,} {kind}" for kind in TOPIC_KINDS)
    papers_note = "re-dated into the last week" if args.recent else "as bundled"
    print(
        f"# {n:,} subscribers, {mix['topics per subscriber']:.2f} topics each ({kinds}; "
        f"{mix['distinct topics']:,} distinct), {100 * mix['weekly share']:.0f}% weekly; "
        f"sample papers {papers_note}; --now {now.isoformat()}"
    )
    fresh_copy(template, run)
    try:
        if args.profile:
            profile(run, now, args.top)
        elif args.compose_only:
            compose_only(run, now, n)
        else:
            measure(run, now, n)
    finally:
        shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
