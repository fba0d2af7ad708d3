"""Send every digest that is due: compose (choose, render, queue in the outbox) and deliver.

Exactly once per (subscriber, period), whatever dies when: a batch of subscribers is locked, composed and
written in one transaction (their digests into the outbox, the period marked done on their rows), so a
crash before the commit leaves nothing and a rerun composes them again, and one after it leaves mail in
the outbox, which the outbox delivers once (see :mod:`paperwire.store.outbox`). Several senders at once
split the subscribers between them (``FOR UPDATE SKIP LOCKED`` on PostgreSQL)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from paperwire.config import Settings
from paperwire.digest.choose import Chooser, Digest
from paperwire.digest.render import Renderer
from paperwire.digest.schedule import Period, current_period, due_period
from paperwire.mail import DeliveryReport, Transport, deliver_due
from paperwire.mail.background import BackgroundDelivery
from paperwire.search.service import SearchEngine
from paperwire.store import Store
from paperwire.store import subscriptions as subs
from paperwire.store.subscriptions import QueuedDigest, Subscriber

log = logging.getLogger("paperwire.digest")

PAGE = 1000  # subscribers read per query
BATCH = 50  # subscribers locked, composed and written per transaction
DEMO_BASE_URL = "http://localhost:8000"


@dataclass
class RunReport:
    checked: int = 0  # active subscribers looked at
    due: int = 0
    queued: int = 0  # digests put in the outbox
    empty: int = 0  # periods with nothing new (nothing sent)
    taken: int = 0  # due, but done by another sender meanwhile
    seconds: float = 0.0
    delivery: DeliveryReport = field(default_factory=DeliveryReport)

    def __str__(self) -> str:
        parts = [f"{self.queued:,} digests queued"]
        if self.empty:
            parts.append(f"{self.empty:,} with nothing new (not sent)")
        if self.taken:
            parts.append(f"{self.taken:,} done by another sender")
        return f"{self.due:,} of {self.checked:,} subscribers due: " + ", ".join(parts)


def base_url(settings: Settings) -> str:
    """Where links in digests point: PAPERWIRE_BASE_URL, or the demo's address when it is unset."""
    return settings.base_url or DEMO_BASE_URL


class DigestComposer:
    """Everything one run needs to turn a subscriber into a message; reusable across runs of a worker
    only for one ``now`` (the chooser's caches are per run)."""

    def __init__(
        self, store: Store, engine: SearchEngine | None, settings: Settings, *, base: str | None = None
    ):
        self.store = store
        self.settings = settings
        self.chooser = Chooser(store, engine)
        self.renderer = Renderer(settings, base or base_url(settings))

    def links(self, subscriber: Subscriber) -> tuple[str, str, dict[str, str]]:
        # Imported here: the web package pulls in FastAPI, which a digest run needs only for these helpers.
        from paperwire.web.subscribe import preferences_url, unsubscribe_headers, unsubscribe_url

        base = self.renderer.base
        unsub = unsubscribe_url(self.settings, subscriber, base_url=base)
        return (
            preferences_url(self.settings, subscriber, base_url=base),
            unsub,
            unsubscribe_headers(self.settings, subscriber, base_url=base, url=unsub),
        )

    def digest(self, subscriber: Subscriber, period: Period, sent: set[str]) -> Digest:
        return self.chooser.choose(subscriber, period, sent)

    def message_bytes(self, digest: Digest) -> bytes:
        prefs, unsub, headers = self.links(digest.subscriber)
        return self.renderer.message(digest, preferences_url=prefs, unsubscribe_url=unsub, headers=headers)


def compose_one(
    composer: DigestComposer, subscriber: Subscriber, period: Period, sent: set[str]
) -> QueuedDigest:
    """One subscriber's digest for ``period``, ready to record (no message: nothing new, nothing sent)."""
    digest = composer.digest(subscriber, period, sent)
    if digest.empty and not subscriber.empty_note:
        return QueuedDigest(subscriber.id, period.key, ())
    return QueuedDigest(
        subscriber.id,
        period.key,
        digest.paper_ids,
        key=f"digest:{subscriber.id}:{period.key}",
        recipient=subscriber.email,
        message=composer.message_bytes(digest),
    )


