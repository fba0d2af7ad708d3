"""The outbox table: every outgoing message, recorded before it is sent and marked after.

Claiming works on both backends without two senders ever holding the same row: PostgreSQL skips rows
another transaction has locked (``FOR UPDATE SKIP LOCKED``); SQLite serialises writers (BEGIN IMMEDIATE).

States: ``pending`` → ``sending`` (claimed by one process until its lease ends) → ``handoff`` (committed
just before the final "." of SMTP's DATA: from here on the server may have the message) → ``sent``; or
back to ``pending`` (retry) or ``failed``. A process that dies leaves ``sending`` rows, which are sent
again (the server never got a complete message), and ``handoff`` rows, which count as sent: a crash can
never make a message go twice. The only loss is a crash in the microseconds between committing
``handoff`` and writing the final "." (SMTP has no way to make a hand-over atomic; we keep the gap to two
system calls). Rows of a dead process on this host are taken back at once; those of another host when
their lease ends."""

from __future__ import annotations

import os
import socket
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from paperwire.store.schema import outbox, suppressed_addresses
from paperwire.store.store import Store, _utc

# Stored messages are zlib-compressed behind this prefix (a digest's HTML shrinks ~6x: 100,000 digests
# are ~0.6 GB instead of ~4 GB); rows written before compression was added are read as they are.
_PACKED = b"\x00zlib\x00"


def pack(message: bytes) -> bytes:
    return _PACKED + zlib.compress(message, 1)


def unpack(stored: bytes) -> bytes:
    stored = bytes(stored)
    return zlib.decompress(stored[len(_PACKED) :]) if stored.startswith(_PACKED) else stored


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    key: str
    kind: str
    recipient: str
    message: bytes
    attempts: int
    created_at: datetime


def add(store: Store, *, key: str, kind: str, recipient: str, message: bytes, now: datetime) -> bool:
    """Record a message to send. False (and nothing changes) when a message with this key exists: callers
    derive keys from what the message is (``digest:42:2026-11-27``), so a retried job never sends twice."""
    try:
        with store._writer.begin() as conn:
            conn.execute(
                insert(outbox).values(
                    key=key,
                    kind=kind,
                    recipient=recipient,
                    message=pack(message),
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        return True
    except IntegrityError:
        return False


_PF_EXITING = 0x4  # include/linux/sched.h: the process is being torn down


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), which tells a reused pid apart; None
    when it does not run, or is exiting: a killed process can take a while to go (state D while the
    kernel tears it down), and it will never send another byte."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X", "x") or int(fields[6]) & _PF_EXITING:
        return None
    return fields[19]


def process_identity() -> str:
    """``host/pid/start``: who claimed a row, so a rerun on the same host can tell whether it is alive."""
    return f"{socket.gethostname()}/{os.getpid()}/{_start_time(os.getpid()) or '-'}"


def _is_dead(identity: str) -> bool:
    """True only when ``identity`` names a process of this host that no longer runs."""
    host, _, rest = identity.partition("/")
    pid_text, _, start = rest.partition("/")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return start != (_start_time(pid) or "-")
    actual = _start_time(pid)
    if actual is None:
        if not Path("/proc/self/stat").exists():  # no /proc: ask the kernel instead
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except OSError:
                return False
            return False
        return True
    return start not in ("-", actual)


def recover(store: Store, *, now: datetime) -> tuple[int, int]:
    """Take back rows of senders that died: ``sending`` ones become due again, ``handoff`` ones count as
    sent (the server had the whole message). Returns how many of each."""
    # Read first: this runs before every delivery sweep, and almost always finds nothing to take back.
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.status, outbox.c.claimed_by, outbox.c.claimed_until).where(
                outbox.c.status.in_(("sending", "handoff"))
            )
        ).all()
    dead_owner: dict[str, bool] = {}
    retry, settled = [], []
    for r in rows:
        owner = r.claimed_by or ""
        if owner not in dead_owner:
            dead_owner[owner] = _is_dead(owner) if owner else False
        expired = r.claimed_until is not None and _utc(r.claimed_until) < now
        if dead_owner[owner] or expired:
            (settled if r.status == "handoff" else retry).append(r.id)
    if not retry and not settled:
        return 0, 0
    with store._writer.begin() as conn:
        # The status conditions make this safe against a sender that moved a row on meanwhile.
        if retry:
            retried = conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(retry), outbox.c.status == "sending")
                .values(status="pending", next_attempt_at=now, claimed_until=None, claimed_by=None)
            ).rowcount
        else:
            retried = 0
        if settled:
            done = conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(settled), outbox.c.status == "handoff")
                .values(
                    status="sent",
                    sent_at=now,
                    claimed_until=None,
                    last_error="the sender stopped after handing the message over; counted as sent",
                )
            ).rowcount
        else:
            done = 0
    return retried, done


