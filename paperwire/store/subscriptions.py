"""E-mail digest subscriptions in the store: subscribers (double opt-in), their preferences and topics,
and the bookkeeping the digest sender needs (a claim per subscriber and period, the papers sent).

As in :mod:`paperwire.store.accounts`, nothing here knows about HTTP or signing, and callers pass the
current time. Validation of preferences is the caller's (the web form's); this module only stores them.

Statuses: ``pending`` (signed up, confirmation link not yet followed: nothing but the confirmation is
ever sent), ``active``, ``unsubscribed``, ``bounced`` (mail to it bounced permanently)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from paperwire.store import outbox as outbox_rows
from paperwire.store.schema import digest_sends, outbox, subscriber_topics, subscribers
from paperwire.store.store import Store, _utc

STATUSES = ("pending", "active", "unsubscribed", "bounced")
FREQUENCIES = ("daily", "weekly", "off")
TOPIC_KINDS = ("category", "author", "query", "like")
# Outbox kinds of the mail this module's callers send to subscribers (counted by the per-address limit).
MAIL_KINDS = ("subscribe-confirm", "subscribe-already")


@dataclass(frozen=True, slots=True)
class Topic:
    kind: str  # category, author, query, like
    value: str


@dataclass(frozen=True, slots=True)
class Preferences:
    """What a subscriber chooses on the preferences page (already validated by the caller)."""

    frequency: str = "daily"
    hour: int = 8
    timezone: str = "UTC"
    size: int = 10
    weekends: bool = False
    empty_note: bool = False
    topics: tuple[Topic, ...] = ()


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: int
    email: str
    user_id: int | None
    status: str
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    frequency: str
    hour: int
    timezone: str
    size: int
    weekends: bool
    empty_note: bool
    token_version: int
    last_confirmation_sent_at: datetime | None
    topics: tuple[Topic, ...] = field(default=())
    last_digest_period: str | None = None  # the last period a digest was composed for
    last_digest_at: datetime | None = None

    @property
    def preferences(self) -> Preferences:
        return Preferences(
            self.frequency, self.hour, self.timezone, self.size, self.weekends, self.empty_note, self.topics
        )


class SubscriptionRejected(Exception):
    """A link or request cannot be used; the message says why in words a visitor understands."""


def _subscriber(row, topics: tuple[Topic, ...] = ()) -> Subscriber:  # noqa: ANN001
    return Subscriber(
        id=row.id,
        email=row.email,
        user_id=row.user_id,
        status=row.status,
        created_at=_utc(row.created_at),
        confirmed_at=_utc(row.confirmed_at),
        unsubscribed_at=_utc(row.unsubscribed_at),
        frequency=row.frequency,
        hour=row.hour,
        timezone=row.timezone,
        size=row.size,
        weekends=bool(row.weekends),
        empty_note=bool(row.empty_note),
        token_version=row.token_version,
        last_confirmation_sent_at=_utc(row.last_confirmation_sent_at),
        topics=topics,
        last_digest_period=row.last_digest_period,
        last_digest_at=_utc(row.last_digest_at),
    )


def _topics(conn, subscriber_id: int) -> tuple[Topic, ...]:  # noqa: ANN001
    rows = conn.execute(
        select(subscriber_topics.c.kind, subscriber_topics.c.value)
        .where(subscriber_topics.c.subscriber_id == subscriber_id)
        .order_by(subscriber_topics.c.kind, subscriber_topics.c.value)
    ).all()
    order = {k: i for i, k in enumerate(TOPIC_KINDS)}
    return tuple(
        sorted((Topic(r.kind, r.value) for r in rows), key=lambda t: (order.get(t.kind, 9), t.value))
    )


def _load(conn, where) -> Subscriber | None:  # noqa: ANN001
    row = conn.execute(select(subscribers).where(where)).first()
    return _subscriber(row, _topics(conn, row.id)) if row else None


def get_subscriber(store: Store, subscriber_id: int) -> Subscriber | None:
    with store.engine.connect() as conn:
        return _load(conn, subscribers.c.id == subscriber_id)


def get_subscriber_by_email(store: Store, email: str) -> Subscriber | None:
    with store.engine.connect() as conn:
        return _load(conn, subscribers.c.email == email.lower())


def subscribe(
    store: Store, email: str, *, now: datetime, user_id: int | None = None, verified: bool = False
) -> Subscriber:
    """The subscriber for this (already normalised) address, created as ``pending`` if there is none.

    An unsubscribed or bounced address goes back to ``pending`` (it must confirm again). ``verified``:
    the caller has proof the requester reads this mailbox (a signed-in user's own address: signing in
    by e-mailed link proved it), so the subscription is ``active`` at once. Preferences are kept."""
    email = email.lower()
    with store._writer.begin() as conn:
        row = conn.execute(select(subscribers).where(subscribers.c.email == email)).first()
        if row is None:
            try:
                with conn.begin_nested():  # PostgreSQL: a concurrent insert must not abort our transaction
                    conn.execute(
                        insert(subscribers).values(
                            email=email,
                            user_id=user_id,
                            status="pending",
                            created_at=now,
                            token_version=1,
                        )
                    )
            except IntegrityError:
                pass  # someone signed the same address up between our read and insert
            row = conn.execute(select(subscribers).where(subscribers.c.email == email)).one()
        values: dict = {}
        if user_id is not None and row.user_id is None:
            values["user_id"] = user_id
        if verified and row.status != "active":
            values.update(status="active", confirmed_at=now, unsubscribed_at=None)
        elif row.status in ("unsubscribed", "bounced"):
            values.update(status="pending")
        if values:
            conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(**values))
        return _load(conn, subscribers.c.id == row.id)


def claim_mail_slot(store: Store, subscriber_id: int, *, now: datetime, every: timedelta) -> bool:
    """Whether a confirmation (or "already subscribed") mail may go now: at most one per ``every`` per
    subscriber. True records ``now`` as the last one, atomically: of two racing sign-ups, one wins."""
    last = subscribers.c.last_confirmation_sent_at
    with store._writer.begin() as conn:
        return (
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id, or_(last.is_(None), last <= now - every))
                .values(last_confirmation_sent_at=now)
            ).rowcount
            == 1
        )


def recent_mails(store: Store, email: str, *, since: datetime) -> list[datetime]:
    """When subscription mails (confirmations, "already subscribed" notes) were queued for ``email``
    since ``since``, oldest first: counted in the outbox, so every web process sees the same mails."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.created_at)
            .where(
                outbox.c.recipient == email.lower(),
                outbox.c.kind.in_(MAIL_KINDS),
                outbox.c.created_at > since,
            )
            .order_by(outbox.c.created_at)
        ).all()
    return [_utc(r.created_at) for r in rows]


