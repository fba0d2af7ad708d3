"""RSS 2.0 and Atom feeds: the front page list, every day's, week's and month's list, and any search.

A feed reader subscribed to ``/papers/date.rss`` gets each day's new papers; one subscribed to
``/search.atom?q=...&category=cs.CL`` gets new matches for a saved search. Every feed lists papers the
way the matching HTML page does (same engine call, same parameters), with absolute links built from
PAPERWIRE_BASE_URL (or the request's address) so they work outside the site. A paper's guid / Atom id
is its page on this site without a version: stable, so readers never show a revised paper twice.

Routes (each also as ``.atom``): ``/feed.rss`` (newest, or trending once papers have votes),
``/papers/{date|week|month}.rss`` (the latest such period), ``/papers/date/2007-04-02.rss``,
``/papers/week/2007-W14.rss``, ``/papers/month/2007-04.rss``, ``/search.rss?q=...`` (with the search
page's mode, sort, category, author, from and to).
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paperwire import __version__
from paperwire.latex import readable
from paperwire.search import QueryError
from paperwire.search.service import DEFAULT_MODE, DEFAULT_SORT, MAX_PER_PAGE, MODES, SORTS
from paperwire.store import StoredPaper
from paperwire.web.api.arxiv import ATOM_NS, atom_date, atom_root, serialize, sub
from paperwire.web.api.serialize import abs_url, page_url, pdf_url, site_base
from paperwire.web.common import (
    ApiError,
    Period,
    get_engine,
    latest_period,
    period_papers,
    search_filters,
    split_values,
)
from paperwire.web.ratelimit import limit_search

router = APIRouter(include_in_schema=False)

RSS_TYPE = "application/rss+xml"
ATOM_TYPE = "application/atom+xml"
FORMATS = {"rss": RSS_TYPE, "atom": ATOM_TYPE}
DC_NS = "http://purl.org/dc/elements/1.1/"
ARXIV_SCHEME = "http://arxiv.org/schemas/atom"
# Entries per feed unless ?limit= asks otherwise. A day's, week's or month's feed lists the whole period
# up to PERIOD_FEED_SIZE (a busy arXiv day has several hundred papers; arXiv's own daily feeds list them
# all); the front page and searches are streams, where the newest or best hundred is what readers show.
FEED_SIZE = 100
PERIOD_FEED_SIZE = 500
MAX_FEED_SIZE = 1000
PERIOD_KINDS = ("date", "week", "month")
SITE_NAME = "paperwire"

ET.register_namespace("atom", ATOM_NS)  # RSS's <atom:link rel="self">
ET.register_namespace("dc", DC_NS)


@dataclass
class FeedSpec:
    """What both formats say: the feed's title and description, the HTML page it mirrors, its own
    address and the papers, in the page's order."""

    title: str
    description: str
    page: str  # absolute URL of the HTML page
    self_path: str  # path and query of this feed without the extension, e.g. /papers/month/2007-04
    query: str  # the feed URL's query string ("" for none)
    papers: list[StoredPaper]


# -- rendering ------------------------------------------------------------------------------------------


def _when(paper: StoredPaper) -> datetime | None:
    return paper.published or paper.updated


def _latest(papers: Sequence[StoredPaper]) -> datetime | None:
    dates = [d for p in papers if (d := p.updated or p.published) is not None]
    return max(dates) if dates else None


def _self_url(base: str, spec: FeedSpec, fmt: str) -> str:
    return f"{base}{spec.self_path}.{fmt}" + (f"?{spec.query}" if spec.query else "")


def _summary_html(paper: StoredPaper, base: str) -> str:
    """The entry's body as an HTML fragment (authors, abstract paragraphs, links), built as a tree and
    serialised by ElementTree, so no text from the paper can become markup."""
    div = ET.Element("div")
    if paper.authors:
        sub(div, "p", ", ".join(a.name for a in paper.authors))
    for paragraph in readable(paper.abstract).split("\n"):
        if paragraph.strip():
            sub(div, "p", paragraph.strip())
    facts = [x for x in (paper.comments, paper.journal_ref) if x]
    if facts:
        sub(div, "p", " · ".join(facts))
    links = sub(div, "p")
    targets = (
        (SITE_NAME, page_url(base, paper.id)),
        (f"arXiv:{paper.id}", abs_url(paper.id)),
        ("PDF", pdf_url(paper.id)),
    )
    for i, (label, href) in enumerate(targets):
        a = sub(links, "a", label, href=href)
        if i < len(targets) - 1:
            a.tail = " · "
    return ET.tostring(div, encoding="unicode", method="html")


