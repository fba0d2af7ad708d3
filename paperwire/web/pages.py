"""HTML pages: the front page, daily/weekly/monthly lists, search, a paper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from paperwire.arxiv_ids import InvalidArxivId, normalize_arxiv_id
from paperwire.search import QueryError
from paperwire.search.service import (
    DEFAULT_MODE,
    DEFAULT_SORT,
    MAX_RESULT_WINDOW,
    MODES,
    SORTS,
    SearchResult,
)
from paperwire.store import votes
from paperwire.web.auth import current_user
from paperwire.web.common import (
    LIST_SORTS,
    ApiError,
    Listed,
    Period,
    get_engine,
    get_store,
    latest_period,
    period_papers,
    search_filters,
    site_base,
    split_values,
    today,
)
from paperwire.web.ratelimit import limit_search
from paperwire.web.templating import templates

router = APIRouter(include_in_schema=False)
PER_PAGE = 20
LIST_PER_PAGE = 30
SIMILAR = 6


def _page_number(page: int, per_page: int) -> int:
    """Clamp to the pages that can exist, so a hand-edited URL gets the last page, not an error."""
    return max(1, min(page, MAX_RESULT_WINDOW // per_page))


TRENDING_WINDOWS = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=31),
    "all": None,
}


@router.get("/", response_class=HTMLResponse)
def home(request: Request, page: int = 1, window: str = "week") -> Response:
    """Trending papers (votes with time decay, see docs/trending.md) of the last day, week, month or all
    time; a window with nothing in it widens to all time, and an instance without votes shows the newest
    papers."""
    engine = get_engine(request)
    store = get_store(request)
    page = _page_number(page, LIST_PER_PAGE)
    window = window if window in TRENDING_WINDOWS else "week"
    shown = window
    span = TRENDING_WINDOWS[window]
    offset = (page - 1) * LIST_PER_PAGE
    papers, total = votes.trending(
        store, since=datetime.now(UTC) - span if span else None, limit=LIST_PER_PAGE, offset=offset
    )
    if total == 0 and span is not None:
        shown = "all"
        papers, total = votes.trending(store, since=None, limit=LIST_PER_PAGE, offset=offset)
    if total:
        result = SearchResult(
            query="", hits=[Listed(p) for p in papers], total=total, page=page, per_page=LIST_PER_PAGE,
            mode="trending", sort="trending",
        )  # fmt: skip
    else:
        result = engine.search("", sort="date", page=page, per_page=LIST_PER_PAGE, mode="keyword")
    return templates.TemplateResponse(
        request,
        "index.html",
        {
            "result": result,
            "trending": bool(total),
            "window": window,
            "shown_window": shown,
            "windows": list(TRENDING_WINDOWS),
            "voted": _voted(request, result.hits),
            "total_papers": engine.searchable(),
            "latest": {kind: latest_period(engine, kind) for kind in ("date", "week", "month")},
        },
    )


def _voted(request: Request, hits: list) -> set[str]:
    """Which of these papers the signed-in visitor upvoted (their buttons show it)."""
    user = current_user(request)
    if user is None or not hits:
        return set()
    return votes.user_votes(get_store(request), user.id, [h.id for h in hits])


@router.get("/papers", response_class=HTMLResponse)
def papers_today(request: Request) -> Response:
    return RedirectResponse(latest_period(get_engine(request), "date").path, status_code=302)


@router.get("/papers/{kind}", response_class=HTMLResponse)
def latest_list(request: Request, kind: str) -> Response:
    """``/papers/week``: the latest week with papers; anything else here is a new-style id."""
    if kind in ("date", "week", "month"):
        return RedirectResponse(latest_period(get_engine(request), kind).path, status_code=302)
    return paper_page(request, kind)


@router.get("/papers/{kind}/{key}", response_class=HTMLResponse)
def period_list(
    request: Request, kind: str, key: str, page: int = 1, sort: str = "upvotes", submitted: str | None = None
) -> Response:
    if kind not in ("date", "week", "month"):
        return paper_page(request, f"{kind}/{key}")  # old-style ids look like this: hep-th/9901001
    try:
        period = Period.parse(kind, key)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    if sort not in LIST_SORTS:
        sort = "upvotes"
    engine = get_engine(request)
    page = _page_number(page, LIST_PER_PAGE)
    result = period_papers(engine, period, sort=sort, page=page, per_page=LIST_PER_PAGE)
    return templates.TemplateResponse(
        request,
        "list.html",
        {
            "period": period,
            "result": result,
            "sort": sort,
            "sorts": LIST_SORTS,
            "voted": _voted(request, result.hits),
            "submitted": submitted if submitted and any(h.id == submitted for h in result.hits) else None,
            "is_today": period.kind == "date" and period.start == today(),
            "today": Period.containing("date", today()),
            "others": {k: Period.containing(k, period.start) for k in ("date", "week", "month")},
        },
    )


@router.get("/search", response_class=HTMLResponse, dependencies=[Depends(limit_search)])
def search_page(
    request: Request,
    q: str = "",
    mode: str = DEFAULT_MODE,
    sort: str = DEFAULT_SORT,
    category: list[str] = Query(default=[]),  # noqa: B008
    author: list[str] = Query(default=[]),  # noqa: B008
    date_from: str | None = Query(default=None, alias="from"),
    date_to: str | None = Query(default=None, alias="to"),
    page: int = 1,
) -> Response:
    categories = split_values(category, commas=True)
    authors = split_values(author, commas=False)
    form = {
        "q": q,
        "mode": mode if mode in MODES else DEFAULT_MODE,
        "sort": sort if sort in SORTS else DEFAULT_SORT,
        "category": ", ".join(categories),
        "author": authors[0] if authors else "",
        "from": date_from or "",
        "to": date_to or "",
    }
    context: dict = {
        "form": form,
        "result": None,
        "error": None,
        "modes": MODES,
        "sorts": SORTS,
        "defaults": {"mode": DEFAULT_MODE, "sort": DEFAULT_SORT},
    }
    status = 200
    try:
        filters = search_filters(categories, authors, date_from, date_to)
        page = _page_number(page, PER_PAGE)
        context["result"] = get_engine(request).search(
            q, filters, sort=form["sort"], page=page, per_page=PER_PAGE, mode=form["mode"]
        )
        context["voted"] = _voted(request, context["result"].hits)
    except QueryError as exc:
        context["error"] = str(exc)
        status = 400
    params = {
        k: v for k, v in form.items() if v and (k, v) not in (("mode", DEFAULT_MODE), ("sort", DEFAULT_SORT))
    }
    context["base_query"] = urlencode(params)
    corrected = context["result"].corrected if context["result"] else None
    if corrected:  # the same search, filters and all, of the words as the search read them
        context["corrected_query"] = urlencode({**params, "q": corrected})
    return templates.TemplateResponse(request, "search.html", context, status_code=status)


def _canonical_or_404(paper_id: str) -> str:
    try:
        return normalize_arxiv_id(paper_id)
    except InvalidArxivId:
        raise ApiError(404, f"{paper_id[:80]} is not an arXiv id") from None


@router.get("/abs/{paper_id:path}", include_in_schema=False)
def arxiv_link(paper_id: str) -> Response:
    """An arXiv link with this site's host in place of arxiv.org's: the paper's page here (the way
    huggingface.co/papers/ID is reached by editing an arXiv link)."""
    canonical = _canonical_or_404(paper_id)
    return RedirectResponse(f"/papers/{canonical}", status_code=301)


@router.get("/papers/{paper_id:path}", response_class=HTMLResponse)
def paper_page(request: Request, paper_id: str) -> Response:
    canonical = _canonical_or_404(paper_id)
    paper = get_store(request).get(canonical)
    user = current_user(request)
    if paper is None or (paper.hidden and not (user and user.is_admin)):
        raise ApiError(404, f"arXiv:{canonical} is not in this catalogue")
    similar = get_engine(request).similar(paper.id, limit=SIMILAR)
    return templates.TemplateResponse(
        request,
        "paper.html",
        {
            "paper": paper,
            "similar": similar,
            "voted": _voted(request, [Listed(paper)]),
            "entry": votes.daily_entry(get_store(request), paper.id),
            "user": user,
        },
    )


@router.get("/opensearch.xml")
def opensearch(request: Request) -> Response:
    """Lets browsers add paperwire as a search engine (type "paperwire" then Tab in the address bar)."""
    body = templates.get_template("opensearch.xml").render(base=site_base(request))
    return Response(body, media_type="application/opensearchdescription+xml")
