"""The outbox table: every outgoing message, recorded before it is sent and marked after.

Claiming works on both backends without two senders ever holding the same row: PostgreSQL skips rows
another transaction has locked (``FOR UPDATE SKIP LOCKED``); SQLite serialises writers (BEGIN IMMEDIATE)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from paperwire.store.schema import outbox, suppressed_addresses
from paperwire.store.store import Store, _utc


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
                    message=message,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        return True
    except IntegrityError:
        return False


def claim_due(store: Store, *, now: datetime, limit: int, lease: timedelta) -> list[OutboxMessage]:
    """Take up to ``limit`` messages that are due (pending, or claimed by a sender whose lease ran out:
    it died), mark them ``sending`` until ``now + lease``, and return them."""
    due = and_(
        or_(
            and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now),
            and_(outbox.c.status == "sending", outbox.c.claimed_until < now),
        )
    )
    stmt = select(outbox).where(due).order_by(outbox.c.id).limit(limit)
    if store.dialect == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    with store._writer.begin() as conn:
        rows = conn.execute(stmt).all()
        if rows:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([r.id for r in rows]))
                .values(status="sending", claimed_until=now + lease, attempts=outbox.c.attempts + 1)
            )
    return [
        OutboxMessage(r.id, r.key, r.kind, r.recipient, bytes(r.message), r.attempts + 1, _utc(r.created_at))
        for r in rows
    ]


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