def render_rss(spec: FeedSpec, base: str) -> bytes:
    """RSS 2.0 (with ``atom:link rel="self"``, as the RSS Advisory Board recommends); dates RFC 822."""
    rss = ET.Element("rss", {"version": "2.0"})
    channel = sub(rss, "channel")
    sub(channel, "title", spec.title)
    sub(channel, "link", spec.page)
    sub(channel, "description", spec.description)
    sub(channel, "language", "en")
    latest = _latest(spec.papers)
    if latest is not None:
        sub(channel, "lastBuildDate", format_datetime(latest.astimezone(UTC), usegmt=True))
    sub(channel, "generator", f"{SITE_NAME} {__version__}")
    sub(channel, "docs", "https://www.rssboard.org/rss-specification")
    sub(channel, f"{{{ATOM_NS}}}link", href=_self_url(base, spec, "rss"), rel="self", type=RSS_TYPE)
    for paper in spec.papers:
        url = page_url(base, paper.id)
        item = sub(channel, "item")
        sub(item, "title", readable(paper.title))
        sub(item, "link", url)
        sub(item, "guid", url, isPermaLink="true")
        when = _when(paper)
        if when is not None:
            sub(item, "pubDate", format_datetime(when.astimezone(UTC), usegmt=True))
        sub(item, "description", _summary_html(paper, base))
        for author in paper.authors:
            sub(item, f"{{{DC_NS}}}creator", author.name)
        for category in paper.categories:
            sub(item, "category", category, domain=ARXIV_SCHEME)
    return serialize(rss)


def render_atom(spec: FeedSpec, base: str) -> bytes:
    """Atom 1.0: text constructs typed ``text`` (a title is never read as HTML), the body as ``html``."""
    self_url = _self_url(base, spec, "atom")
    feed = atom_root()
    sub(feed, "id", self_url)
    sub(feed, "title", spec.title, type="text")
    sub(feed, "subtitle", spec.description, type="text")
    sub(feed, "updated", atom_date(_latest(spec.papers) or datetime.now(UTC)))
    sub(feed, "link", rel="self", type=ATOM_TYPE, href=self_url)
    sub(feed, "link", rel="alternate", type="text/html", href=spec.page)
    sub(feed, "generator", SITE_NAME, version=__version__)
    for paper in spec.papers:
        url = page_url(base, paper.id)
        entry = sub(feed, "entry")
        sub(entry, "id", url)
        sub(entry, "title", readable(paper.title), type="text")
        updated = paper.updated or paper.published
        sub(entry, "updated", atom_date(updated or datetime.now(UTC)))
        if paper.published is not None:
            sub(entry, "published", atom_date(paper.published))
        for author in paper.authors:
            sub(sub(entry, "author"), "name", author.name)
        sub(entry, "link", rel="alternate", type="text/html", href=url)
        sub(entry, "link", rel="related", type="text/html", href=abs_url(paper.id), title="arXiv")
        sub(entry, "link", rel="related", type="application/pdf", href=pdf_url(paper.id), title="pdf")
        for category in paper.categories:
            sub(entry, "category", term=category, scheme=ARXIV_SCHEME)
        # The body once (authors, abstract, links), as HTML; a plain-text <summary> would double the feed.
        sub(entry, "content", _summary_html(paper, base), type="html")
    return serialize(feed)


def feed_response(request: Request, spec: FeedSpec, fmt: str) -> Response:
    """The feed in ``fmt``, with an ETag: readers that poll every few minutes get 304s until it changes."""
    base = site_base(request)
    body = render_rss(spec, base) if fmt == "rss" else render_atom(spec, base)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=f"{FORMATS[fmt]}; charset=utf-8", headers=headers)


# -- what each feed lists ---------------------------------------------------------------------------------


def _has_trending(request: Request) -> bool:
    hits = get_engine(request).search("", sort="trending", per_page=1).hits
    return bool(hits and hits[0].paper.trending_score > 0)


def _papers(run, limit: int) -> list[StoredPaper]:  # noqa: ANN001
    """The first ``limit`` papers of a listing, read in engine pages."""
    papers: list[StoredPaper] = []
    page = 1
    while len(papers) < limit:
        per_page = min(MAX_PER_PAGE, limit)
        result = run(page, per_page)
        papers.extend(hit.paper for hit in result.hits)
        if len(result.hits) < per_page or page * per_page >= result.total:
            break
        page += 1
    return list({p.id: p for p in papers}.values())[:limit]


