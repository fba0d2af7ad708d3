"""What the pages, the APIs and the feeds share: errors, the engine, and periods (day, week, month)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from fastapi import Request
from markupsafe import Markup, escape

from paperwire.latex import readable
from paperwire.search import Filters, QueryError, SearchEngine
from paperwire.search.service import SearchResult
from paperwire.store import Store, StoredPaper
from paperwire.store.votes import DailyEntry, daily_list, latest_daily_day


class ApiError(Exception):
    """A client error: rendered as ``{"error": message}`` (JSON APIs) or an error page (HTML)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def site_base(request: Request) -> str:
    """This instance's public address, for absolute links (feeds, e-mails, APIs): PAPERWIRE_BASE_URL when
    set (behind a proxy), else the address the request came to."""
    return request.app.state.settings.base_url or str(request.base_url).rstrip("/")


def split_values(values: list[str], *, commas: bool) -> tuple[str, ...]:
    """Repeatable form values, trimmed, empty ones dropped (``category=cs.CL,cs.LG`` when ``commas``)."""
    return tuple(
        v.strip() for value in values for v in (value.split(",") if commas else [value]) if v.strip()
    )


def parse_day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise QueryError(f"{name} must be a date like 2024-01-31, got {text[:40]!r}") from None


def search_filters(
    categories: tuple[str, ...], authors: tuple[str, ...], date_from: str | None, date_to: str | None
) -> Filters:
    """The filters of the search page and the search feeds (QueryError, a 400, for bad dates)."""
    filters = Filters(
        published_from=parse_day(date_from, "from"),
        published_to=parse_day(date_to, "to"),
        categories=categories,
        authors=authors,
    )
    if filters.published_from and filters.published_to and filters.published_from > filters.published_to:
        raise QueryError("the start date is after the end date")
    return filters


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


_LATEST: dict[int, tuple[float, date]] = {}
LATEST_SECONDS = 5.0


def latest_day(engine: SearchEngine) -> date:
    """The day of the newest daily submission, else of the newest paper; remembered for a few seconds
    (every page's navigation asks for it)."""
    now = time.monotonic()
    cached = _LATEST.get(id(engine))
    if cached is not None and now - cached[0] < LATEST_SECONDS:
        return cached[1]
    day = latest_daily_day(engine.store) or engine.store.newest_published_day() or today()
    _LATEST[id(engine)] = (now, day)
    return day


def latest_period(engine: SearchEngine, kind: str) -> Period:
    """The period holding the newest daily submission, else the newest paper (today's list is empty until
    papers of today arrive)."""
    return Period.containing(kind, latest_day(engine))


@dataclass(frozen=True, slots=True)
class Listed:
    """A paper on a day's list, with how it got there (what the Hub calls submittedOnDaily*)."""

    paper: StoredPaper
    entry: DailyEntry | None = None

    @property
    def id(self) -> str:
        return self.paper.id

    # The rest of a search Hit's face, so every list serialises like search results.
    @property
    def score(self) -> float:
        return float(self.paper.votes)

    @property
    def title_html(self) -> Markup:
        return escape(readable(self.paper.title))

    @property
    def abstract_html(self) -> Markup:
        return escape(readable(self.paper.abstract))

    @property
    def matched(self) -> list[str]:
        return []


_DAILY_SORTS = {"upvotes": "upvotes", "date": "published", "trending": "trending"}
LIST_SORTS = tuple(_DAILY_SORTS)


def submitter_name(entry: DailyEntry) -> str | None:
    """Who put the paper on the list, as shown publicly: an imported list's user name, or a pseudonym for
    a user of this instance (never their e-mail address)."""
    if entry.submitter_name:
        return entry.submitter_name
    return f"user-{entry.submitted_by}" if entry.submitted_by is not None else None


def period_papers(
    engine: SearchEngine,
    period: Period,
    *,
    sort: str = "upvotes",
    page: int = 1,
    per_page: int = 30,
    filters: Filters | None = None,
    submitter: str | None = None,
) -> SearchResult:
    """The papers of a day, week or month, as Hugging Face's daily papers: the papers submitted to it,
    ranked by upvotes (``sort``: upvotes, date, trending). A period nobody submitted papers to lists the
    papers published in it instead (``mode == "published"``), so a fresh instance is not empty."""
    if sort not in _DAILY_SORTS:
        raise QueryError(f"sort must be one of {', '.join(_DAILY_SORTS)}")
    if filters is None or filters.is_empty():
        if submitter is not None:
            # Few submissions per period: filter them here rather than teach the store about pseudonyms.
            everything, _ = daily_list(
                engine.store, period.start, period.end - timedelta(days=1), _DAILY_SORTS[sort], 10_000
            )
            mine = [(p, e) for p, e in everything if submitter_name(e) == submitter]
            chosen = mine[(page - 1) * per_page : page * per_page]
            return _listed(chosen, len(mine), page, per_page, sort)
        entries, total = daily_list(
            engine.store,
            period.start,
            period.end - timedelta(days=1),
            _DAILY_SORTS[sort],
            limit=per_page,
            offset=(page - 1) * per_page,
        )
        if total:
            return _listed(entries, total, page, per_page, sort)
    elif submitter is not None:
        return _listed([], 0, page, per_page, sort)
    result = engine.search(
        "",
        period.filters(filters),
        sort="trending" if sort == "trending" else "date",
        page=page,
        per_page=per_page,
        mode="keyword",
    )
    return replace(result, mode="published", sort=sort)


def _listed(entries: list, total: int, page: int, per_page: int, sort: str) -> SearchResult:
    hits = [Listed(paper, entry) for paper, entry in entries]
    return SearchResult(
        query="", hits=hits, total=total, page=page, per_page=per_page, mode="daily", sort=sort
    )
