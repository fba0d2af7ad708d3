"""When a subscriber's digest is due: the period (``daily:2026-11-27``, ``weekly:2026-W48``) whose
delivery time has come in the subscriber's time zone, and not yet composed.

Daily digests go out at the chosen hour on arXiv's announcement days (Monday to Friday: arXiv mails new
submissions Sunday to Thursday evenings, US Eastern, which is the next morning for most readers) unless the
subscriber asked for weekends too. Weekly digests go out on Mondays at the chosen hour.

A run that comes late still sends the current period (a worker restarted at 10:00 sends the 08:00 digest),
but a period missed entirely is skipped, not sent late next to the following one: its papers are still
new for the next digest, which leaves out only what was already sent."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache

from paperwire.store.subscriptions import Subscriber

# How late a period may still be sent.
CATCH_UP = {"daily": timedelta(hours=20), "weekly": timedelta(days=3)}
# However the time zone or frequency changes, two digests are never this close together.
MIN_GAP = timedelta(hours=12)
# Papers published this many days up to the catalogue's newest day are a period's candidates (the
# subscriber's earlier digests are left out, so a wide window repeats nothing).
WINDOW_DAYS = {"daily": 3, "weekly": 7}


@dataclass(frozen=True, slots=True)
class Period:
    key: str  # "daily:2026-11-27" / "weekly:2026-W48": one digest per subscriber and key, ever
    frequency: str
    day: date  # the local day it is for (a weekly period's Monday)
    scheduled: datetime  # when it is due (aware)

    @property
    def label(self) -> str:
        if self.frequency == "weekly":
            iso = self.day.isocalendar()
            return f"week {iso.week} of {iso.year}"
        return f"{self.day:%A}, {self.day:%-d %B %Y}"


@cache
def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _at(day: date, hour: int, zone: zoneinfo.ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=zone)


def current_period(frequency: str, hour: int, timezone: str, weekends: bool, now: datetime) -> Period | None:
    """The latest period whose delivery time is at or before ``now`` (None for frequency ``off``)."""
    zone = _zone(timezone)
    local = now.astimezone(zone)
    hour = min(23, max(0, hour))
    if frequency == "daily":
        day = local.date() if local.hour >= hour else local.date() - timedelta(days=1)
        while not weekends and day.weekday() >= 5:
            day -= timedelta(days=1)
        return Period(f"daily:{day.isoformat()}", "daily", day, _at(day, hour, zone))
    if frequency == "weekly":
        monday = local.date() - timedelta(days=local.weekday())
        if _at(monday, hour, zone) > local:
            monday -= timedelta(days=7)
        iso = monday.isocalendar()
        return Period(f"weekly:{iso.year}-W{iso.week:02d}", "weekly", monday, _at(monday, hour, zone))
    return None


def due_period(subscriber: Subscriber, now: datetime) -> Period | None:
    """The period to compose for ``subscriber`` now, or None when nothing is due."""
    if subscriber.status != "active":
        return None
    period = current_period(
        subscriber.frequency, subscriber.hour, subscriber.timezone, subscriber.weekends, now
    )
    if period is None or period.key == subscriber.last_digest_period:
        return None
    if now - period.scheduled > CATCH_UP[period.frequency]:
        return None  # missed entirely: wait for the next one
    if subscriber.confirmed_at is not None and period.scheduled < subscriber.confirmed_at:
        return None  # the first digest is the first delivery time after confirming
    if subscriber.last_digest_at is not None and now - subscriber.last_digest_at < MIN_GAP:
        return None
    return period


def next_delivery(subscriber: Subscriber, now: datetime) -> datetime | None:
    """When the next digest is due after ``now`` (for the preferences page and `digest preview`)."""
    if subscriber.frequency not in ("daily", "weekly"):
        return None
    zone = _zone(subscriber.timezone)
    today = now.astimezone(zone).date()
    for ahead in range(15):
        day = today + timedelta(days=ahead)
        if subscriber.frequency == "weekly" and day.weekday() != 0:
            continue
        if subscriber.frequency == "daily" and not subscriber.weekends and day.weekday() >= 5:
            continue
        at = _at(day, min(23, max(0, subscriber.hour)), zone)
        if at > now:
            return at
    return None