def confirm(store: Store, subscriber_id: int, *, now: datetime, issued: datetime | None = None) -> Subscriber:
    """Make a pending subscription active (an active one stays as it is). ``issued``: when the
    confirmation link was made; a link older than the last unsubscription cannot undo it."""
    with store._writer.begin() as conn:
        sub = _load(conn, subscribers.c.id == subscriber_id)
        if sub is None:
            raise SubscriptionRejected("This confirmation link is not valid: there is no such subscription.")
        if sub.status == "active":
            return sub
        if sub.status != "pending" or (
            issued is not None and sub.unsubscribed_at is not None and issued < sub.unsubscribed_at
        ):
            raise SubscriptionRejected(
                "This address was unsubscribed after the link was sent. Subscribe again to get a new link."
            )
        conn.execute(
            update(subscribers)
            .where(subscribers.c.id == subscriber_id)
            .values(status="active", confirmed_at=now, unsubscribed_at=None)
        )
        return _load(conn, subscribers.c.id == subscriber_id)


def unsubscribe(store: Store, subscriber_id: int, *, now: datetime) -> Subscriber | None:
    """Stop every mail to this subscriber (at once; doing it again changes nothing); None if unknown."""
    with store._writer.begin() as conn:
        conn.execute(
            update(subscribers)
            .where(subscribers.c.id == subscriber_id, subscribers.c.status.in_(("pending", "active")))
            .values(status="unsubscribed", unsubscribed_at=now)
        )
        return _load(conn, subscribers.c.id == subscriber_id)


def mark_bounced(store: Store, email: str, *, now: datetime) -> bool:
    """A permanent bounce: no more digests to this address (False when it has no subscription)."""
    with store._writer.begin() as conn:
        return (
            conn.execute(
                update(subscribers)
                .where(subscribers.c.email == email.lower())
                .values(status="bounced", unsubscribed_at=now)
            ).rowcount
            == 1
        )


