"""Outgoing mail: compose a message, record it in the store's outbox, deliver it over SMTP (or into a
local maildir when no SMTP server is configured), retrying temporary failures with backoff.

    from paperwire.mail import compose, enqueue, deliver_due
"""

from paperwire.mail.message import InvalidAddress, compose, compose_bytes, normalize_address
from paperwire.mail.outbox import DeliveryReport, deliver_due, enqueue
from paperwire.mail.transport import (
    MaildirTransport,
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
    Transport,
    transport_from_settings,
)

__all__ = [
    "DeliveryReport",
    "InvalidAddress",
    "MaildirTransport",
    "PermanentFailure",
    "SmtpTransport",
    "TemporaryFailure",
    "Transport",
    "compose",
    "compose_bytes",
    "deliver_due",
    "enqueue",
    "normalize_address",
    "transport_from_settings",
]