def compose_due(
    store: Store,
    engine: SearchEngine | None,
    settings: Settings,
    *,
    now: datetime | None = None,
    base: str | None = None,
    on_batch: Callable[[RunReport], None] | None = None,
) -> RunReport:
    """Queue every digest due at ``now`` in the outbox (delivery is :func:`deliver_due`'s)."""
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    composer = DigestComposer(store, engine, settings, base=base)
    report = RunReport()
    after = 0
    while True:
        page = subs.subscribers_page(store, after_id=after, limit=PAGE)
        if not page:
            break
        after = page[-1].id
        report.checked += len(page)
        due = [(s, p) for s in page if (p := due_period(s, now)) is not None]
        report.due += len(due)
        for start in range(0, len(due), BATCH):
            chunk = {s.id: (s, p) for s, p in due[start : start + BATCH]}
            wanted = {sid: p.key for sid, (_, p) in chunk.items()}
            if store.dialect == "sqlite":
                # SQLite's write lock is the whole database (the delivery thread, the web): compose
                # first, then lock only to check and write. Two senders on SQLite may both compose a
                # batch; only the first to write sends it.
                sent = subs.sent_papers(store, list(chunk))
                composed = {sid: compose_one(composer, *chunk[sid], sent[sid]) for sid in chunk}
                with subs.digest_batch(store, wanted, now=now, sent=sent) as batch:
                    for sid in batch.free:
                        batch.record(composed[sid])
            else:
                # PostgreSQL: lock the rows first (SKIP LOCKED), so that concurrent senders split the
                # subscribers instead of composing the same ones.
                with subs.digest_batch(store, wanted, now=now) as batch:
                    for sid in batch.free:
                        batch.record(compose_one(composer, *chunk[sid], batch.sent[sid]))
            report.taken += len(chunk) - len(batch.free)
            for queued in batch.queued:
                if queued.message is None:
                    report.empty += 1
                else:
                    report.queued += 1
            if on_batch is not None:
                on_batch(report)
    report.seconds = time.perf_counter() - started
    return report


def run_digests(
    store: Store,
    engine: SearchEngine | None,
    settings: Settings,
    transport: Transport,
    *,
    now: datetime | None = None,
    base: str | None = None,
    on_batch: Callable[[RunReport], None] | None = None,
    clock_offset: timedelta = timedelta(0),
    background: bool = False,
) -> RunReport:
    """Compose what is due and deliver everything due in the outbox (digests and any other mail).

    ``background``: deliver from a second process while composing (``paperwire.mail.background``; it
    takes its settings from the environment, as the CLI does); otherwise deliver after composing, here.
    Never from a second thread: the outbox's one loss window is the gap between committing "handoff" and
    writing SMTP's final "." (see store/outbox.py), and another Python thread can hold the GIL across
    that gap for milliseconds (delivering from a thread while composing lost a digest in a kill test).
    ``clock_offset``: added to the delivery's clock (a run with ``--now`` shifts it)."""
    started = time.perf_counter()

    def deliver_here() -> DeliveryReport:
        return deliver_due(
            store, transport, settings.mail_from, clock=lambda: datetime.now(UTC) + clock_offset
        )

    if not background:
        report = compose_due(store, engine, settings, now=now, base=base, on_batch=on_batch)
        report.delivery = deliver_here()
    else:
        with BackgroundDelivery(clock_offset) as delivery:
            report = compose_due(store, engine, settings, now=now, base=base, on_batch=on_batch)
            finished = delivery.finish()
        if finished is not None:
            report.delivery = finished
        elif delivery.stopped:
            # Stopped with the rest of the service: what it did not send waits in the outbox.
            report.delivery = DeliveryReport(server_down="the delivery process was stopped")
        else:
            log.warning("the delivery process failed; delivering from this one")
            report.delivery = deliver_here()
    report.seconds = time.perf_counter() - started
    return report


def preview(
    store: Store,
    engine: SearchEngine | None,
    settings: Settings,
    subscriber: Subscriber,
    *,
    now: datetime | None = None,
    base: str | None = None,
) -> tuple[Digest, bytes]:
    """The digest ``subscriber`` would get for the current period, as a message; nothing is recorded."""
    now = now or datetime.now(UTC)
    frequency = subscriber.frequency if subscriber.frequency != "off" else "daily"
    period = current_period(frequency, subscriber.hour, subscriber.timezone, True, now)
    assert period is not None
    composer = DigestComposer(store, engine, settings, base=base)
    digest = composer.digest(subscriber, period, subs.sent_paper_ids(store, subscriber.id))
    return digest, composer.message_bytes(digest)