def claim_due(
    store: Store, *, now: datetime, limit: int, lease: timedelta, owner: str | None = None
) -> list[OutboxMessage]:
    """Take up to ``limit`` messages that are due (pending, or claimed by a sender whose lease ran out:
    it died), mark them ``sending`` by ``owner`` until ``now + lease``, and return them."""
    # Two queries, each an index range scan (status, next_attempt_at) that stops after ``limit`` rows:
    # one query with OR and ORDER BY id sorted the whole backlog on every claim (a run that composes
    # faster than the server takes mail has tens of thousands pending).
    abandoned = select(outbox).where(outbox.c.status == "sending", outbox.c.claimed_until < now).limit(limit)
    pending = (
        select(outbox)
        .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
        .order_by(outbox.c.next_attempt_at)
        .limit(limit)
    )
    if store.dialect == "postgresql":
        abandoned = abandoned.with_for_update(skip_locked=True)
        pending = pending.with_for_update(skip_locked=True)
    with store._writer.begin() as conn:
        rows = conn.execute(abandoned).all()
        if len(rows) < limit:
            rows += conn.execute(pending.limit(limit - len(rows))).all()
        if rows:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([r.id for r in rows]))
                .values(
                    status="sending",
                    claimed_until=now + lease,
                    claimed_by=owner or process_identity(),
                    attempts=outbox.c.attempts + 1,
                )
            )
    return [
        OutboxMessage(r.id, r.key, r.kind, r.recipient, unpack(r.message), r.attempts + 1, _utc(r.created_at))
        for r in rows
    ]


_SETTLE = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("ids", expanding=True)), outbox.c.status == "handoff")
    .values(status="sent", sent_at=bindparam("sent_now"), claimed_until=None, last_error=None)
)
# Runs once per message: on the driver's own cursor, because SQLAlchemy's execution of even a prebuilt
# statement cost twice the statement and its commit (0.23 of 0.37 ms on SQLite).
_HANDOFF = "UPDATE outbox SET status = 'handoff' WHERE id = {0} AND status = 'sending' AND claimed_by = {0}"


def mark_handoff(store: Store, message_id: int, *, owner: str) -> bool:
    """Commit, before the final "." goes out, that this message is being handed over. False when the
    row is no longer ours (our lease ran out and another sender took it): then the "." must not go."""
    with store._writer.begin() as conn:
        marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.execute(_HANDOFF.format(marker), (message_id, owner))
            return cursor.rowcount == 1
        finally:
            cursor.close()


def mark_sent_many(store: Store, ids: list[int], *, now: datetime) -> None:
    """Messages the server accepted (all were handed over)."""
    if ids:
        with store._writer.begin() as conn:
            conn.execute(_SETTLE, {"ids": list(ids), "sent_now": now})


def mark_sent(store: Store, message_id: int, *, now: datetime) -> None:
    with store._writer.begin() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id == message_id)
            .values(status="sent", sent_at=now, claimed_until=None, last_error=None)
        )


def mark_retry(store: Store, message_id: int, *, error: str, at: datetime) -> None:
    with store._writer.begin() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id == message_id)
            .values(status="pending", next_attempt_at=at, claimed_until=None, last_error=error[:1000])
        )


def mark_failed(store: Store, message_id: int, *, error: str) -> None:
    with store._writer.begin() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id == message_id)
            .values(status="failed", claimed_until=None, last_error=error[:1000])
        )


def status_of(store: Store, key: str) -> str | None:
    with store.engine.connect() as conn:
        return conn.execute(select(outbox.c.status).where(outbox.c.key == key)).scalar()


def counts(store: Store) -> dict[str, int]:
    from sqlalchemy import func

    with store.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
    return {status: n for status, n in rows}


def prune(store: Store, *, before: datetime) -> int:
    """Delete messages sent (or given up) before ``before``: their bodies are the bulk of the database,
    and nothing needs them once they are out (digest_sends keeps each digest's record)."""
    with store._writer.begin() as conn:
        return conn.execute(
            delete(outbox).where(
                outbox.c.status.in_(("sent", "failed")),
                outbox.c.created_at < before,
            )
        ).rowcount


def suppress(store: Store, email: str, *, reason: str, now: datetime) -> None:
    """Never send to ``email`` again (a permanent bounce), and drop what is queued for it."""
    with store._writer.begin() as conn:
        exists = conn.execute(
            select(suppressed_addresses.c.email).where(suppressed_addresses.c.email == email)
        ).first()
        if not exists:
            conn.execute(
                insert(suppressed_addresses).values(email=email, reason=reason[:1000], created_at=now)
            )
        conn.execute(
            update(outbox)
            .where(outbox.c.recipient == email, outbox.c.status == "pending")
            .values(status="failed", last_error=f"address suppressed: {reason[:200]}")
        )


def suppressed_among(store: Store, emails: set[str]) -> set[str]:
    if not emails:
        return set()
    with store.engine.connect() as conn:
        return set(
            conn.execute(
                select(suppressed_addresses.c.email).where(suppressed_addresses.c.email.in_(list(emails)))
            ).scalars()
        )


def is_suppressed(store: Store, email: str) -> bool:
    with store.engine.connect() as conn:
        return (
            conn.execute(
                select(suppressed_addresses.c.email).where(suppressed_addresses.c.email == email)
            ).first()
            is not None
        )


def unsuppress(store: Store, email: str) -> None:
    with store._writer.begin() as conn:
        conn.execute(delete(suppressed_addresses).where(suppressed_addresses.c.email == email))