def front_spec(request: Request, limit: int) -> FeedSpec:
    trending = _has_trending(request)
    engine = get_engine(request)
    sort = "trending" if trending else "date"
    papers = _papers(lambda page, n: engine.search("", sort=sort, page=page, per_page=n), limit)
    base = site_base(request)
    return FeedSpec(
        title=f"{SITE_NAME}: {'trending' if trending else 'latest'} papers",
        description="Trending papers" if trending else "The newest papers in the catalogue",
        page=f"{base}/",
        self_path="/feed",
        query="",
        papers=papers,
    )


def period_spec(request: Request, period: Period, sort: str, limit: int) -> FeedSpec:
    engine = get_engine(request)
    sort = sort if sort in ("date", "trending") else "date"
    papers = _papers(lambda page, n: period_papers(engine, period, sort=sort, page=page, per_page=n), limit)
    base = site_base(request)
    kind = {"date": "day", "week": "week", "month": "month"}[period.kind]
    return FeedSpec(
        title=f"{SITE_NAME}: {period.label}",
        description=f"Papers of the {kind} {period.label}",
        page=f"{base}{period.path}",
        self_path=period.path,
        query=urlencode({"sort": sort}) if sort != "date" else "",
        papers=papers,
    )


def search_params(
    q: str, mode: str, sort: str, categories: Sequence[str], authors: Sequence[str], date_from, date_to
) -> dict[str, str | list[str]]:
    """The search page's parameters as its URLs carry them (defaults left out), for links and ids."""
    params: dict[str, str | list[str]] = {}
    if q:
        params["q"] = q
    if mode != DEFAULT_MODE:
        params["mode"] = mode
    if sort != DEFAULT_SORT:
        params["sort"] = sort
    if categories:
        params["category"] = ", ".join(categories)
    if authors:
        params["author"] = list(authors)
    if date_from:
        params["from"] = date_from
    if date_to:
        params["to"] = date_to
    return params


def search_spec(
    request: Request,
    q: str,
    mode: str,
    sort: str,
    category: list[str],
    author: list[str],
    date_from: str | None,
    date_to: str | None,
    limit: int,
) -> FeedSpec:
    if mode not in MODES:
        raise ApiError(400, f"mode must be one of {', '.join(MODES)}")
    if sort not in SORTS:
        raise ApiError(400, f"sort must be one of {', '.join(SORTS)}")
    categories = split_values(category, commas=True)
    authors = split_values(author, commas=False)
    filters = search_filters(categories, authors, date_from, date_to)
    engine = get_engine(request)
    try:
        papers = _papers(
            lambda page, n: engine.search(q, filters, sort=sort, page=page, per_page=n, mode=mode), limit
        )
    except QueryError as exc:
        raise ApiError(400, str(exc)) from None
    params = search_params(q, mode, sort, categories, authors, date_from, date_to)
    query = urlencode(params, doseq=True)
    base = site_base(request)
    what = [f"“{q}”"] if q else []
    what += [f"in {', '.join(categories)}"] if categories else []
    what += [f"by {', '.join(authors)}"] if authors else []
    if date_from or date_to:
        what.append(f"published {date_from or '…'} to {date_to or '…'}")
    described = " ".join(what) or "all papers"
    return FeedSpec(
        title=f"{SITE_NAME}: search {described}",
        description=f"Papers matching the search {described}",
        page=f"{base}/search" + (f"?{query}" if query else ""),
        self_path="/search",
        query=query,
        papers=papers,
    )


def _period(kind: str, key: str) -> Period:
    if kind not in PERIOD_KINDS:
        raise ApiError(404, "feeds exist for /papers/date, /papers/week and /papers/month")
    try:
        return Period.parse(kind, key)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


# -- routes ---------------------------------------------------------------------------------------------

_LIMIT = Query(FEED_SIZE, ge=1, le=MAX_FEED_SIZE, description="Entries in the feed")
_PERIOD_LIMIT = Query(PERIOD_FEED_SIZE, ge=1, le=MAX_FEED_SIZE, description="Entries in the feed")


@router.get("/feed.rss")
def front_rss(request: Request, limit: int = _LIMIT) -> Response:
    return feed_response(request, front_spec(request, limit), "rss")


@router.get("/feed.atom")
def front_atom(request: Request, limit: int = _LIMIT) -> Response:
    return feed_response(request, front_spec(request, limit), "atom")


