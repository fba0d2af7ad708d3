"""Digest delivery never sends a digest twice and never loses one.

Everything real: `paperwire digest run` in its own process, a real SMTP server on loopback (aiosmtpd, in this
process), SQLite files and a real PostgreSQL. The run is killed with SIGKILL at random points while it
composes and while it delivers, and run again; it meets an SMTP server that is down, then up; two runs go
at once on one PostgreSQL database; and the server refuses one recipient permanently. Each time every
subscriber must get exactly one digest per period, counted at the SMTP server, and the store must agree.
"""

from __future__ import annotations

import email
import email.policy
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path

import pytest
from sqlalchemy import select

from paperwire.digest.run import BATCH
from paperwire.digest.schedule import due_period
from paperwire.mail.outbox import backoff
from paperwire.store import Store
from paperwire.store import outbox as outbox_store
from paperwire.store import subscriptions as subs
from paperwire.store.schema import digest_sends, outbox
from paperwire.store.subscriptions import Preferences, Topic
from tests.conftest import _fresh_pg_database
from tests.smtp_server import Received, SmtpServer, free_port

CLI = [sys.executable, "-m", "paperwire.cli"]
SENDER = "paperwire <digest@paperwire.test>"
# A Monday, 09:00 UTC: a delivery time for daily and weekly digests alike. The sample's newest paper is of
# 2026-04-03 and its daily list runs to 2026-04-07, so every first digest has trending papers in it.
NOW = datetime(2026, 4, 13, 9, 0, tzinfo=UTC)
SIGNED_UP = NOW - timedelta(days=7)  # confirmed well before the period's delivery time
SUBSCRIBERS = 1000
TRIALS = 10  # kills: even seeds while composing, odd seeds while delivering
# Time zones with the latest hour at which a digest is due at NOW there (Monday 09:00 UTC, local time).
ZONES = [("UTC", 9), ("Europe/Berlin", 11), ("America/New_York", 5), ("Asia/Tokyo", 18)]
TOPICS = [
    Topic("category", "cs.LG"),
    Topic("category", "cs.SE"),
    Topic("category", "cs.CL"),
    Topic("author", "Taher A. Ghaleb"),
    Topic("query", "language models"),
    Topic("query", "software testing"),
    Topic("like", "2604.03438"),
]


# -- helpers ---------------------------------------------------------------------------------------------


def sqlite_url(data: Path) -> str:
    return f"sqlite:///{data / 'paperwire.db'}"


def cli_env(data: Path, smtp_port: int, db_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERWIRE_")}
    env.update(
        PAPERWIRE_DATA_DIR=str(data),
        PAPERWIRE_DATABASE_URL=db_url or sqlite_url(data),
        PAPERWIRE_IMPORT_EMBED_LIMIT="0",  # no model: "more like this" topics fall back to keyword search
        PAPERWIRE_BASE_URL="https://paperwire.test",
        PAPERWIRE_MAIL_FROM=SENDER,
        PAPERWIRE_SECRET_KEY="digest-delivery-test-secret",
        PAPERWIRE_SMTP_URL=f"smtp+insecure://127.0.0.1:{smtp_port}",
    )
    return env


def digest_cmd(now: datetime) -> list[str]:
    return [*CLI, "digest", "run", "--now", now.isoformat(), "-q"]


def run_cli(args: list[str], env: dict[str, str], *, expect: int = 0) -> str:
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)
    out = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == expect, f"exit {result.returncode} (expected {expect}):\n{out}"
    return out


def import_sample(data: Path, db_url: str | None = None) -> None:
    run_cli([*CLI, "import", "sample", "-q"], cli_env(data, 25, db_url))


@dataclass(frozen=True)
class Expected:
    """Who must get a digest from the run: address → (subscriber id, period key)."""

    due: dict[str, tuple[int, str]]

    @property
    def keys(self) -> set[str]:
        return {f"digest:{sid}:{period}" for sid, period in self.due.values()}


def add_subscribers(db_url: str, n: int, *, seed: int) -> Expected:
    """``n`` active subscribers with varied preferences and topics, every one of them due at NOW."""
    rng = random.Random(seed)
    store = Store.open(db_url)
    due: dict[str, tuple[int, str]] = {}
    try:
        for i in range(n):
            sub = subs.subscribe(store, f"reader{i:04d}@example.org", now=SIGNED_UP, verified=True)
            zone, latest = ZONES[i % len(ZONES)]
            prefs = Preferences(
                frequency="weekly" if i % 5 == 0 else "daily",
                hour=rng.randint(0, latest),
                timezone=zone,
                size=rng.randint(3, 12),
                weekends=rng.random() < 0.5,
                empty_note=rng.random() < 0.2,
                topics=tuple(rng.sample(TOPICS, rng.randint(0, 3))),
            )
            sub = subs.save_preferences(store, sub.id, prefs)
            period = due_period(sub, NOW)
            assert period is not None, f"{sub} is not due at {NOW}"
            due[sub.email] = (sub.id, period.key)
    finally:
        store.close()
    return Expected(due)