def save_preferences(store: Store, subscriber_id: int, prefs: Preferences) -> Subscriber | None:
    """Replace the subscriber's preferences and topics in one transaction; None if unknown."""
    with store._writer.begin() as conn:
        done = conn.execute(
            update(subscribers)
            .where(subscribers.c.id == subscriber_id)
            .values(
                frequency=prefs.frequency,
                hour=prefs.hour,
                timezone=prefs.timezone,
                size=prefs.size,
                weekends=prefs.weekends,
                empty_note=prefs.empty_note,
            )
        ).rowcount
        if done != 1:
            return None
        conn.execute(delete(subscriber_topics).where(subscriber_topics.c.subscriber_id == subscriber_id))
        unique = list(dict.fromkeys(prefs.topics))
        if unique:
            conn.execute(
                insert(subscriber_topics),
                [{"subscriber_id": subscriber_id, "kind": t.kind, "value": t.value} for t in unique],
            )
        return _load(conn, subscribers.c.id == subscriber_id)


def revoke_links(store: Store, subscriber_id: int) -> int | None:
    """Bump the token version: every preferences and unsubscribe link sent so far stops working. Returns
    the new version (None if unknown)."""
    with store._writer.begin() as conn:
        conn.execute(
            update(subscribers)
            .where(subscribers.c.id == subscriber_id)
            .values(token_version=subscribers.c.token_version + 1)
        )
        return conn.execute(
            select(subscribers.c.token_version).where(subscribers.c.id == subscriber_id)
        ).scalar()


