"""An arXiv-compatible Atom API: ``GET /api/query`` answers what ``export.arxiv.org/api/query`` answers.

Existing tools (the ``arxiv`` PyPI client, aRxiv, scripts written against arXiv's API) work against this
server by changing the host. The feed has the shape of arXiv's current responses (see the recorded ones
in tests/fixtures/arxiv-api): the same elements, namespaces and order, entry ids ``http://arxiv.org/abs/
IDvN`` and links to the paper on arXiv, so results are interchangeable with arXiv's own. Errors are
arXiv's too: HTTP 400 and a feed holding one entry titled ``Error`` whose id and summary say what is
wrong.

Differences from arXiv, by design: the query language is paperwire's (which reads arXiv's ``ti:``,
``au:``, ``abs:``, ``cat:``, ``all:``, AND/OR/ANDNOT and ``submittedDate:[.. TO ..]``), ranking is
paperwire's keyword ranking, and results stop at the first 10,000 of a query (arXiv: 30,000). Only the
latest version of a paper is stored: asking for an older version (``id_list=2104.12255v1``) gives that
version's id and links with the latest version's metadata.
"""

from __future__ import annotations

import base64
import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paperwire.arxiv_ids import InvalidArxivId, abs_url, parse_arxiv_id, pdf_url
from paperwire.search import Filters, SearchEngine
from paperwire.search.service import MAX_PER_PAGE, MAX_RESULT_WINDOW
from paperwire.store import StoredPaper
from paperwire.web.api.serialize import site_base
from paperwire.web.common import get_engine
from paperwire.web.ratelimit import limit_search

router = APIRouter(tags=["arXiv-compatible"])

ATOM_NS = "http://www.w3.org/2005/Atom"
ARXIV_NS = "http://arxiv.org/schemas/atom"
OPENSEARCH_NS = "http://a9.com/-/spec/opensearch/1.1/"
# Atom elements are written unqualified under a root that declares Atom the default namespace (as arXiv
# writes them): ElementTree's own default_namespace option refuses unqualified attribute names.
ATOM = ""
ARXIV = f"{{{ARXIV_NS}}}"
OPENSEARCH = f"{{{OPENSEARCH_NS}}}"
MEDIA_TYPE = "application/atom+xml; charset=utf-8"

# arXiv's limits and defaults (https://info.arxiv.org/help/api/user-manual.html).
MAX_RESULTS = 2000
DEFAULT_MAX_RESULTS = 10
SORT_BY = {"relevance": "relevance", "lastUpdatedDate": "updated", "submittedDate": "date"}
SORT_ORDER = ("ascending", "descending")
# An id_list longer than this is not a lookup but a harvest; arXiv's URLs would not carry it either.
MAX_IDS = 10_000

# Prefixes as arXiv writes them: ET names namespaces from this (process-wide) map when serialising.
ET.register_namespace("arxiv", ARXIV_NS)
ET.register_namespace("opensearch", OPENSEARCH_NS)

# What arXiv accepts as an id's shape: 0000.0000 or 0808.05394 are well-formed there (and find nothing)
# though no paper can have them; only text of another shape is an "incorrect id format".
_ID_SHAPE = re.compile(r"^(?:\d{4}\.\d{4,5}|[a-z]+(?:-[a-z]+)*(?:\.[A-Za-z-]+)?/\d{7})(?:v\d+)?$")
# Characters XML 1.0 cannot carry at all (even escaped); stored text should not have them, but one
# stray control character must not make the whole feed unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class ArxivQueryError(ValueError):
    """A request arXiv would refuse; the message is arXiv's wording."""


@dataclass(frozen=True)
class ArxivRequest:
    """The validated parameters of one ``/api/query`` call."""

    search_query: str
    ids: tuple[tuple[str, int | None], ...]  # (canonical id, version asked for or None), first mention
    raw_id_list: str
    start: int
    max_results: int
    sort_by: str  # arXiv's name
    sort_order: str


@dataclass(frozen=True)
class Selected:
    papers: list[tuple[StoredPaper, int]]  # the paper and the version to name in its entry
    total: int


# -- XML helpers -----------------------------------------------------------------------------------------


def xml_text(value: object) -> str:
    """Text safe for XML 1.0: what cannot be represented at all is dropped (escaping is ET's job)."""
    return _NOT_XML.sub("", str(value))


def sub(parent: ET.Element, tag: str, text: object | None = None, **attrib: str) -> ET.Element:
    """Append ``<tag attrib>text</tag>`` to ``parent``."""
    el = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrib.items()})
    if text is not None:
        el.text = xml_text(text)
    return el


