"""Plain JSONL and CSV, for papers from anywhere (a spreadsheet, another tool's export).

JSONL, one object a line (only ``id`` and ``title`` are required)::

    {"id": "2401.14040", "title": "...", "abstract": "...", "authors": ["Ada Lovelace", "Alan Turing"],
     "categories": ["cs.CL", "cs.LG"], "published": "2024-01-25"}

Also accepted: ``id`` with a version (``2401.14040v2``) or as a URL, ``authors`` as objects
``{"name", "affiliation"}``, ``categories`` as one space-separated string, timestamps with a time, and
the optional keys ``updated``, ``version``, ``comments``, ``journal_ref``, ``doi``, ``report_no``,
``license``.

CSV: a header row with the same names. ``authors`` are separated by ``;`` (names contain commas),
``categories`` by spaces, commas or ``;``.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator

import orjson

from paperwire.arxiv_ids import InvalidArxivId, parse_arxiv_id
from paperwire.ingest.base import IngestError, Source
from paperwire.ingest.dates import parse_datetime
from paperwire.ingest.files import JsonLinesSource, LineFile
from paperwire.models import Author, IngestItem, Paper, Rejected
from paperwire.text import clean_abstract, clean_line, clean_optional

_OPTIONAL_TEXT = ("comments", "journal_ref", "doi", "report_no", "license")
_CATEGORY_SPLIT = re.compile(r"[\s,;]+")


def _authors(value: object) -> list[Author]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = value.split(";")
    if not isinstance(value, list):
        raise ValueError("authors must be a list")
    authors = []
    for entry in value:
        if isinstance(entry, str):
            name, affiliation = clean_line(entry), None
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            name, affiliation = clean_line(entry["name"]), clean_optional(entry.get("affiliation"))
        else:
            raise ValueError(f"an author must be a name or {{'name': ...}}, got {entry!r}")
        if name:
            authors.append(Author(name, affiliation))
    return authors


def _categories(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = _CATEGORY_SPLIT.split(value)
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise ValueError("categories must be a list of strings")
    return list(dict.fromkeys(c.strip() for c in value if c.strip()))


def paper_from_mapping(record: dict, source: str) -> Paper:
    """A JSONL object or CSV row → :class:`Paper`; raises ValueError with a reason a user can act on."""
    raw_id = record.get("id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        raise ValueError("missing 'id'")
    paper_id, id_version = parse_arxiv_id(raw_id)
    title = clean_line(record.get("title") if isinstance(record.get("title"), str) else None)
    if not title:
        raise ValueError("missing 'title'")
    version = record.get("version")
    if version in (None, ""):
        version = id_version or 1
    try:
        version = int(str(version).lstrip("v"))
    except ValueError:
        raise ValueError(f"'version' is not a number: {version!r}") from None
    try:
        published = parse_datetime(record.get("published") or None)
        updated = parse_datetime(record.get("updated") or None) or published
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"bad date in 'published'/'updated': {record.get('published')!r}") from None
    abstract = record.get("abstract")
    extra = {
        k: clean_optional(record.get(k)) if isinstance(record.get(k), str) else None for k in _OPTIONAL_TEXT
    }
    return Paper(
        id=paper_id,
        version=version,
        title=title,
        abstract=clean_abstract(abstract) if isinstance(abstract, str) else "",
        authors=_authors(record.get("authors")),
        categories=_categories(record.get("categories")),
        published=published,
        updated=updated,
        source=source,
        **extra,
    )


def _convert(record: dict, where: str, source: str) -> IngestItem:
    try:
        return paper_from_mapping(record, source)
    except (InvalidArxivId, ValueError) as exc:
        return Rejected(where, str(exc))


class JsonlSource(JsonLinesSource):
    name = "jsonl"

    def convert(self, record: dict, where: str) -> IngestItem:
        return _convert(record, where, self.name)


class CsvSource(Source):
    name = "csv"

    def __init__(self, path: str | os.PathLike):
        self.file = LineFile(path)

    def position(self) -> int:
        return self.file.position()

    def items(self) -> Iterator[IngestItem]:
        text_lines = (line.decode("utf-8-sig", errors="replace") for _, line in self.file.lines())
        reader = csv.DictReader(text_lines)
        try:
            header = reader.fieldnames
        except csv.Error as exc:
            raise IngestError(f"{self.file.path}: not a CSV file: {exc}") from exc
        if not header or "id" not in header or "title" not in header:
            raise IngestError(
                f"{self.file.path}: the CSV header must name at least 'id' and 'title' (got {header})"
            )
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                yield Rejected(f"line {reader.line_num}", f"malformed CSV: {exc}")
                continue
            if None in row:
                yield Rejected(f"line {reader.line_num}", "more fields than the header names")
                continue
            yield _convert(row, f"line {reader.line_num}", self.name)


def write_jsonl_line(paper: Paper) -> bytes:
    """The JSONL format above, for exports and the bundled sample."""
    doc = {
        "id": paper.id,
        "version": paper.version,
        "title": paper.title,
        "abstract": paper.abstract,
        "authors": [a.to_json() for a in paper.authors],
        "categories": paper.categories,
        "published": paper.published.isoformat() if paper.published else None,
        "updated": paper.updated.isoformat() if paper.updated else None,
    }
    for key in _OPTIONAL_TEXT:
        if getattr(paper, key):
            doc[key] = getattr(paper, key)
    return orjson.dumps(doc) + b"\n"


__all__ = ["CsvSource", "JsonlSource", "paper_from_mapping", "write_jsonl_line"]
