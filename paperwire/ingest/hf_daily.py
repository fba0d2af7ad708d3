"""Hugging Face daily papers: import a saved ``/api/daily_papers`` response (``paperwire import hf-daily``).

The response is a JSON list of items (JSON Lines, one item a line, is accepted too)::

    [{"paper": {"id": "2401.14040", "title": "...", "summary": "...", "authors": [{"name": ...}],
                "publishedAt": "2024-01-25T09:11:23.000Z", "upvotes": 12,
                "submittedOnDailyAt": "2024-01-26T04:08:26.477Z",
                "submittedOnDailyBy": {"user": "akhaliq", "fullname": "AK", ...}},
      "publishedAt": "...", "title": "...", "summary": "...", "numComments": 3,
      "submittedBy": {"user": ...}, ...}]

Keys are read the way ``huggingface_hub``'s ``PaperInfo`` reads them: the inner ``paper`` object first,
the item's own keys when it lacks them (our own API puts upvotes outside, for instance).

For each item: a paper the catalogue lacks is added from the item (title, summary, authors, publication
time); a paper it has is left exactly as it is, because arXiv's own metadata is richer (categories,
versions, comments) and an HF record must never replace it. The paper is put on the daily list of the
day it was submitted to the Hub (``submittedOnDailyAt``, else ``publishedAt``) unless it is on a list
already, its ``external_upvotes`` become the Hub's count, and its trending key is recomputed.
A malformed item is skipped with its position and the reason; the others still import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import orjson

from paperwire.arxiv_ids import InvalidArxivId, parse_arxiv_id
from paperwire.ingest.base import IngestError
from paperwire.ingest.dates import parse_datetime
from paperwire.models import Author, Paper, Rejected
from paperwire.store import Store
from paperwire.store.votes import ExternalListing, record_external
from paperwire.text import clean_abstract, clean_line

SOURCE = "hf-daily"


@dataclass(frozen=True)
class DailyItem:
    """One usable item: the paper as the Hub describes it, and its listing there."""

    paper: Paper
    day: date
    submitted_at: datetime
    submitter: str | None
    upvotes: int


@dataclass
class HfDailyResult:
    read: int = 0  # usable items
    new_papers: int = 0  # added to the catalogue from the Hub's record
    known_papers: int = 0  # already in the catalogue: their metadata was left alone
    listed: int = 0  # put on a daily list
    already_listed: int = 0  # on a list already: that entry kept
    changed: int = 0  # papers whose Hub votes or trending key changed
    skipped: list[Rejected] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.read:,} papers read: {self.new_papers:,} new, {self.known_papers:,} already in the "
            f"catalogue; {self.listed:,} put on their day's list, {self.already_listed:,} listed already; "
            f"{self.changed:,} with new votes; {len(self.skipped):,} skipped"
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _first(*values: object) -> object:
    """The first value that is set, as ``PaperInfo`` does with ``paper.get(k) or item.get(k)``."""
    for value in values:
        if value not in (None, "", [], {}):
            return value
    return None


def _time(value: object, key: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a timestamp, got {value!r}")
    try:
        return parse_datetime(value)
    except ValueError:
        raise ValueError(f"{key} is not a timestamp: {value!r}") from None


def _authors(value: object) -> list[Author]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("authors must be a list")
    out = []
    for entry in value:
        name = entry.get("name") if isinstance(entry, dict) else entry
        if not isinstance(name, str):
            raise ValueError(f"an author must be {{'name': ...}}, got {entry!r}")
        if clean_line(name):
            out.append(Author(clean_line(name)))
    return out


def _submitter(value: object) -> str | None:
    """The Hub user name of whoever submitted it (``user``), else their display name."""
    if not isinstance(value, dict):
        return None
    name = _text(value.get("user")) or _text(value.get("name")) or _text(value.get("fullname"))
    return clean_line(name)[:320] if name else None


def parse_item(item: object) -> DailyItem:
    """One response item → :class:`DailyItem`; raises ValueError with a reason a user can act on."""
    if not isinstance(item, dict):
        raise ValueError(f"an item must be an object, got {type(item).__name__}")
    paper = item.get("paper")
    if paper is None:
        paper = {}
    if not isinstance(paper, dict):
        raise ValueError("'paper' must be an object")
    raw_id = _first(paper.get("id"), item.get("id"))
    if not isinstance(raw_id, str):
        raise ValueError("missing paper id")
    try:
        paper_id, _ = parse_arxiv_id(raw_id)
    except InvalidArxivId:
        raise ValueError(f"not an arXiv id: {raw_id!r}") from None
    title = clean_line(_text(_first(paper.get("title"), item.get("title"))))
    if not title:
        raise ValueError("missing title")
    summary = clean_abstract(_text(_first(paper.get("summary"), item.get("summary"))))
    authors = _authors(_first(paper.get("authors"), item.get("authors")))
    published = _time(paper.get("publishedAt"), "paper.publishedAt")
    # When it reached the daily list: the paper's submittedOnDailyAt, else the item's publishedAt (which
    # PaperInfo reads as submitted_at), else the paper's publication.
    submitted_at = (
        _time(paper.get("submittedOnDailyAt"), "paper.submittedOnDailyAt")
        or _time(item.get("submittedOnDailyAt"), "submittedOnDailyAt")
        or _time(item.get("publishedAt"), "publishedAt")
        or published
    )
    if submitted_at is None:
        raise ValueError("no submittedOnDailyAt or publishedAt: cannot tell which day's list it is on")
    # An inner 0 means "not counted here" to PaperInfo (our own API puts the count outside): same here.
    upvotes = paper.get("upvotes") or item.get("upvotes") or 0
    if isinstance(upvotes, bool) or not isinstance(upvotes, int) or upvotes < 0:
        raise ValueError(f"upvotes must be a count, got {upvotes!r}")
    submitter = _submitter(_first(paper.get("submittedOnDailyBy"), item.get("submittedBy")))
    record = Paper(
        id=paper_id,
        title=title,
        abstract=summary,
        authors=authors,
        published=published,
        # No `updated` or metadata date: any arXiv record of the paper ranks above this one (see merge).
        source=SOURCE,
    )
    return DailyItem(record, submitted_at.date(), submitted_at, submitter, upvotes)


def read_items(data: bytes) -> tuple[list[DailyItem], list[Rejected]]:
    """Parse a response: a JSON list (positions ``item N``, from 1) or JSON Lines (``line N``).

    Raises :class:`IngestError` only when the text is neither."""
    items: list[tuple[str, object]] = []
    rejected: list[Rejected] = []
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        lines = data.splitlines()
        first = next((n for n, raw in enumerate(lines) if raw.strip()), None)
        if first is None or not _is_object(lines[first]):
            # Not JSON Lines either: a broken (say, truncated) response. orjson says where it broke.
            raise IngestError(f"not a JSON list of daily papers: {exc}") from None
        for n, raw in enumerate(lines, 1):
            if raw.strip():
                try:
                    items.append((f"line {n}", orjson.loads(raw)))
                except orjson.JSONDecodeError as line_exc:
                    rejected.append(Rejected(f"line {n}", f"invalid JSON: {line_exc}"))
    else:
        if isinstance(doc, dict):  # a single item on its own
            doc = [doc]
        if not isinstance(doc, list):
            raise IngestError(f"expected a JSON list of daily papers, got {type(doc).__name__}")
        items = [(f"item {n}", item) for n, item in enumerate(doc, 1)]
    parsed = []
    for where, item in items:
        try:
            parsed.append(parse_item(item))
        except ValueError as exc:
            rejected.append(Rejected(where, str(exc)))
    return parsed, rejected


def _is_object(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def import_items(store: Store, items: list[DailyItem]) -> HfDailyResult:
    """Add the papers the catalogue lacks, then record every listing and its votes (one transaction each)."""
    result = HfDailyResult(read=len(items))
    # The same paper twice in one response: the last item wins, as it would on a second import.
    by_id = {item.paper.id: item for item in items}
    known = store.get_many(by_id, include_hidden=True)  # a hidden paper still gets its counts
    new = [item.paper for pid, item in by_id.items() if pid not in known]
    # A paper deleted from the catalogue stays deleted: Store.apply would bring it back.
    deleted = {p.id for p in new if store.get(p.id, include_deleted=True) is not None}
    if deleted:
        new = [p for p in new if p.id not in deleted]
    if new:
        result.new_papers = store.apply(new).imported
    result.known_papers = len(known)
    listings = [
        ExternalListing(item.paper.id, item.day, item.submitted_at, item.submitter, item.upvotes)
        for pid, item in by_id.items()
        if pid not in deleted
    ]
    recorded = record_external(store, listings)
    result.listed, result.already_listed, result.changed = (
        recorded.listed,
        recorded.already_listed,
        recorded.changed,
    )
    for pid in sorted(deleted | set(recorded.missing)):
        result.skipped.append(Rejected(f"paper {pid}", "deleted from the catalogue"))
    return result


def import_file(store: Store, path: str | Path) -> HfDailyResult:
    """Read and import a saved response; malformed items are in ``result.skipped``.

    Raises :class:`IngestError` when the file cannot be read at all."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc}") from None
    items, rejected = read_items(data)
    result = import_items(store, items) if items else HfDailyResult()
    result.skipped[:0] = rejected
    return result