def atom_date(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, to the second, as arXiv writes dates."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def atom_root(tag: str = "feed") -> ET.Element:
    """A root element declaring Atom the default namespace; its descendants use unqualified Atom names
    and ``{namespace}name`` for the other namespaces (ElementTree declares those on the root)."""
    return ET.Element(tag, {"xmlns": ATOM_NS})


def serialize(root: ET.Element) -> bytes:
    """The document, indented like arXiv's, with an XML declaration naming UTF-8."""
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# -- the feed --------------------------------------------------------------------------------------------


def entry_element(parent: ET.Element, paper: StoredPaper, version: int | None = None) -> ET.Element:
    """One paper as arXiv's API shows it, element for element (ids and links point at arXiv)."""
    vid = f"{paper.id}v{version or paper.version}"
    entry = sub(parent, ATOM + "entry")
    sub(entry, ATOM + "id", f"http://arxiv.org/abs/{vid}")
    sub(entry, ATOM + "title", paper.title)
    updated = paper.updated or paper.published
    if updated is not None:
        sub(entry, ATOM + "updated", atom_date(updated))
    sub(entry, ATOM + "link", href=abs_url(vid), rel="alternate", type="text/html")
    sub(
        entry,
        ATOM + "link",
        href=pdf_url(vid),
        rel="related",
        type="application/pdf",
        title="pdf",
    )
    # Paragraphs (one newline apart in the store) are a blank line apart here: a single newline in an
    # arXiv summary is a hard wrap, which readers (our ingest included) join into the paragraph.
    sub(entry, ATOM + "summary", paper.abstract.replace("\n", "\n\n"))
    for category in paper.categories:
        sub(entry, ATOM + "category", term=category, scheme=ARXIV_NS)
    published = paper.published or paper.updated
    if published is not None:
        sub(entry, ATOM + "published", atom_date(published))
    if paper.comments:
        sub(entry, ARXIV + "comment", paper.comments)
    if paper.primary_category:
        sub(entry, ARXIV + "primary_category", term=paper.primary_category)
    if paper.journal_ref:
        sub(entry, ARXIV + "journal_ref", paper.journal_ref)
    for author in paper.authors:
        el = sub(entry, ATOM + "author")
        sub(el, ATOM + "name", author.name)
        # Our ingest joins several <arxiv:affiliation> with "; "; split them again for the round trip.
        for affiliation in (author.affiliation or "").split("; "):
            if affiliation.strip():
                sub(el, ARXIV + "affiliation", affiliation.strip())
    if paper.doi:
        sub(entry, ARXIV + "doi", paper.doi)
        sub(entry, ATOM + "link", rel="related", href=f"https://doi.org/{paper.doi}", title="doi")
    return entry


def _feed(title: str, feed_id: str, link: str | None, total: int, start: int, per_page: int) -> ET.Element:
    feed = atom_root()
    sub(feed, ATOM + "id", feed_id)
    sub(feed, ATOM + "title", title)
    sub(feed, ATOM + "updated", atom_date(datetime.now(UTC)))
    if link is not None:
        sub(feed, ATOM + "link", href=link, type="application/atom+xml")
    sub(feed, OPENSEARCH + "itemsPerPage", per_page)
    sub(feed, OPENSEARCH + "totalResults", total)
    sub(feed, OPENSEARCH + "startIndex", start)
    return feed


def results_feed(base: str, req: ArxivRequest, selected: Selected) -> bytes:
    """The Atom document for one page of results, headed like arXiv's (title and link restate the
    query; the id is a stable hash of it)."""
    id_list = req.raw_id_list
    title = (
        f"arXiv Query: search_query={req.search_query}&id_list={id_list}"
        f"&start={req.start}&max_results={req.max_results}"
    )
    params = {
        "search_query": req.search_query,
        "start": str(req.start),
        "max_results": str(req.max_results),
        "id_list": id_list,
    }
    if req.sort_by != "relevance" or req.sort_order != "descending":
        params.update(sortBy=req.sort_by, sortOrder=req.sort_order)
    digest = base64.b64encode(hashlib.sha1(title.encode()).digest()).decode().rstrip("=")  # noqa: S324
    feed = _feed(
        title,
        f"{base}/api/{digest}",
        f"{base}/api/query?{urlencode(params, safe=':,/')}",
        selected.total,
        req.start,
        req.max_results,
    )
    for paper, version in selected.papers:
        entry_element(feed, paper, version)
    return serialize(feed)


def error_document(base: str, message: str) -> bytes:
    """arXiv's error feed: one entry titled ``Error``; its id ends in the message with underscores
    (``#incorrect_id_format_for_abc``), which is what clients (and our own ingest) look for."""
    fragment = quote(xml_text(message).replace(" ", "_"), safe="_-.,:=<>()'")
    error_id = f"{base}/api/errors#{fragment}"
    feed = _feed("arXiv Search Results", f"{base}/", None, 1, 0, 1)
    entry = sub(feed, ATOM + "entry")
    sub(entry, ATOM + "id", error_id)
    sub(entry, ATOM + "title", "Error")
    sub(entry, ATOM + "updated", atom_date(datetime.now(UTC)))
    sub(entry, ATOM + "link", href=error_id, rel="alternate", type="text/html")
    sub(entry, ATOM + "summary", message)
    author = sub(entry, ATOM + "author")
    sub(author, ATOM + "name", "paperwire api")
    return serialize(feed)


def error_feed(request: Request, message: str, status: int = 400) -> Response:
    """Any error under /api/query (ours, the engine's, the rate limit's) as arXiv's error feed, so an
    arXiv client reports the message instead of failing to parse JSON."""
    return Response(error_document(site_base(request), message), status_code=status, media_type=MEDIA_TYPE)


# -- parameters -----------------------------------------------------------------------------------------


def parse_request(
    search_query: str,
    id_list: str,
    start: str,
    max_results: str,
    sort_by: str,
    sort_order: str,
) -> ArxivRequest:
    """Validate in arXiv's order with arXiv's messages (ArxivQueryError)."""
    ids: dict[str, int | None] = {}
    pieces = [p.strip() for p in id_list.split(",")] if id_list.strip() else []
    for piece in pieces:
        if not piece:  # a trailing comma
            continue
        try:
            canonical, version = parse_arxiv_id(piece)
        except InvalidArxivId:
            if _ID_SHAPE.match(piece):
                continue  # well-formed for arXiv, but no paper has it
            raise ArxivQueryError(f"incorrect id format for {piece[:100]}") from None
        ids.setdefault(canonical, version)
    if len(ids) > MAX_IDS:
        raise ArxivQueryError(f"id_list must have at most {MAX_IDS} ids")
    count = _integer(max_results, "max_results", DEFAULT_MAX_RESULTS)
    if count < 0:
        raise ArxivQueryError("max_results must be non-negative")
    if count > MAX_RESULTS:
        raise ArxivQueryError(f"max_results must be less than or equal to {MAX_RESULTS}")
    first = _integer(start, "start", 0)
    if first < 0:
        raise ArxivQueryError("start must be non-negative")
    if sort_by not in SORT_BY:
        raise ArxivQueryError(f"sortBy must be in: {', '.join(SORT_BY)}")
    if sort_order not in SORT_ORDER:
        raise ArxivQueryError(f"sortOrder must be in: {', '.join(SORT_ORDER)}")
    return ArxivRequest(
        search_query=search_query.strip(),
        ids=tuple(ids.items()),
        raw_id_list=id_list.strip(),
        start=first,
        max_results=count,
        sort_by=sort_by,
        sort_order=sort_order,
    )


def _integer(text: str, name: str, default: int) -> int:
    text = text.strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise ArxivQueryError(f"{name} must be an integer") from None


# -- selecting papers -----------------------------------------------------------------------------------


def select(engine: SearchEngine, req: ArxivRequest) -> Selected:
    """The requested page of results and how many there are in all.

    Only ids: those papers in the order given (reversed for ascending, or by date when asked). A query:
    the engine's keyword search, restricted to the ids when both are given (arXiv's rule)."""
    versions: dict[str, int] = {}
    if req.ids:
        stored = engine.store.get_many([i for i, _ in req.ids])
        for canonical, version in req.ids:
            paper = stored.get(canonical)
            # A version newer than the one we know is not one we can show.
            if paper is not None and (version is None or version <= paper.version):
                versions[canonical] = version or paper.version
        if not req.search_query:
            papers = _order([stored[i] for i in versions], req)
            page = papers[req.start : req.start + req.max_results]
            return Selected([(p, versions[p.id]) for p in page], len(papers))
        if not versions:
            return Selected([], 0)
    elif req.raw_id_list.strip(", "):
        return Selected([], 0)  # ids were given, and none of them can exist
    if not req.search_query:
        return Selected([], 0)  # arXiv needs a query or ids; asking for neither finds nothing
    filters = Filters(ids=tuple(versions)) if versions else None
    found, total = search_window(
        engine,
        req.search_query,
        filters,
        SORT_BY[req.sort_by],
        req.sort_order == "ascending",
        req.start,
        req.max_results,
    )
    return Selected([(p, versions.get(p.id, p.version)) for p in found], total)


def _order(papers: list[StoredPaper], req: ArxivRequest) -> list[StoredPaper]:
    ascending = req.sort_order == "ascending"
    if req.sort_by == "relevance":  # the order of id_list is the relevance order
        return papers[::-1] if ascending else papers
    oldest = datetime.min.replace(tzinfo=UTC)

    def when(p: StoredPaper) -> datetime:
        value = (p.updated or p.published) if req.sort_by == "lastUpdatedDate" else p.published
        return value or oldest

    return sorted(papers, key=when, reverse=not ascending)


def search_window(
    engine: SearchEngine,
    query: str,
    filters: Filters | None,
    sort: str,
    ascending: bool,
    start: int,
    count: int,
) -> tuple[list[StoredPaper], int]:
    """Results ``start`` to ``start + count`` of a keyword search and the total, read from the engine's
    pages (at most MAX_PER_PAGE each). Relevance ascending is the descending ranking read backwards."""

    def run(page: int, per_page: int, sort: str = sort, ascending: bool = ascending):  # noqa: ANN202
        return engine.search(
            query, filters, sort=sort, page=page, per_page=per_page, mode="keyword", ascending=ascending
        )

    if sort == "relevance" and ascending:
        total = run(1, 1, "relevance", False).total
        end = min(total, MAX_RESULT_WINDOW) - start
        if end <= 0 or count == 0:
            _check_window(start, total)
            return [], total
        begin = max(0, end - count)
        papers, _ = _read(run, begin, end - begin, "relevance", False)
        return papers[::-1], total
    if count == 0:
        return [], run(1, 1).total
    if start >= MAX_RESULT_WINDOW:
        total = run(1, 1).total
        _check_window(start, total)
        return [], total
    return _read(run, start, min(count, MAX_RESULT_WINDOW - start), sort, ascending)


def _read(run, offset: int, count: int, sort: str, ascending: bool) -> tuple[list[StoredPaper], int]:  # noqa: ANN001
    papers: list[StoredPaper] = []
    seen: set[str] = set()
    total = 0
    first_page = offset // MAX_PER_PAGE + 1
    last_page = (offset + count - 1) // MAX_PER_PAGE + 1
    for number in range(first_page, last_page + 1):
        result = run(number, MAX_PER_PAGE, sort, ascending)
        total = result.total
        for hit in result.hits:
            if hit.id not in seen:  # pages ranked separately may repeat a paper at their seam
                seen.add(hit.id)
                papers.append(hit.paper)
        if len(result.hits) < MAX_PER_PAGE:
            break
    skip = offset - (first_page - 1) * MAX_PER_PAGE
    return papers[skip : skip + count], total


def _check_window(start: int, total: int) -> None:
    if start >= MAX_RESULT_WINDOW and start < total:
        raise ArxivQueryError(
            f"results beyond the first {MAX_RESULT_WINDOW} are not available: start must be less than "
            f"{MAX_RESULT_WINDOW}; refine the query"
        )


# -- the route -------------------------------------------------------------------------------------------


@router.get(
    "/api/query",
    summary="Search or look up papers (arXiv API-compatible Atom feed)",
    response_class=Response,
    responses={200: {"content": {"application/atom+xml": {}}}, 400: {"description": "arXiv's error feed"}},
    dependencies=[Depends(limit_search)],
)
def query(
    request: Request,
    search_query: str = Query(
        "",
        description="arXiv query syntax: ti:, au:, abs:, cat:, all:, AND/OR/ANDNOT, wildcards (au:kho*, colo?r)",
    ),
    id_list: str = Query("", description="Comma-separated arXiv ids, with or without version"),
    start: str = Query("0", description="Index of the first result (from 0)"),
    max_results: str = Query(
        str(DEFAULT_MAX_RESULTS), description=f"Results per page (at most {MAX_RESULTS})"
    ),
    sortBy: str = Query("relevance", description="relevance, lastUpdatedDate or submittedDate"),  # noqa: N803
    sortOrder: str = Query("descending", description="ascending or descending"),  # noqa: N803
) -> Response:
    """What ``export.arxiv.org/api/query`` answers, for this catalogue: point the ``arxiv`` client's
    ``Client.query_url_format`` here. Numbers are read as text so malformed ones get arXiv's messages."""
    try:
        req = parse_request(search_query, id_list, start, max_results, sortBy, sortOrder)
        selected = select(get_engine(request), req)
    except ArxivQueryError as exc:
        return error_feed(request, str(exc), 400)
    body = results_feed(site_base(request), req, selected)
    return Response(body, media_type=MEDIA_TYPE)
