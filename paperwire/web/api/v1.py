"""paperwire's own JSON API, ``/api/v1``: search, papers, similar papers, day/week/month lists.

Every response has a pydantic model, so ``/docs`` and ``/openapi.json`` describe it. Bad input is a
4xx ``{"error": "..."}`` (see :mod:`paperwire.web.app`), never a 5xx.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from paperwire.arxiv_ids import InvalidArxivId, normalize_arxiv_id
from paperwire.search import Filters
from paperwire.search.service import MAX_PER_PAGE, MAX_RESULT_WINDOW, SearchResult
from paperwire.store import StoredPaper
from paperwire.web.api.serialize import HitOut, PaperOut, hit_out, paper_out, site_base
from paperwire.web.common import ApiError, Period, get_engine, get_store, latest_period, period_papers, today
from paperwire.web.ratelimit import limit_search

router = APIRouter(prefix="/api/v1", tags=["paperwire API v1"])

PER_PAGE = 20
MAX_BATCH = 100
MAX_SIMILAR = 50
MAX_FILTER_VALUES = 20
MAX_FILTER_LENGTH = 200
# The keyword index stores dates as nanoseconds (int64): 1677-09-21 to 2262-04-11. Search filters are
# clamped to these days (no paper lies outside); a list of a period outside them is refused.
MIN_DAY, MAX_DAY = date(1678, 1, 1), date(2261, 12, 31)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ERRORS = {
    400: {"description": 'Bad input: `{"error": "..."}` says what'},
    429: {"description": "Too many searches from this client; see Retry-After"},
}
NOT_FOUND = {404: {"description": "Not an arXiv id, or not in this catalogue"}}


class SearchOut(BaseModel):
    query: str
    total: int = Field(description="Papers matching (an estimate for meaning-based modes)")
    page: int
    per_page: int
    pages: int = Field(description=f"Pages that can be fetched (results stop at {MAX_RESULT_WINDOW:,})")
    mode: str = Field(description="The mode that ran (keyword when meaning-based ranking was not used)")
    sort: str
    fallback: bool = Field(description="The query was not valid syntax and was searched as plain words")
    relaxed: bool = Field(description="Not every word matched: the results match most of them")
    meaning_only: bool = Field(
        default=False,
        description="Hybrid search: no paper matches more than half the words, so closeness in meaning "
        "alone ranks the results (a query that describes an idea)",
    )
    corrected: str | None = Field(
        default=None,
        description="Hybrid search: the query with its misspelled words as they were read "
        '("mutaton tetsing" -> "mutation testing"); null when none was',
    )
    lookup: bool = Field(
        default=False,
        description="The query named papers by identifier (arXiv ids or links, DOIs): the hits are those "
        "papers, in the query's order",
    )
    not_found: list[str] = Field(
        default_factory=list,
        description='Identifiers the query named that no paper here has ("arXiv:2501.99999")',
    )
    took_ms: float
    hits: list[HitOut]


class SimilarOut(BaseModel):
    id: str = Field(description="The paper the others are similar to")
    hits: list[HitOut]


class BatchOut(BaseModel):
    papers: list[PaperOut] = Field(description="The papers found, in the order asked")
    missing: list[str] = Field(description="Ids asked for that are not arXiv ids or not in this catalogue")


class ListOut(BaseModel):
    kind: Literal["date", "week", "month"]
    key: str = Field(examples=["2024-01-31", "2024-W05", "2024-01"])
    label: str = Field(examples=["Week 5, 2024 (Jan 29 – Feb 4)"])
    start: date = Field(description="First day of the period")
    end: date = Field(description="Last day of the period")
    previous: str | None = Field(description="Key of the period before")
    next: str | None = Field(description="Key of the period after (null when it has not begun)")
    sort: str
    total: int
    page: int
    per_page: int
    pages: int
    papers: list[HitOut]


# -- helpers --------------------------------------------------------------------------------------------


def lookup_paper(request: Request, paper_id: str) -> StoredPaper:
    """The paper for any spelling of its id (with a version, old style, arXiv URL); 404 otherwise."""
    try:
        canonical = normalize_arxiv_id(paper_id)
    except InvalidArxivId:
        raise ApiError(404, f"{paper_id[:80]!r} is not an arXiv id") from None
    paper = get_store(request).get(canonical)
    if paper is None or paper.hidden:  # a hidden paper is gone for the APIs (admins use the pages)
        raise ApiError(404, f"paper {canonical} not found")
    return paper


def _values(name: str, raw: list[str], split_commas: bool) -> tuple[str, ...]:
    """Repeatable filter values, checked so no filter can make the engine do unbounded work."""
    values = list(dict.fromkeys(v.strip() for r in raw for v in (r.split(",") if split_commas else [r])))
    values = [v for v in values if v]
    if len(values) > MAX_FILTER_VALUES:
        raise ApiError(400, f"at most {MAX_FILTER_VALUES} {name} values")
    for v in values:
        if len(v) > MAX_FILTER_LENGTH:
            raise ApiError(400, f"{name} values must be at most {MAX_FILTER_LENGTH} characters")
        if _CONTROL.search(v):
            raise ApiError(400, f"{name} values must not contain control characters")
    return tuple(values)


def _clamp(value: date | None) -> date | None:
    return None if value is None else min(max(value, MIN_DAY), MAX_DAY)


def parse_period(kind: str, key: str) -> Period:
    """A period from its key, or a 400 that says what is wrong (dates beyond what the index can hold
    included, so a list never fails on a far-off year)."""
    try:
        period = Period.parse(kind, key)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    except OverflowError:  # the day after 9999-12-31
        period = None
    if period is None or not MIN_DAY <= period.start <= MAX_DAY:
        raise ApiError(400, f"{kind} must fall between {MIN_DAY} and {MAX_DAY}")
    return period


def _hits(result: SearchResult, base: str) -> list[HitOut]:
    return [hit_out(h, base) for h in result.hits]


# -- routes ---------------------------------------------------------------------------------------------


@router.get(
    "/search",
    summary="Search papers",
    response_model=SearchOut,
    responses=ERRORS,
    dependencies=[Depends(limit_search)],
)
def search(
    request: Request,
    q: str = Query("", description='Words, "phrases", or arXiv syntax (ti:, au:, AND/OR); empty: newest'),
    mode: Literal["hybrid", "keyword", "semantic"] = Query("hybrid"),
    sort: Literal["relevance", "date", "trending"] = Query("relevance"),
    page: int = Query(1, ge=1),
    per_page: int = Query(PER_PAGE, ge=1, le=MAX_PER_PAGE, description=f"At most {MAX_PER_PAGE}"),
    category: Annotated[
        list[str],
        Query(description="arXiv category (cs.CL) or archive (cs, cs.*); repeatable or comma-separated"),
    ] = [],  # noqa: B006 (FastAPI copies defaults per request)
    author: Annotated[list[str], Query(description="Author name; repeatable, all must match")] = [],  # noqa: B006
    date_from: Annotated[
        date | None, Query(alias="from", description="Published on or after (YYYY-MM-DD)")
    ] = None,
    date_to: Annotated[
        date | None, Query(alias="to", description="Published on or before (YYYY-MM-DD)")
    ] = None,
) -> SearchOut:
    """Keyword, meaning-based or hybrid search with filters. Each hit says why it matched and carries
    highlighted HTML of the title and of the abstract around the matches."""
    filters = Filters(
        published_from=_clamp(date_from),
        published_to=_clamp(date_to),
        categories=_values("category", category, split_commas=True),
        authors=_values("author", author, split_commas=False),
    )
    if date_from and date_to and date_from > date_to:
        raise ApiError(400, f"from ({date_from}) is after to ({date_to})")
    result = get_engine(request).search(q, filters, sort=sort, page=page, per_page=per_page, mode=mode)
    return SearchOut(
        query=result.query,
        total=result.total,
        page=result.page,
        per_page=result.per_page,
        pages=result.pages,
        mode=result.mode,
        sort=result.sort,
        fallback=result.fallback,
        relaxed=result.relaxed,
        meaning_only=result.meaning_only,
        corrected=result.corrected,
        lookup=result.lookup,
        not_found=[str(i) for i in result.not_found],
        took_ms=round(result.took_ms, 2),
        hits=_hits(result, site_base(request)),
    )


@router.get(
    "/papers",
    summary="Several papers by id",
    response_model=BatchOut,
    responses=ERRORS,
)
def papers_batch(
    request: Request,
    ids: str = Query(..., description=f"Comma-separated arXiv ids, at most {MAX_BATCH}"),
) -> BatchOut:
    """Up to 100 papers in one request; ids may carry versions or be old style."""
    asked = [i.strip() for i in ids.split(",") if i.strip()]
    if not asked:
        raise ApiError(400, "ids: give at least one arXiv id")
    if len(asked) > MAX_BATCH:
        raise ApiError(400, f"ids: at most {MAX_BATCH} per request (got {len(asked)})")
    canonical: dict[str, str] = {}
    missing: list[str] = []
    for raw in asked:
        try:
            canonical.setdefault(normalize_arxiv_id(raw), raw)
        except InvalidArxivId:
            missing.append(raw[:80])
    found = get_store(request).get_many(canonical)
    base = site_base(request)
    missing += [raw for cid, raw in canonical.items() if cid not in found]
    return BatchOut(papers=[paper_out(found[c], base) for c in canonical if c in found], missing=missing)


@router.get(
    "/papers/{paper_id:path}/similar",
    summary="Papers similar to one paper",
    response_model=SimilarOut,
    responses={**ERRORS, **NOT_FOUND},
    dependencies=[Depends(limit_search)],
)
def similar(request: Request, paper_id: str, limit: int = Query(10, ge=1, le=MAX_SIMILAR)) -> SimilarOut:
    """The papers nearest in meaning (or, before the paper is embedded, sharing its title's words)."""
    paper = lookup_paper(request, paper_id)
    hits = get_engine(request).similar(paper.id, limit=limit)
    base = site_base(request)
    return SimilarOut(id=paper.id, hits=[hit_out(h, base) for h in hits])


@router.get(
    "/papers/{paper_id:path}",
    summary="One paper",
    response_model=PaperOut,
    responses=NOT_FOUND,
)
def paper(request: Request, paper_id: str) -> PaperOut:
    """Everything known about one paper. Versioned (``2401.00001v2``) and old-style (``hep-th/9901001``)
    ids resolve to the paper."""
    return paper_out(lookup_paper(request, paper_id), site_base(request))


@router.get(
    "/lists/{kind}/{key}",
    summary="A day's, week's or month's papers",
    response_model=ListOut,
    responses=ERRORS,
    dependencies=[Depends(limit_search)],
)
def period_list(
    request: Request,
    kind: Literal["date", "week", "month"],
    key: str,
    sort: Literal["upvotes", "date", "trending"] = Query("upvotes"),
    page: int = Query(1, ge=1),
    per_page: int = Query(30, ge=1, le=MAX_PER_PAGE, description=f"At most {MAX_PER_PAGE}"),
) -> ListOut:
    """The papers submitted to a period, ranked by upvotes (as Hugging Face's daily papers; a period
    nobody submitted to lists the papers published in it): ``date/2024-01-31``, ``week/2024-W05``,
    ``month/2024-01``, or ``{kind}/latest`` for the latest one with papers. ``previous``/``next`` are the
    neighbours' keys."""
    engine = get_engine(request)
    period = latest_period(engine, kind) if key == "latest" else parse_period(kind, key)
    result = period_papers(engine, period, sort=sort, page=page, per_page=per_page)
    following = period.next()
    return ListOut(
        kind=period.kind,
        key=period.key,
        label=period.label,
        start=period.start,
        end=period.end - timedelta(days=1),
        previous=period.previous().key,
        next=following.key if following.start <= today() else None,
        sort=sort,
        total=result.total,
        page=result.page,
        per_page=result.per_page,
        pages=result.pages,
        papers=_hits(result, site_base(request)),
    )
