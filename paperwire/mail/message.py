"""Building messages. Header values never come from raw user input without passing through here: the
``email`` package refuses CR/LF in header values, and addresses are validated before they are used."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr


class InvalidAddress(ValueError):
    """Not an e-mail address we can send to."""


# Deliberately plain: one @, no spaces or control characters, a dotted domain. Exotic but valid forms
# (quoted local parts, IP literals) are not worth the risk in a sign-up form.
_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$"
)


def normalize_address(text: str) -> str:
    """``" Ada@Example.ORG "`` → ``"ada@example.org"``; InvalidAddress when it is not an address."""
    address = (text or "").strip()
    if len(address) > 254 or not _ADDRESS.match(address) or ".." in address:
        raise InvalidAddress(f"not an e-mail address: {address[:80]!r}")
    return address.lower()


def compose(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    headers: dict[str, str] | None = None,
    domain: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """A complete message: From, To, Subject, Date, Message-ID, a plain-text part and (if given) an HTML
    alternative. ``headers`` adds e.g. List-Unsubscribe. Raises ValueError for a header value with a line
    break and InvalidAddress for a bad recipient."""
    recipient = normalize_address(to)
    name, from_address = parseaddr(sender)
    normalize_address(from_address)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = " ".join(subject.split())  # a subject is one line whatever the caller passed
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=domain or from_address.rsplit("@", 1)[1])
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg
