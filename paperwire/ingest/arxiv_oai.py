"""arXiv's OAI-PMH interface: incremental harvesting of new and changed records (and deletions).

OAI-PMH lists records whose *datestamp* (the day arXiv last changed the record) lies in ``from``..``until``,
a page at a time; each page ends with a ``resumptionToken`` that fetches the next. The token is an
exclusive argument: a request that carries it carries nothing else but the verb.

Two metadata formats are understood:

``arXiv`` (recommended)
    arXiv's own format: id, created/updated days, structured authors with affiliations, categories
    (primary first), comments, report-no, journal-ref, doi, license, abstract.
``oai_dc``
    Dublin Core. It has no category codes, only subject names ("Computer Science - Information Theory"),
    so categories come from the header's setSpecs instead: ``cs`` → ``cs``, ``physics:hep-th`` →
    ``hep-th``, ``math:math:AG`` → ``math.AG``. The first setSpec is taken as primary, which is a guess.
    Descriptions starting with ``Comment:`` are the comments, the first other one is the abstract;
    ``dc:identifier`` holds the abs URL (→ id), ``doi:…`` (→ doi) and the journal reference.

Neither format carries a version number. The arXiv format gives ``<updated>`` only for papers with
more than one version, so such a record gets version 2 (a lower bound) and every other one version 1.
``metadata_date`` is the header datestamp, so of two records of the same rank the later-changed wins.
Dates are days only (``updated`` is UTC midnight), so against a source with exact version timestamps
and numbers (snapshot, API) an OAI record can rank lower even when it is newer.

:func:`harvest_oai` saves its position in the store after every committed page, so an interrupted
harvest continues from its last resumption token, and the next harvest starts where the last ended.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from paperwire.arxiv_ids import InvalidArxivId, parse_arxiv_id
from paperwire.config import Settings, get_settings
from paperwire.ingest.base import IngestError, Source
from paperwire.ingest.dates import check_day, parse_date
from paperwire.ingest.http import PoliteClient, RemoteError
from paperwire.ingest.runner import ImportSummary, run_import
from paperwire.models import Author, IngestItem, Paper, Rejected, Tombstone
from paperwire.progress import Progress
from paperwire.store import Store
from paperwire.text import clean_abstract, clean_line, clean_optional

log = logging.getLogger(__name__)

SOURCE = "arxiv_oai"
METADATA_PREFIXES = ("arXiv", "oai_dc")
# A token can expire while we work (or the server restarts); restarting the run from its from-date
# is safe because upserts are idempotent, but a server that rejects every token must not loop forever.
MAX_RESTARTS = 2
# Some OAI-PMH servers answer protocol errors with HTTP 4xx and the <error> document as body.
_OAI_ERROR_STATUSES = frozenset({400, 404, 422})
_HAS_WORD = re.compile(r"\w")


class OAIError(IngestError):
    """The server answered with an OAI-PMH ``<error code="...">``."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(f"OAI-PMH error {code}" + (f": {message}" if message else ""))
        self.code = code
        self.message = message


@dataclass
class OAIPage:
    items: list[IngestItem]
    resumption_token: str | None
    complete_list_size: int | None = None
    cursor: int | None = None
    response_date: str | None = None
    max_datestamp: str | None = None


@dataclass
class HarvestResult:
    summary: ImportSummary
    pages: int
    from_date: str | None
    until: str | None
    resumed: bool


# -- XML helpers: match on local names, because arXiv's responses are not consistent about namespaces
# (a metadata block without its own xmlns inherits the OAI namespace).


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


def _child(el: ET.Element | None, name: str) -> ET.Element | None:
    if el is None:
        return None
    return next((c for c in el if _local(c.tag) == name), None)


def _text(el: ET.Element | None, name: str) -> str | None:
    c = _child(el, name)
    return "".join(c.itertext()) if c is not None else None


def _texts(el: ET.Element, name: str) -> list[str]:
    return ["".join(c.itertext()) for c in _children(el, name)]


def _int_attr(el: ET.Element, name: str) -> int | None:
    value = (el.get(name) or "").strip()
    return int(value) if value.isdigit() else None


# -- parsing


def parse_oai_page(xml: bytes | str, metadata_prefix: str = "arXiv") -> OAIPage:
    """One ListRecords or GetRecord response → its items and paging information.

    ``noRecordsMatch`` is an empty last page; any other OAI-PMH error raises :class:`OAIError`, and a
    body that is not OAI-PMH XML raises :class:`IngestError`. A bad record becomes a
    :class:`~paperwire.models.Rejected`, never an exception.
    """
    root = _parse_xml(xml)
    response_date = clean_optional(_text(root, "responseDate"))
    error = _child(root, "error")
    if error is not None:
        code = error.get("code") or "unknown"
        if code == "noRecordsMatch":
            return OAIPage([], None, 0, None, response_date, None)
        raise OAIError(code, clean_line("".join(error.itertext())))
    body = _child(root, "ListRecords")
    if body is None:
        body = _child(root, "GetRecord")
    if body is None:
        raise IngestError("OAI-PMH response has neither ListRecords, GetRecord nor error")

    items: list[IngestItem] = []
    datestamps: list[str] = []
    for number, record in enumerate(_children(body, "record"), 1):
        item, datestamp = _parse_record(record, number, metadata_prefix)
        items.append(item)
        if datestamp:
            datestamps.append(datestamp)

    token_el = _child(body, "resumptionToken")
    token = size = cursor = None
    if token_el is not None:
        token = (token_el.text or "").strip() or None
        size = _int_attr(token_el, "completeListSize")
        cursor = _int_attr(token_el, "cursor")
    return OAIPage(items, token, size, cursor, response_date, max(datestamps, default=None))


def _parse_xml(xml: bytes | str) -> ET.Element:
    try:
        root = SafeET.fromstring(xml)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise IngestError(f"not a readable OAI-PMH response: {exc}") from None
    if _local(root.tag) != "OAI-PMH":
        raise IngestError(f"not an OAI-PMH response (root element <{_local(root.tag)}>)")
    return root


def _parse_record(record: ET.Element, number: int, metadata_prefix: str) -> tuple[IngestItem, str | None]:
    """One ``<record>`` → (item, its datestamp as YYYY-MM-DD or None)."""
    header = _child(record, "header")
    identifier = clean_optional(_text(header, "identifier"))
    where = f"record {number}" + (f" ({identifier})" if identifier else "")
    try:
        datestamp = parse_date(_text(header, "datestamp"))
    except ValueError:
        return Rejected(where, f"bad datestamp {_text(header, 'datestamp')!r}"), None
    try:
        if header is not None and header.get("status") == "deleted":
            if not identifier:
                raise ValueError("deleted record without identifier")
            return Tombstone(parse_arxiv_id(identifier)[0], metadata_date=datestamp, source=SOURCE), datestamp
        metadata = _child(record, "metadata")
        block = next(iter(metadata), None) if metadata is not None else None
        if block is None:
            raise ValueError("record has no metadata")
        kind = _local(block.tag)
        if kind == "arXiv":
            paper = _paper_from_arxiv(block, identifier, datestamp)
        elif kind == "dc":
            set_specs = [s.strip() for s in _texts(header, "setSpec")] if header is not None else []
            paper = _paper_from_dc(block, identifier, datestamp, set_specs)
        else:
            raise ValueError(f"unsupported metadata <{kind}> (asked for {metadata_prefix!r})")
        return paper, datestamp
    except (ValueError, TypeError) as exc:  # InvalidArxivId is a ValueError
        return Rejected(where, str(exc)), datestamp


def _day(text: str | None, what: str) -> datetime | None:
    """A day (``2017-06-16``) → UTC midnight; arXiv's OAI formats carry dates without times."""
    try:
        day = parse_date(text)
    except ValueError:
        raise ValueError(f"bad {what} date {text!r}") from None
    return datetime.fromisoformat(day).replace(tzinfo=UTC) if day else None


def _record_id(own: str | None, identifier: str | None) -> str:
    for candidate in (own, identifier):
        if candidate and candidate.strip():
            return parse_arxiv_id(candidate)[0]
    raise InvalidArxivId("record has no arXiv id")


