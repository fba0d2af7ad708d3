"""Queue and deliver: every message is recorded in the store before it is sent and marked sent only after
the server accepted it, so a crash loses nothing. Temporary failures are retried with exponential
backoff (an outage delays mail, never drops it); a permanent rejection suppresses the address."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr

from paperwire.mail.transport import HandoffRefused, PermanentFailure, TemporaryFailure, Transport
from paperwire.store import Store, subscriptions
from paperwire.store import outbox as box

log = logging.getLogger("paperwire.mail")

# A sender that dies leaves its claimed messages "sending"; after this lease another sender takes them.
LEASE = timedelta(minutes=5)
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(hours=1)
# Temporary failures for this long become permanent (the message is marked failed, the address is not).
GIVE_UP_AFTER = timedelta(days=3)


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    suppressed: int = 0
    server_down: str | None = None  # why delivery stopped early

    def add(self, other: DeliveryReport) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.suppressed += other.suppressed
        self.server_down = other.server_down or self.server_down

    def __str__(self) -> str:
        parts = [f"{self.sent:,} sent"]
        if self.retried:
            parts.append(f"{self.retried} to retry")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.server_down:
            parts.append(f"stopped: {self.server_down}")
        return ", ".join(parts)


def enqueue(store: Store, message: EmailMessage, *, key: str, kind: str, now: datetime | None = None) -> bool:
    """Record ``message`` under ``key`` (at most one message per key, ever); False if it was already there."""
    recipient = parseaddr(message["To"])[1]
    return box.add(
        store, key=key, kind=kind, recipient=recipient, message=bytes(message), now=now or datetime.now(UTC)
    )


def backoff(attempts: int) -> timedelta:
    return min(MAX_RETRY, FIRST_RETRY * (2 ** max(0, attempts - 1)))


def deliver_due(
    store: Store,
    transport: Transport,
    sender: str,
    *,
    batch: int = 50,
    limit: int | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> DeliveryReport:
    """Send what is due, batch by batch, until nothing is due, ``limit`` messages went, or the server is
    down. ``sender`` is the envelope sender (the From address)."""
    envelope_from = parseaddr(sender)[1]
    report = DeliveryReport()
    done = 0
    owner = box.process_identity()
    box.recover(store, now=clock())
    # Messages the server accepted are marked sent once a batch (one commit a message, not two): a
    # "handoff" row counts as sent if we die first (see store/outbox.py).
    accepted: list[int] = []

    with transport:
        while limit is None or done < limit:
            claimed = box.claim_due(
                store,
                now=clock(),
                limit=batch if limit is None else min(batch, limit - done),
                lease=LEASE,
                owner=owner,
            )
            if not claimed:
                break
            suppressed = box.suppressed_among(store, {item.recipient for item in claimed})
            for i, item in enumerate(claimed):
                done += 1
                if item.recipient in suppressed:
                    box.mark_failed(store, item.id, error="address suppressed")
                    report.failed += 1
                    continue
                try:
                    transport.send(
                        envelope_from,
                        item.recipient,
                        item.message,
                        on_handoff=lambda item=item: box.mark_handoff(store, item.id, owner=owner),
                    )
                except HandoffRefused:
                    continue  # our lease ran out and another sender has it now
                except PermanentFailure as exc:
                    box.mark_failed(store, item.id, error=str(exc))
                    box.suppress(store, item.recipient, reason=str(exc), now=clock())
                    # No digest goes to a bounced subscription (it must sign up and confirm again).
                    subscriptions.mark_bounced(store, item.recipient, now=clock())
                    report.failed += 1
                    report.suppressed += 1
                    log.warning("permanent failure for %s: %s", item.recipient, exc)
                    continue
                except TemporaryFailure as exc:
                    _retry_or_give_up(store, item, str(exc), clock(), report)
                    if exc.server_down:
                        # Nothing else will get through now: put the rest of the batch back, untried.
                        for rest in claimed[i + 1 :]:
                            box.mark_retry(
                                store, rest.id, error=str(exc), at=clock() + backoff(rest.attempts)
                            )
                            report.retried += 1
                        report.server_down = str(exc)
                        box.mark_sent_many(store, accepted, now=clock())
                        accepted.clear()
                        return report
                    continue
                accepted.append(item.id)
                report.sent += 1
            box.mark_sent_many(store, accepted, now=clock())
            accepted.clear()
    return report


def _retry_or_give_up(
    store: Store, item: box.OutboxMessage, error: str, now: datetime, report: DeliveryReport
) -> None:
    if now - item.created_at > GIVE_UP_AFTER:
        box.mark_failed(store, item.id, error=f"gave up after {item.attempts} attempts: {error}")
        report.failed += 1
    else:
        box.mark_retry(store, item.id, error=error, at=now + backoff(item.attempts))
        report.retried += 1