def copy_data(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


HEADERS = BytesHeaderParser(policy=email.policy.default)  # a thousand full parses would cost seconds


def received_per_recipient(received: list[Received]) -> tuple[Counter[str], dict[str, str]]:
    """How many messages each address got at the server (by the parsed To header, which must be the
    envelope recipient), and the Message-ID of the last one. Some messages are parsed whole as well."""
    counts: Counter[str] = Counter()
    ids: dict[str, str] = {}
    for i, r in enumerate(received):
        msg = HEADERS.parsebytes(r.raw)
        to = parseaddr(str(msg["To"]))[1].lower()
        assert [x.lower() for x in r.recipients] == [to], f"envelope {r.recipients} but To: {msg['To']}"
        assert msg["Subject"] and msg["List-Unsubscribe"], f"message to {to} lacks headers"
        if i % 97 == 0:
            whole = email.message_from_bytes(r.raw, policy=email.policy.default)
            assert whole.get_body(("plain",)) is not None and whole.get_body(("html",)) is not None
        counts[to] += 1
        ids[to] = str(msg["Message-ID"])
    return counts, ids


def store_rows(db_url: str) -> tuple[list, list]:
    store = Store.open(db_url, run_migrations=False)
    try:
        with store.engine.connect() as conn:
            sends = conn.execute(
                select(
                    digest_sends.c.subscriber_id,
                    digest_sends.c.period,
                    digest_sends.c.status,
                    digest_sends.c.outbox_key,
                )
            ).all()
            box = conn.execute(
                select(
                    outbox.c.key, outbox.c.recipient, outbox.c.status, outbox.c.message, outbox.c.last_error
                )
            ).all()
    finally:
        store.close()
    return sends, box


def sample_of(items, n: int = 8) -> list:  # noqa: ANN001
    return sorted(items)[:n]


def assert_exactly_once(received: list[Received], db_url: str, expected: Expected, context: str = "") -> None:
    """Every due subscriber got exactly one digest at the server, nobody else got one, and the store
    records exactly that: one digest_sends row per subscriber for its period, every outbox row sent, and
    the message each address got is the one its outbox row holds."""
    counts, ids = received_per_recipient(received)
    dupes = {a: n for a, n in counts.items() if n > 1}
    missing = set(expected.due) - set(counts)
    extra = set(counts) - set(expected.due)
    assert not dupes, (
        f"{context}: {len(dupes)} subscribers got more than one digest: {sample_of(dupes.items())}"
    )
    assert not missing, f"{context}: {len(missing)} subscribers got no digest: {sample_of(missing)}"
    assert not extra, f"{context}: mail to addresses that were not due: {sample_of(extra)}"

    sends, box = store_rows(db_url)
    per_subscriber = Counter(r.subscriber_id for r in sends)
    assert all(n == 1 for n in per_subscriber.values()), (
        f"{context}: digest_sends rows per subscriber: {sample_of(per_subscriber.most_common(5))}"
    )
    want = {sid: period for sid, period in expected.due.values()}
    got = {r.subscriber_id: r.period for r in sends}
    assert got == want, f"{context}: digest_sends periods differ from what was due"
    assert {r.status for r in sends} == {"queued"}
    assert {r.outbox_key for r in sends} == expected.keys

    statuses = Counter(r.status for r in box)
    assert statuses == {"sent": len(expected.due)}, f"{context}: outbox statuses {dict(statuses)}"
    assert {r.key for r in box} == expected.keys
    by_recipient = {r.recipient: r for r in box}
    for address, message_id in ids.items():
        stored = HEADERS.parsebytes(outbox_store.unpack(by_recipient[address].message))
        assert str(stored["Message-ID"]) == message_id, f"{context}: {address} got another message"


# -- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_data(tmp_path_factory) -> Path:
    """A data dir with the bundled sample imported and its keyword index built (topics search it)."""
    data = tmp_path_factory.mktemp("digest-sample") / "data"
    import_sample(data)
    return data


@pytest.fixture(scope="module")
def template(sample_data, tmp_path_factory) -> tuple[Path, Expected]:
    """The sample with 1,000 active subscribers, all due at NOW: each test or trial starts from a copy."""
    data = copy_data(sample_data, tmp_path_factory.mktemp("digest-template") / "data")
    return data, add_subscribers(sqlite_url(data), SUBSCRIBERS, seed=1)


def _count(db: Path, sql: str) -> int | None:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
    except sqlite3.OperationalError:
        return None
    try:
        return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # "database is locked" while the sender writes
        return None
    finally:
        conn.close()


@dataclass(frozen=True)
class Timing:
    composing: float  # seconds from the start until the first batch of digests is committed
    delivering: float  # ... until the first message reaches the server
    total: float  # ... until the process has exited


@pytest.fixture(scope="module")
def timing(template, tmp_path_factory) -> Timing:
    """One uninterrupted run (which must itself send each digest exactly once), timed so that kills can
    land in either phase."""
    src, expected = template
    data = copy_data(src, tmp_path_factory.mktemp("digest-baseline") / "data")
    db = data / "paperwire.db"
    with SmtpServer() as smtp:
        started = time.monotonic()
        proc = subprocess.Popen(
            digest_cmd(NOW), env=cli_env(data, smtp.port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        composing = delivering = None
        while proc.poll() is None:
            elapsed = time.monotonic() - started
            if composing is None and (_count(db, "SELECT count(*) FROM digest_sends") or 0) > 0:
                composing = elapsed
            if delivering is None and smtp.handler.received:
                delivering = elapsed
            time.sleep(0.01)
        total = time.monotonic() - started
        out = proc.stdout.read().decode()
        proc.stdout.close()
        assert proc.returncode == 0, out
        assert_exactly_once(smtp.handler.received, sqlite_url(data), expected, "uninterrupted run")
    assert composing is not None and delivering is not None and composing < delivering < total, out
    return Timing(composing, delivering, total)


# -- 1. killed at random points -------------------------------------------------------------------------

KILLS: dict[int, dict] = {}  # seed → what the killed run had done, for the coverage check below


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(TRIALS))
def test_killed_run_then_rerun_sends_each_digest_exactly_once(template, timing, tmp_path, seed):
    src, expected = template
    rng = random.Random(seed)
    if seed % 2 == 0:  # while composing (a little before the first commit, too)
        delay = rng.uniform(timing.composing * 0.8, timing.delivering)
    else:  # while delivering
        delay = rng.uniform(timing.delivering, max(timing.delivering, timing.total - 0.3))
    data = copy_data(src, tmp_path / "data")
    db = data / "paperwire.db"
    with SmtpServer() as smtp:
        env = cli_env(data, smtp.port)
        started = time.monotonic()
        proc = subprocess.Popen(
            digest_cmd(NOW), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            time.sleep(max(0.0, delay - (time.monotonic() - started)))
            killed = proc.poll() is None
            if killed:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        time.sleep(0.2)  # a "." the server got just before the kill is still being handled
        state = {
            "delay": round(delay, 2),
            "killed": killed,
            "composed": _count(db, "SELECT count(*) FROM digest_sends"),
            "mailed": len(smtp.handler.received),
            "sending": _count(db, "SELECT count(*) FROM outbox WHERE status = 'sending'"),
            "handoff": _count(db, "SELECT count(*) FROM outbox WHERE status = 'handoff'"),
        }
        KILLS[seed] = state
        context = f"seed {seed}, killed after {delay:.2f}s ({state})"
        if killed:
            assert proc.returncode == -signal.SIGKILL, context
        # A partly composed run leaves whole batches: each is one transaction.
        assert state["composed"] is not None and state["composed"] % BATCH == 0, context

        # The rerun takes the dead process's outbox rows back at once (not after their lease) and finishes.
        out = run_cli(digest_cmd(NOW), env)
        assert "wait in the outbox" not in out, f"{context}\n{out}"
        assert_exactly_once(smtp.handler.received, sqlite_url(data), expected, context)


@pytest.mark.slow
def test_kills_landed_while_composing_and_while_delivering():
    if len(KILLS) < TRIALS:
        pytest.skip("needs every kill trial of this module")
    composing = [s for s, k in KILLS.items() if k["killed"] and 0 < k["composed"] < SUBSCRIBERS]
    delivering = [s for s, k in KILLS.items() if k["killed"] and 0 < k["mailed"] < SUBSCRIBERS]
    assert composing and delivering, f"kills did not cover both phases: {KILLS}"


# -- 2. the SMTP server is down, then up ------------------------------------------------------------------


def test_server_down_queues_everything_then_delivers_each_once(template, tmp_path):
    src, expected = template
    data = copy_data(src, tmp_path / "data")
    port = free_port()  # nothing listens here yet
    env = cli_env(data, port)

    out = run_cli(digest_cmd(NOW), env, expect=75)
    assert f"cannot reach smtp+insecure://127.0.0.1:{port}" in out, out
    assert f"{SUBSCRIBERS:,} messages wait in the outbox for a retry" in out, out
    sends, box = store_rows(sqlite_url(data))
    assert len(sends) == SUBSCRIBERS and {r.outbox_key for r in sends} == expected.keys
    assert Counter(r.status for r in box) == {"pending": SUBSCRIBERS}, "nothing may be lost or given up"

    with SmtpServer(port=port) as smtp:
        # Later than the backoff of the messages that were tried: all of them are due again.
        later = NOW + backoff(1) * 2
        out = run_cli(digest_cmd(later), env)
        assert f"0 of {SUBSCRIBERS:,} subscribers due" in out, out  # composed once, not again
        assert f"{SUBSCRIBERS:,} sent" in out, out
        assert_exactly_once(smtp.handler.received, sqlite_url(data), expected, "after the outage")


# -- 3. two senders at once on PostgreSQL -------------------------------------------------------------------


@pytest.mark.postgres
def test_two_senders_at_once_on_postgresql(postgres_url, tmp_path):
    db_url = _fresh_pg_database(postgres_url)
    data = tmp_path / "data"
    import_sample(data, db_url)
    expected = add_subscribers(db_url, 400, seed=3)
    with SmtpServer() as smtp:
        # The same data dir: both use its keyword index (one catches it up, the other finds it busy).
        env = cli_env(data, smtp.port, db_url)
        procs = [
            subprocess.Popen(
                digest_cmd(NOW), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            for _ in range(2)
        ]
        outs = []
        for proc in procs:
            out, _ = proc.communicate(timeout=180)
            outs.append(out)
            assert proc.returncode == 0, out
        both = "\n".join(outs)
        queued = [int(m.replace(",", "")) for m in re.findall(r"([\d,]+) digests queued", both)]
        sent = [int(m.replace(",", "")) for m in re.findall(r": ([\d,]+) sent", both)]
        assert sum(queued) == len(expected.due) and sum(sent) == len(expected.due), both
        assert_exactly_once(smtp.handler.received, db_url, expected, f"two senders {queued}")


# -- 4. a permanent rejection -------------------------------------------------------------------------------


def test_permanent_rejection_bounces_the_subscriber(sample_data, tmp_path):
    data = copy_data(sample_data, tmp_path / "data")
    db_url = sqlite_url(data)
    addresses = ["ada@example.org", "gone@example.org", "grace@example.org", "alan@example.org"]
    store = Store.open(db_url)
    try:
        ids = {}
        for address in addresses:
            sub = subs.subscribe(store, address, now=SIGNED_UP, verified=True)
            prefs = Preferences(frequency="daily", hour=8, size=3, empty_note=True, topics=(TOPICS[1],))
            ids[address] = subs.save_preferences(store, sub.id, prefs).id
    finally:
        store.close()
    tuesday = NOW + timedelta(days=1)

    with SmtpServer() as smtp:
        smtp.handler.refuse["gone@example.org"] = "550 5.1.1 No such user here"
        env = cli_env(data, smtp.port)
        out = run_cli(digest_cmd(NOW), env)  # a refused recipient is not a server that is down
        assert "3 sent, 1 failed" in out, out
        counts, _ = received_per_recipient(smtp.handler.received)
        assert counts == {a: 1 for a in addresses if a != "gone@example.org"}

        store = Store.open(db_url, run_migrations=False)
        try:
            gone = subs.get_subscriber(store, ids["gone@example.org"])
            assert gone.status == "bounced"
            assert outbox_store.is_suppressed(store, "gone@example.org")
            assert outbox_store.status_of(store, f"digest:{gone.id}:daily:2026-04-13") == "failed"
            assert [subs.get_subscriber(store, ids[a]).status for a in addresses] == [
                "active",
                "bounced",
                "active",
                "active",
            ]
        finally:
            store.close()

        # The next period: the server would take mail for it now, but nothing goes to a bounced address.
        smtp.handler.refuse.clear()
        out = run_cli(digest_cmd(tuesday), env)
        assert "3 digests queued" in out and "3 sent" in out, out
        counts, _ = received_per_recipient(smtp.handler.received)
        assert counts == {a: 2 for a in addresses if a != "gone@example.org"}

    sends, box = store_rows(db_url)
    periods = Counter((r.subscriber_id, r.period) for r in sends)
    assert all(n == 1 for n in periods.values())
    assert {p for (sid, p) in periods if sid == ids["gone@example.org"]} == {"daily:2026-04-13"}
    for address in addresses:
        if address != "gone@example.org":
            assert {p for (sid, p) in periods if sid == ids[address]} == {
                "daily:2026-04-13",
                "daily:2026-04-14",
            }
    assert Counter(r.status for r in box) == {"sent": 6, "failed": 1}
    assert [r.recipient for r in box if r.status == "failed"] == ["gone@example.org"]