def _author(el: ET.Element) -> Author | None:
    # Some records split a surname over two <keyname> elements; keep both, in order.
    keyname = " ".join(clean_line(k) for k in _texts(el, "keyname"))
    parts = (clean_line(_text(el, "forenames")), keyname, clean_line(_text(el, "suffix")))
    name = " ".join(p for p in parts if p)
    # arXiv writes "Collaboration: A, B" as an author named ":"; that is punctuation, not a person.
    if not _HAS_WORD.search(name):
        return None
    affiliations = [a for a in (clean_line(t) for t in _texts(el, "affiliation")) if a]
    return Author(name, "; ".join(affiliations) or None)


def _paper_from_arxiv(block: ET.Element, identifier: str | None, datestamp: str | None) -> Paper:
    paper_id = _record_id(_text(block, "id"), identifier)
    title = clean_line(_text(block, "title"))
    if not title:
        raise ValueError("missing title")
    created = _day(_text(block, "created"), "created")
    updated = _day(_text(block, "updated"), "updated")
    authors_el = _child(block, "authors")
    authors = [
        a for a in map(_author, _children(authors_el, "author") if authors_el is not None else []) if a
    ]
    return Paper(
        id=paper_id,
        # <updated> exists only once there is a second version; the real number is not in this format.
        version=2 if updated else 1,
        title=title,
        abstract=clean_abstract(_text(block, "abstract")),
        authors=authors,
        categories=list(dict.fromkeys((_text(block, "categories") or "").split())),
        published=created,
        updated=updated or created,
        metadata_date=datestamp,
        comments=clean_optional(_text(block, "comments")),
        journal_ref=clean_optional(_text(block, "journal-ref")),
        doi=clean_optional(_text(block, "doi")),
        report_no=clean_optional(_text(block, "report-no")),
        license=clean_optional(_text(block, "license")),
        source=SOURCE,
    )


def _dc_creator(text: str) -> str:
    """``Last, First`` (or ``Last, First, Suffix``) → ``First Last [Suffix]``."""
    parts = [clean_line(p) for p in text.split(",")]
    if len(parts) == 2:
        return " ".join(p for p in (parts[1], parts[0]) if p)
    if len(parts) == 3:
        return " ".join(p for p in (parts[1], parts[0], parts[2]) if p)
    return clean_line(text)


def _category_from_set(spec: str) -> str | None:
    """``cs`` → ``cs``; ``physics:hep-th`` → ``hep-th``; ``math:math:AG`` → ``math.AG``."""
    parts = [p for p in spec.split(":") if p]
    if len(parts) >= 3:
        return f"{parts[1]}.{parts[2]}"
    return parts[-1] if parts else None


def _paper_from_dc(
    block: ET.Element, identifier: str | None, datestamp: str | None, set_specs: list[str]
) -> Paper:
    own_id = doi = journal_ref = None
    for value in (clean_line(t) for t in _texts(block, "identifier")):
        if value.lower().startswith("doi:"):
            doi = doi or value[4:].strip() or None
        elif "arxiv.org/abs/" in value.lower():
            own_id = own_id or value
        elif value and "://" not in value:
            journal_ref = journal_ref or value  # arXiv puts the journal reference here
    paper_id = _record_id(own_id, identifier)
    title = clean_line(_text(block, "title"))
    if not title:
        raise ValueError("missing title")
    abstract = comments = None
    for text in _texts(block, "description"):
        stripped = text.strip()
        if stripped.startswith("Comment:"):
            comments = comments or clean_optional(stripped[len("Comment:") :])
        elif abstract is None:
            abstract = clean_abstract(text)
    # dc:date lists the first version's day first and the latest version's day last.
    dates = [d for d in (_day(t, "dc:date") for t in _texts(block, "date")) if d]
    creators = [_dc_creator(t) for t in _texts(block, "creator")]
    categories = [c for c in (_category_from_set(s) for s in set_specs) if c]
    return Paper(
        id=paper_id,
        version=2 if len(dates) > 1 else 1,
        title=title,
        abstract=abstract or "",
        authors=[Author(name) for name in creators if name],
        categories=list(dict.fromkeys(categories)),
        published=dates[0] if dates else None,
        updated=dates[-1] if dates else None,
        metadata_date=datestamp,
        comments=comments,
        journal_ref=journal_ref,
        doi=doi,
        source=SOURCE,
    )


# -- fetching


