"""What the pages, the APIs and the feeds share: errors, the engine, and periods (day, week, month)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from fastapi import Request

from paperwire.search import Filters, SearchEngine
from paperwire.search.service import SearchResult
from paperwire.store import Store


class ApiError(Exception):
    """A client error: rendered as ``{"error": message}`` (JSON APIs) or an error page (HTML)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_engine(request: Request) -> SearchEngine:
    return request.app.state.engine


# -- periods --------------------------------------------------------------------------------------------

_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Period:
    """A day, an ISO week or a month: ``start`` inclusive, ``end`` exclusive."""

    kind: str  # "date", "week" or "month"
    start: date
    end: date

    @property
    def key(self) -> str:
        if self.kind == "date":
            return self.start.isoformat()
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.start.year}-{self.start.month:02d}"

    @property
    def label(self) -> str:
        if self.kind == "date":
            return f"{self.start:%A, %B} {self.start.day}, {self.start.year}"
        if self.kind == "week":
            last = self.end - timedelta(days=1)
            year, week, _ = self.start.isocalendar()
            return f"Week {week}, {year} ({self.start:%b} {self.start.day} – {last:%b} {last.day})"
        return f"{self.start:%B %Y}"

    @property
    def path(self) -> str:
        return f"/papers/{self.kind}/{self.key}"

    def previous(self) -> Period:
        try:
            return Period.containing(self.kind, self.start - timedelta(days=1))
        except OverflowError:  # before year 1
            return self

    def next(self) -> Period:
        try:
            return Period.containing(self.kind, self.end)
        except OverflowError:  # after year 9999
            return self

    def filters(self, base: Filters | None = None) -> Filters:
        base = base or Filters()
        return Filters(
            published_from=self.start,
            published_to=self.end - timedelta(days=1),
            categories=base.categories,
            authors=base.authors,
        )

    @classmethod
    def containing(cls, kind: str, day: date) -> Period:
        if kind == "date":
            return cls("date", day, day + timedelta(days=1))
        if kind == "week":
            start = day - timedelta(days=day.weekday())
            return cls("week", start, start + timedelta(days=7))
        if kind == "month":
            start = day.replace(day=1)
            end = (start + timedelta(days=32)).replace(day=1)
            return cls("month", start, end)
        raise ValueError(f"unknown period kind {kind!r}")

    @classmethod
    def parse(cls, kind: str, text: str) -> Period:
        """``2024-01-31`` (date), ``2024-W05`` (week), ``2024-01`` (month); ValueError says what is wrong."""
        text = text.strip()
        try:
            if kind == "date" and (m := _DAY.match(text)):
                return cls.containing("date", date(int(m[1]), int(m[2]), int(m[3])))
            if kind == "week" and (m := _WEEK.match(text)):
                return cls.containing("week", date.fromisocalendar(int(m[1]), int(m[2]), 1))
            if kind == "month" and (m := _MONTH.match(text)):
                return cls.containing("month", date(int(m[1]), int(m[2]), 1))
        except (ValueError, OverflowError):  # 2024-02-30, or a period whose end is past year 9999
            pass
        expected = {"date": "YYYY-MM-DD", "week": "YYYY-Www", "month": "YYYY-MM"}.get(kind, "?")
        raise ValueError(f"invalid {kind} {text[:40]!r}: expected {expected}")


def today() -> date:
    return datetime.now(UTC).date()


def latest_period(engine: SearchEngine, kind: str) -> Period:
    """The period holding the newest paper (today's list is empty until papers of today arrive)."""
    newest = engine.store.newest(limit=1)
    day = newest[0].published.date() if newest and newest[0].published else today()
    return Period.containing(kind, day)


def period_papers(
    engine: SearchEngine,
    period: Period,
    *,
    sort: str = "date",
    page: int = 1,
    per_page: int = 30,
    filters: Filters | None = None,
) -> SearchResult:
    """The papers of a day, week or month. Until daily submissions exist (the trending issue), a day's list
    is the papers published that day."""
    return engine.search("", period.filters(filters), sort=sort, page=page, per_page=per_page, mode="keyword")