@router.get("/papers/{kind}.rss")
def latest_period_rss(
    request: Request, kind: str, sort: str = "date", limit: int = _PERIOD_LIMIT
) -> Response:
    """The latest day, week or month with papers: the feed to subscribe to for "new every day"."""
    return _latest_period_feed(request, kind, sort, limit, "rss")


@router.get("/papers/{kind}.atom")
def latest_period_atom(
    request: Request, kind: str, sort: str = "date", limit: int = _PERIOD_LIMIT
) -> Response:
    return _latest_period_feed(request, kind, sort, limit, "atom")


def _latest_period_feed(request: Request, kind: str, sort: str, limit: int, fmt: str) -> Response:
    if kind not in PERIOD_KINDS:
        raise ApiError(404, "feeds exist for /papers/date, /papers/week and /papers/month")
    period = latest_period(get_engine(request), kind)
    spec = period_spec(request, period, sort, limit)
    spec.self_path = f"/papers/{kind}"  # this address follows the latest period; its id must not move
    return feed_response(request, spec, fmt)


@router.get("/papers/{kind}/{key}.rss")
def period_rss(
    request: Request, kind: str, key: str, sort: str = "date", limit: int = _PERIOD_LIMIT
) -> Response:
    return feed_response(request, period_spec(request, _period(kind, key), sort, limit), "rss")


@router.get("/papers/{kind}/{key}.atom")
def period_atom(
    request: Request, kind: str, key: str, sort: str = "date", limit: int = _PERIOD_LIMIT
) -> Response:
    return feed_response(request, period_spec(request, _period(kind, key), sort, limit), "atom")


def _search_route(fmt: str):  # noqa: ANN202
    def route(
        request: Request,
        q: str = "",
        mode: str = DEFAULT_MODE,
        sort: str = DEFAULT_SORT,
        category: list[str] = Query(default=[]),  # noqa: B008
        author: list[str] = Query(default=[]),  # noqa: B008
        date_from: str | None = Query(default=None, alias="from"),
        date_to: str | None = Query(default=None, alias="to"),
        limit: int = _LIMIT,
    ) -> Response:
        spec = search_spec(request, q, mode, sort, category, author, date_from, date_to, limit)
        return feed_response(request, spec, fmt)

    route.__name__ = f"search_{fmt}"
    return route


router.add_api_route("/search.rss", _search_route("rss"), dependencies=[Depends(limit_search)])
router.add_api_route("/search.atom", _search_route("atom"), dependencies=[Depends(limit_search)])


# -- links for the pages' <head> ---------------------------------------------------------------------------


def feed_links(request: Request) -> list[tuple[str, str, str]]:
    """``(title, type, href)`` of the feeds that mirror the page being rendered (absolute URLs), for
    ``<link rel="alternate">`` in its head: browsers and readers discover them there. Every page offers
    the site's latest papers; a list page its period too, a search page the same search."""
    base = site_base(request)
    path = request.url.path.rstrip("/") or "/"
    links: list[tuple[str, str, str]] = []
    parts = path.strip("/").split("/")
    if path == "/search":
        params = request.query_params
        query = search_params(
            params.get("q", ""),
            params.get("mode", DEFAULT_MODE),
            params.get("sort", DEFAULT_SORT),
            [c.strip() for v in params.getlist("category") for c in v.split(",") if c.strip()],
            [a.strip() for a in params.getlist("author") if a.strip()],
            params.get("from"),
            params.get("to"),
        )
        encoded = urlencode(query, doseq=True)
        what = f"“{query['q']}”" if query.get("q") else "this search"
        suffix = f"?{encoded}" if encoded else ""
        links += [
            (f"Search {what} (RSS)", RSS_TYPE, f"{base}/search.rss{suffix}"),
            (f"Search {what} (Atom)", ATOM_TYPE, f"{base}/search.atom{suffix}"),
        ]
    elif len(parts) == 3 and parts[0] == "papers" and parts[1] in PERIOD_KINDS:
        try:
            period = Period.parse(parts[1], parts[2])
        except ValueError:
            period = None
        if period is not None:
            links += [
                (f"{period.label} (RSS)", RSS_TYPE, f"{base}{period.path}.rss"),
                (f"{period.label} (Atom)", ATOM_TYPE, f"{base}{period.path}.atom"),
            ]
    links += [
        (f"{SITE_NAME}: latest papers (RSS)", RSS_TYPE, f"{base}/feed.rss"),
        (f"{SITE_NAME}: latest papers (Atom)", ATOM_TYPE, f"{base}/feed.atom"),
    ]
    return links