def _check_prefix(metadata_prefix: str) -> None:
    if metadata_prefix not in METADATA_PREFIXES:
        raise ValueError(
            f"unsupported metadataPrefix {metadata_prefix!r} (use one of {', '.join(METADATA_PREFIXES)})"
        )


def _check_range(from_date: str | None, until: str | None) -> tuple[str | None, str | None]:
    """Validated ``YYYY-MM-DD`` days; ValueError with a clear message otherwise."""
    from_date = check_day(from_date) if from_date is not None else None
    until = check_day(until) if until is not None else None
    if from_date and until and from_date > until:
        raise ValueError(f"from date {from_date} is after until date {until}")
    return from_date, until


def list_records_params(
    metadata_prefix: str, set_spec: str | None, from_date: str | None, until: str | None
) -> dict[str, str]:
    """The query of a first ListRecords request (later pages send only the token)."""
    params = {"verb": "ListRecords", "metadataPrefix": metadata_prefix}
    if set_spec:
        params["set"] = set_spec
    if from_date:
        params["from"] = from_date
    if until:
        params["until"] = until
    return params


def _token_params(token: str) -> dict[str, str]:
    return {"verb": "ListRecords", "resumptionToken": token}


def fetch_page(client: PoliteClient, url: str, params: Mapping[str, str], metadata_prefix: str) -> OAIPage:
    """GET one page and parse it. OAI errors sent with a 4xx status are still OAI errors."""
    response = client.get(url, params=params, ok_statuses=_OAI_ERROR_STATUSES)
    try:
        return parse_oai_page(response.content, metadata_prefix)
    except OAIError:
        raise
    except IngestError as exc:
        if not response.is_success:
            raise RemoteError(
                f"{url} answered HTTP {response.status_code}", response.status_code, response.text[:2000]
            ) from None
        raise IngestError(f"{url}: {exc}") from None


class ArxivOAISource(Source):
    """All records of one ListRecords request, page after page. Keeps no state between runs; use
    :func:`harvest_oai` for incremental, resumable harvesting into the store."""

    name = "arxiv_oai"

    def __init__(
        self,
        *,
        set_spec: str | None = None,
        from_date: str | None = None,
        until: str | None = None,
        metadata_prefix: str = "arXiv",
        settings: Settings | None = None,
        client: PoliteClient | None = None,
    ):
        _check_prefix(metadata_prefix)
        self.from_date, self.until = _check_range(from_date, until)
        self.set_spec = set_spec
        self.metadata_prefix = metadata_prefix
        self.settings = settings or (client.settings if client else get_settings())
        self._client = client
        self.pages = 0

    def items(self) -> Iterator[IngestItem]:
        for page in self.iter_pages():
            yield from page.items

    def iter_pages(self) -> Iterator[OAIPage]:
        client = self._client or PoliteClient(self.settings)
        try:
            params = list_records_params(self.metadata_prefix, self.set_spec, self.from_date, self.until)
            while True:
                page = fetch_page(client, self.settings.arxiv_oai_url, params, self.metadata_prefix)
                self.pages += 1
                yield page
                if not page.resumption_token:
                    return
                params = _token_params(page.resumption_token)
        finally:
            if self._client is None:
                client.close()


# -- harvesting into the store


def state_key(metadata_prefix: str, set_spec: str | None) -> str:
    return f"harvest:oai:{metadata_prefix}:{set_spec or '*'}"


