"""Dates in every form arXiv's sources write them, parsed to aware UTC datetimes."""

from __future__ import annotations

import email.utils
from datetime import UTC, date, datetime


def parse_datetime(text: str | None) -> datetime | None:
    """ISO 8601 (``2024-01-02T03:04:05Z``, ``2016-10-09T00:00:00-04:00``), a bare date (``2024-01-02``)
    or RFC 2822 (``Mon, 2 Apr 2007 19:18:42 GMT``). Returns None for empty input, raises ValueError
    for text that is none of these."""
    if text is None:
        return None
    s = text.strip()
    if not s:
        return None
    if s[:1].isdigit():
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        value = datetime.fromisoformat(s)
    else:
        value = email.utils.parsedate_to_datetime(s)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_date(text: str | None) -> str | None:
    """A ``YYYY-MM-DD`` string from any of the forms :func:`parse_datetime` accepts."""
    value = parse_datetime(text)
    return value.date().isoformat() if value else None


def check_day(text: str) -> str:
    """Validate a ``YYYY-MM-DD`` day given by a user; returns it, raises ValueError with a clear message."""
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise ValueError(f"not a date (expected YYYY-MM-DD): {text!r}") from None