def active_subscribers(store: Store) -> list[Subscriber]:
    """Every confirmed subscription whose frequency is not ``off``, with topics, by id."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(subscribers)
            .where(subscribers.c.status == "active", subscribers.c.frequency != "off")
            .order_by(subscribers.c.id)
        ).all()
        return [_subscriber(r, _topics(conn, r.id)) for r in rows]


def count_by_status(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(subscribers.c.status, func.count()).group_by(subscribers.c.status)).all()
    return {status: n for status, n in rows}


# -- for the digest sender --------------------------------------------------------------------------------


def subscribers_page(store: Store, *, after_id: int = 0, limit: int = 1000) -> list[Subscriber]:
    """Active subscribers with a frequency (not ``off``) and their topics, by id after ``after_id``: the
    digest sender walks them page by page (two queries a page, whatever the page size)."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(subscribers)
            .where(
                subscribers.c.id > after_id,
                subscribers.c.status == "active",
                subscribers.c.frequency != "off",
            )
            .order_by(subscribers.c.id)
            .limit(limit)
        ).all()
        topics: dict[int, list[Topic]] = {}
        if rows:
            for r in conn.execute(
                select(subscriber_topics).where(subscriber_topics.c.subscriber_id.in_([r.id for r in rows]))
            ):
                topics.setdefault(r.subscriber_id, []).append(Topic(r.kind, r.value))
    order = {k: i for i, k in enumerate(TOPIC_KINDS)}
    return [
        _subscriber(r, tuple(sorted(topics.get(r.id, ()), key=lambda t: (order.get(t.kind, 9), t.value))))
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class QueuedDigest:
    """One subscriber's digest for one period, as the sender records it. ``message`` None: nothing new,
    nothing sent (the period still counts as done)."""

    subscriber_id: int
    period: str
    paper_ids: tuple[str, ...]
    key: str | None = None  # the outbox key
    recipient: str | None = None
    message: bytes | None = None


class DigestBatch:
    """Subscribers locked for one transaction of the digest sender: :meth:`record` what each gets; it is
    all written when the ``with`` block ends (or nothing, if it raises)."""

    def __init__(self, conn, free: list[int], sent: dict[int, set[str]]):  # noqa: ANN001
        self._conn = conn
        self.free = free  # subscriber ids this batch may compose for (locked, not yet done this period)
        self.sent = sent  # papers each of them was sent before
        self.queued: list[QueuedDigest] = []

    def record(self, digest: QueuedDigest) -> None:
        self.queued.append(digest)

    def _write(self, now: datetime) -> None:
        from sqlalchemy import bindparam

        if not self.queued:
            return
        conn = self._conn
        conn.execute(
            insert(digest_sends),
            [
                {
                    "subscriber_id": d.subscriber_id,
                    "period": d.period,
                    "status": "queued" if d.message is not None else "empty",
                    "claimed_at": now,
                    "sent_at": now,
                    "outbox_key": d.key,
                    "paper_ids": " ".join(dict.fromkeys(d.paper_ids)) or None,
                }
                for d in self.queued
            ],
        )
        mail = [d for d in self.queued if d.message is not None]
        if mail:
            conn.execute(
                insert(outbox),
                [
                    {
                        "key": d.key,
                        "kind": "digest",
                        "recipient": d.recipient,
                        "message": outbox_rows.pack(d.message),
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for d in mail
                ],
            )
        conn.execute(
            update(subscribers)
            .where(subscribers.c.id == bindparam("sid"))
            .values(last_digest_period=bindparam("period"), last_digest_at=now),
            [{"sid": d.subscriber_id, "period": d.period} for d in self.queued],
        )


def sent_papers(store: Store, subscriber_ids: list[int]) -> dict[int, set[str]]:
    """Papers each of these subscribers was sent before (one query)."""
    if not subscriber_ids:
        return {}
    with store.engine.connect() as conn:
        return _sent(conn, subscriber_ids)


def _sent(conn, subscriber_ids: list[int]) -> dict[int, set[str]]:  # noqa: ANN001
    sent: dict[int, set[str]] = {i: set() for i in subscriber_ids}
    for r in conn.execute(
        select(digest_sends.c.subscriber_id, digest_sends.c.paper_ids).where(
            digest_sends.c.subscriber_id.in_(subscriber_ids), digest_sends.c.paper_ids.is_not(None)
        )
    ):
        sent[r.subscriber_id].update(r.paper_ids.split())
    return sent


@contextmanager
def digest_batch(
    store: Store, wanted: dict[int, str], *, now: datetime, sent: dict[int, set[str]] | None = None
) -> Iterator[DigestBatch]:
    """Lock the subscribers in ``wanted`` (id → period due) that are still active and not yet done for
    that period, and hand them out for composing; what is recorded is written atomically at the end.

    Exactly once per (subscriber, period), with any number of senders: on PostgreSQL the rows are taken
    ``FOR UPDATE SKIP LOCKED`` (another sender skips them; one that read them before our commit re-reads
    the updated row and sees the period done); on SQLite the transaction holds the write lock. The
    UNIQUE(subscriber_id, period) of digest_sends backs both up. ``sent``: papers already sent, read
    by a caller that composed before locking (SQLite, where the lock is the whole database)."""
    stmt = select(subscribers.c.id, subscribers.c.last_digest_period).where(
        subscribers.c.id.in_(list(wanted)),
        subscribers.c.status == "active",
        subscribers.c.frequency != "off",
    )
    if store.dialect == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    with store._writer.begin() as conn:
        rows = conn.execute(stmt.order_by(subscribers.c.id)).all()
        free = [r.id for r in rows if r.last_digest_period != wanted[r.id]]
        if sent is None:
            sent = _sent(conn, free) if free else {}
        batch = DigestBatch(conn, free, sent)
        yield batch
        batch._write(now)


def digest_history(store: Store, subscriber_id: int) -> list[tuple[str, str, str | None]]:
    """``(period, status, outbox key)`` of every digest composed for this subscriber, oldest first."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(digest_sends.c.period, digest_sends.c.status, digest_sends.c.outbox_key)
            .where(digest_sends.c.subscriber_id == subscriber_id)
            .order_by(digest_sends.c.claimed_at, digest_sends.c.id)
        ).all()
    return [(r.period, r.status, r.outbox_key) for r in rows]


def sent_paper_ids(store: Store, subscriber_id: int) -> set[str]:
    """Papers this subscriber was already sent (a digest leaves them out)."""
    with store.engine.connect() as conn:
        return _sent(conn, [subscriber_id])[subscriber_id]


def subscriber_ids_by_email(store: Store, emails: list[str]) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(subscribers.c.email, subscribers.c.id).where(subscribers.c.email.in_(emails))
        ).all()
    return {r.email: r.id for r in rows}