@dataclass
class _Run:
    """What one harvest knows about itself; saved to the store after every committed page."""

    from_date: str | None
    until: str | None
    last_datestamp: str | None  # where the previous completed harvest ended
    token: str | None = None
    max_datestamp: str | None = None
    pages: int = 0
    restarts: int = 0
    complete_list_size: int | None = None
    resumed: bool = False  # continues an interrupted run from its saved token

    def seen(self, datestamp: str | None) -> None:
        if datestamp and (self.max_datestamp is None or datestamp > self.max_datestamp):
            self.max_datestamp = datestamp

    def state(self, *, complete: bool) -> dict:
        return {
            "from": self.from_date,
            "until": self.until,
            "token": None if complete else self.token,
            "max_datestamp": self.max_datestamp,
            "last_datestamp": self.last_datestamp,
            "pages": self.pages,
            "complete": complete,
            "complete_list_size": self.complete_list_size,
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


def _start(saved: dict | None, from_date: str | None, until: str | None) -> _Run:
    """The run to do now: an interrupted one with the same range continues from its token."""
    saved = saved or {}
    last = saved.get("last_datestamp")
    effective_from = from_date if from_date is not None else last
    if saved.get("token") and saved.get("from") == effective_from and saved.get("until") == until:
        resume = {"token": saved["token"], "max_datestamp": saved.get("max_datestamp"), "resumed": True}
        return _Run(effective_from, until, last, **resume)
    return _Run(effective_from, until, last)


def _finish_datestamp(run: _Run) -> str | None:
    """Where the next incremental harvest starts: the newest datestamp seen (its day is fetched again,
    which is harmless), else the end of the asked range. Never earlier than before, so harvesting an
    old range by hand does not make the next incremental harvest start over from there."""
    end = run.max_datestamp or run.until or run.from_date
    if run.last_datestamp and (end is None or run.last_datestamp > end):
        return run.last_datestamp
    return end


def harvest_oai(
    store: Store,
    *,
    set_spec: str | None = None,
    from_date: str | None = None,
    until: str | None = None,
    metadata_prefix: str = "arXiv",
    settings: Settings | None = None,
    client: PoliteClient | None = None,
    progress: Progress | None = None,
) -> HarvestResult:
    """Harvest ``ListRecords`` into ``store``, one transaction a page, resumable.

    Without ``from_date`` the harvest starts at the last harvest's newest datestamp (everything when
    there was none). A run interrupted by an error continues from its saved resumption token when
    called again with the same range. Raises :class:`RemoteError` / :class:`OAIError` when the server
    fails; what was committed so far stays, and so does the saved position.
    """
    _check_prefix(metadata_prefix)
    from_date, until = _check_range(from_date, until)
    settings = settings or (client.settings if client else get_settings())
    key = state_key(metadata_prefix, set_spec)
    run = _start(store.get_state(key), from_date, until)
    first_params = list_records_params(metadata_prefix, set_spec, run.from_date, run.until)
    if run.resumed:
        log.info("resuming OAI harvest %s from saved token %s", key, run.token)

    own_client = client is None
    client = client or PoliteClient(settings)
    summary = ImportSummary()
    try:
        params = _token_params(run.token) if run.token else first_params
        while True:
            page = _fetch_or_restart(
                client, settings.arxiv_oai_url, params, first_params, run, metadata_prefix
            )
            _apply_page(store, page, run, summary)
            if progress:
                progress.update(summary.read)
            run.token = page.resumption_token
            run.complete_list_size = page.complete_list_size or run.complete_list_size
            if not run.token:
                break
            store.set_state(key, run.state(complete=False))
            params = _token_params(run.token)
    finally:
        if own_client:
            client.close()

    run.last_datestamp = _finish_datestamp(run)
    store.set_state(key, run.state(complete=True))
    if progress:
        progress.finish()
    return HarvestResult(summary, run.pages, run.from_date, run.until, run.resumed)


def _fetch_or_restart(
    client: PoliteClient,
    url: str,
    params: dict[str, str],
    first_params: dict[str, str],
    run: _Run,
    metadata_prefix: str,
) -> OAIPage:
    """Fetch the page ``params`` asks for; when the server no longer knows our resumption token
    (tokens expire), start the run again from its from-date instead."""
    while True:
        try:
            return fetch_page(client, url, params, metadata_prefix)
        except OAIError as exc:
            expired = exc.code == "badResumptionToken" and "resumptionToken" in params
            if not expired or run.restarts >= MAX_RESTARTS:
                raise
            log.warning(
                "server rejected resumption token %s; restarting from %s",
                params["resumptionToken"],
                run.from_date,
            )
            run.restarts += 1
            run.token = None
            run.resumed = False
            params = first_params


def _apply_page(store: Store, page: OAIPage, run: _Run, summary: ImportSummary) -> None:
    run.pages += 1
    # Rejections say which page they came from: record numbers restart on every page.
    items = [
        Rejected(f"page {run.pages}, {item.where}", item.reason) if isinstance(item, Rejected) else item
        for item in page.items
    ]
    summary.merge(run_import(store, items))
    run.seen(page.max_datestamp)
