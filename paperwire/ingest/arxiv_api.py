"""arXiv's search API (``export.arxiv.org/api/query``): an Atom feed of papers, paged with ``start``.

Used for targeted fetches (a search query, a list of ids) rather than bulk harvesting. Every request goes
through :class:`~paperwire.ingest.http.PoliteClient`, which keeps arXiv's one-request-per-3-seconds rule.

Two feed layouts are accepted: the current one (namespaces declared on ``<feed>``) and the older one
(the opensearch/arxiv namespaces declared on each element, hard-wrapped titles and summaries).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from paperwire.arxiv_ids import InvalidArxivId, parse_arxiv_id
from paperwire.config import Settings, get_settings
from paperwire.ingest.base import IngestError, Source
from paperwire.ingest.dates import parse_datetime
from paperwire.ingest.http import PoliteClient
from paperwire.models import Author, IngestItem, Paper, Rejected
from paperwire.text import clean_abstract, clean_line, clean_optional

log = logging.getLogger(__name__)

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
# opensearch elements are matched by local name: the namespace URI is the only thing that differs between
# opensearch versions, and arXiv's feeds have only ever used these three elements from it.
OPENSEARCH_ANY = "{*}"

SORT_BY = frozenset({"relevance", "lastUpdatedDate", "submittedDate"})
SORT_ORDER = frozenset({"ascending", "descending"})
# arXiv refuses pages larger than this; bigger requests must be paged anyway.
MAX_PAGE_SIZE = 2000
# arXiv sometimes answers a page inside the result set with no entries; asking again usually works.
EMPTY_PAGE_RETRIES = 3
ERROR_ID_MARKER = "/api/errors"

# Text that was UTF-8, decoded as Latin-1 and re-encoded ("WÃ¼bben" for "Wübben"). Seen in recorded API
# responses; a UTF-8 lead byte followed by a continuation byte is vanishingly rare in genuine text.
_MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf]")
_DOI_URL = re.compile(r"^https?://(?:dx\.)?doi\.org/", re.IGNORECASE)


class ArxivAPIError(IngestError):
    """arXiv answered with its error feed (one entry titled ``Error``), e.g. for a malformed id."""


@dataclass
class FeedPage:
    total: int
    start: int
    items_per_page: int
    items: list[Paper | Rejected] = field(default_factory=list)


def repair_mojibake(text: str) -> str:
    """Undo one round of UTF-8-read-as-Latin-1; text that is not such mojibake comes back unchanged."""
    if not _MOJIBAKE.search(text):
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:  # characters beyond Latin-1, or bytes that are not UTF-8: genuine text
        return text


def _text(parent: Element, path: str) -> str | None:
    el = parent.find(path)
    if el is None or el.text is None:
        return None
    return repair_mojibake(el.text)


def _int(feed: Element, local_name: str, default: int | None = None) -> int:
    raw = _text(feed, OPENSEARCH_ANY + local_name)
    if raw is None or not raw.strip():
        if default is None:
            raise IngestError(f"not an arXiv API feed: no opensearch:{local_name}")
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise IngestError(f"opensearch:{local_name} is not a number: {raw!r}") from None


def parse_feed(xml: bytes | str) -> FeedPage:
    """Parse one API response. Raises :class:`ArxivAPIError` for arXiv's error feed and
    :class:`IngestError` for anything that is not an Atom feed; bad entries become :class:`Rejected`."""
    try:
        feed = fromstring(xml)
    except (ParseError, DefusedXmlException) as exc:
        raise IngestError(f"arXiv API answered something that is not XML: {exc}") from None
    if feed.tag != ATOM + "feed":
        raise IngestError(f"arXiv API answered XML that is not an Atom feed (root element {feed.tag!r})")
    entries = feed.findall(ATOM + "entry")
    _raise_for_error_entry(entries)
    start = _int(feed, "startIndex", 0)
    page = FeedPage(
        total=_int(feed, "totalResults"),
        start=start,
        items_per_page=_int(feed, "itemsPerPage", len(entries)),
    )
    for offset, entry in enumerate(entries):
        # Numbered by position in the whole result set, so a rejection names the same entry on any page.
        page.items.append(parse_entry(entry, where=f"entry {start + offset + 1}"))
    return page


def _raise_for_error_entry(entries: list[Element]) -> None:
    for entry in entries:
        entry_id = _text(entry, ATOM + "id") or ""
        if ERROR_ID_MARKER in entry_id:
            message = clean_line(_text(entry, ATOM + "summary")) or clean_line(entry_id)
            raise ArxivAPIError(f"arXiv API error: {message}")


def parse_entry(entry: Element, where: str = "entry") -> Paper | Rejected:
    """One Atom ``<entry>`` → :class:`Paper`, or :class:`Rejected` saying why it cannot be one."""
    raw_id = clean_line(_text(entry, ATOM + "id"))
    if not raw_id:
        return Rejected(where, "entry has no id")
    try:
        paper_id, version = parse_arxiv_id(raw_id)
    except InvalidArxivId as exc:
        return Rejected(where, str(exc))
    title = clean_line(_text(entry, ATOM + "title"))
    if not title:
        return Rejected(where, f"{paper_id}: entry has no title")
    try:
        published = parse_datetime(_text(entry, ATOM + "published"))
        updated = parse_datetime(_text(entry, ATOM + "updated"))
    except ValueError as exc:
        return Rejected(where, f"{paper_id}: bad date ({exc})")
    return Paper(
        id=paper_id,
        version=version or 1,
        title=title,
        abstract=clean_abstract(_text(entry, ATOM + "summary")),
        authors=_authors(entry),
        categories=_categories(entry),
        published=published,
        # The API's <updated> is when the latest version was submitted, which is what Paper.updated means.
        updated=updated,
        # The API says nothing about when the metadata last changed (unlike OAI datestamps).
        metadata_date=None,
        comments=clean_optional(_text(entry, ARXIV + "comment")),
        journal_ref=clean_optional(_text(entry, ARXIV + "journal_ref")),
        doi=clean_optional(_text(entry, ARXIV + "doi")) or _doi_from_links(entry),
        source=ArxivAPISource.name,
    )


def _authors(entry: Element) -> list[Author]:
    authors = []
    for el in entry.findall(ATOM + "author"):
        name = clean_line(_text(el, ATOM + "name"))
        if not name:
            continue
        affiliations = [clean_line(repair_mojibake(a.text or "")) for a in el.findall(ARXIV + "affiliation")]
        authors.append(Author(name, "; ".join(a for a in affiliations if a) or None))
    return authors


def _categories(entry: Element) -> list[str]:
    primary = entry.find(ARXIV + "primary_category")
    terms = [primary.get("term", "")] if primary is not None else []
    terms += [el.get("term", "") for el in entry.findall(ATOM + "category")]
    # Primary first, then the rest in feed order; the primary is listed again among the others.
    return list(dict.fromkeys(t.strip() for t in terms if t and t.strip()))


def _doi_from_links(entry: Element) -> str | None:
    """Fallback for entries that carry the DOI only as ``<link title="doi">``."""
    for link in entry.findall(ATOM + "link"):
        if link.get("title") == "doi" and link.get("href"):
            return _DOI_URL.sub("", link.get("href", "").strip()) or None
    return None


class ArxivAPISource(Source):
    """Papers matching ``query`` (arXiv search syntax) and/or the given ``ids``, newest first by default.

    ``max_results`` caps the number of entries read in all (None: every result, which for a broad query
    can mean thousands of requests at 3 s each). ``total`` is arXiv's result count, known after the
    first page; for an id lookup it is the sum over the id chunks requested so far.
    """

    name = "arxiv_api"

    def __init__(
        self,
        *,
        query: str | None = None,
        ids: list[str] | None = None,
        max_results: int | None = None,
        page_size: int = 100,
        sort_by: str = "submittedDate",
        sort_order: str = "descending",
        settings: Settings | None = None,
        client: PoliteClient | None = None,
    ):
        self.query = (query or "").strip() or None
        self.ids = list(dict.fromkeys(i.strip() for i in ids or [] if i and i.strip()))
        if not self.query and not self.ids:
            raise ValueError("give a search query or at least one arXiv id")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
        if max_results is not None and max_results < 0:
            raise ValueError(f"max_results must not be negative, got {max_results}")
        if sort_by not in SORT_BY:
            raise ValueError(f"sort_by must be one of {sorted(SORT_BY)}, got {sort_by!r}")
        if sort_order not in SORT_ORDER:
            raise ValueError(f"sort_order must be one of {sorted(SORT_ORDER)}, got {sort_order!r}")
        self.max_results = max_results
        self.page_size = page_size
        self.sort_by = sort_by
        self.sort_order = sort_order
        self.settings = settings or (client.settings if client else get_settings())
        self._client = client
        self.total: int | None = None
        self._read = 0

    def items(self) -> Iterator[IngestItem]:
        self._read = 0
        self.total = None
        client = self._client or PoliteClient(self.settings)
        try:
            # Each id chunk is its own result set; without ids there is one chunk, the query alone.
            chunks = [self.ids[i : i + self.page_size] for i in range(0, len(self.ids), self.page_size)]
            for chunk in chunks or [[]]:
                if self._budget_spent():
                    return
                yield from self._result_set(client, chunk, earlier_total=self.total or 0)
        finally:
            if self._client is None:
                client.close()

    def _budget_spent(self) -> bool:
        return self.max_results is not None and self._read >= self.max_results

    def _result_set(
        self, client: PoliteClient, id_chunk: list[str], earlier_total: int
    ) -> Iterator[Paper | Rejected]:
        start = 0
        total: int | None = None
        empty_tries = 0
        while not self._budget_spent() and (total is None or start < total):
            want = self.page_size
            if self.max_results is not None:
                want = min(want, self.max_results - self._read)
            page = self._fetch(client, id_chunk, start, want)
            # arXiv's count can drift between pages while papers are announced; the latest one wins.
            total = page.total
            self.total = earlier_total + total
            if not page.items:
                if start >= total:
                    return
                empty_tries += 1
                if empty_tries > EMPTY_PAGE_RETRIES:
                    log.warning(
                        "arXiv API returned empty pages at start=%d of %d results %d times; stopping early",
                        start,
                        total,
                        empty_tries,
                    )
                    return
                log.info("arXiv API returned an empty page at start=%d of %d; asking again", start, total)
                continue
            empty_tries = 0
            # A server that ignores max_results must not push us past the caller's limit.
            items = page.items[:want]
            yield from items
            self._read += len(items)
            start += len(items)
            if len(items) < want and start >= total:
                return

    def _fetch(self, client: PoliteClient, id_chunk: list[str], start: int, count: int) -> FeedPage:
        params = {
            "start": str(start),
            "max_results": str(count),
            "sortBy": self.sort_by,
            "sortOrder": self.sort_order,
        }
        if self.query:
            params["search_query"] = self.query
        if id_chunk:
            params["id_list"] = ",".join(id_chunk)
        log.debug("arXiv API request %s", params)
        # arXiv sends its error feed with HTTP 400; parse it to get the message instead of a bare status.
        response = client.get(self.settings.arxiv_api_url, params, ok_statuses=frozenset({400}))
        try:
            page = parse_feed(response.content)
        except ArxivAPIError:
            raise
        except IngestError as exc:
            raise IngestError(f"{self.settings.arxiv_api_url} (HTTP {response.status_code}): {exc}") from None
        if response.status_code == 400:
            raise ArxivAPIError(f"arXiv API answered HTTP 400 without an error message (params {params})")
        return page
