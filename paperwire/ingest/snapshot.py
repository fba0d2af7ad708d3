"""arXiv's metadata snapshot (``arxiv-metadata-oai-snapshot.json``): one JSON object a line, millions
of lines, plain or gzip. Streams line by line, so memory stays flat whatever the size.

This is the hot path of a full import (≈3M records), so parsing avoids general-purpose helpers where
a narrow one is several times faster (RFC 2822 dates in one fixed layout, ids already canonical).
"""

from __future__ import annotations

from datetime import UTC, datetime

from paperwire.arxiv_ids import InvalidArxivId, parse_arxiv_id
from paperwire.ingest.dates import parse_datetime
from paperwire.ingest.files import JsonLinesSource
from paperwire.models import Author, IngestItem, Paper, Rejected
from paperwire.text import clean_abstract, clean_line, clean_optional

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def parse_version_date(text: str) -> datetime:
    """``Mon, 2 Apr 2007 19:18:42 GMT`` → aware UTC datetime (falls back to the general parser)."""
    try:
        _, day, month, year, clock, zone = text.split()
        if zone != "GMT":
            raise ValueError
        hh, mm, ss = clock.split(":")
        return datetime(int(year), _MONTHS[month], int(day), int(hh), int(mm), int(ss), tzinfo=UTC)
    except (ValueError, KeyError):
        value = parse_datetime(text)
        if value is None:
            raise ValueError(f"empty date: {text!r}") from None
        return value


def _authors(record: dict) -> list[Author]:
    parsed = record.get("authors_parsed")
    if not parsed:
        return split_author_string(record.get("authors") or "")
    authors = []
    for entry in parsed:
        # [keyname, forenames, suffix, affiliation, affiliation, ...]
        n = len(entry)
        keyname = entry[0].strip() if n else ""
        # arXiv's parser writes hyphenated initials as "C. -P."; the paper itself says "C.-P.".
        forenames = entry[1].strip().replace(". -", ".-") if n > 1 and entry[1] else ""
        name = f"{forenames} {keyname}" if forenames and keyname else forenames or keyname
        if n > 2 and entry[2] and entry[2].strip():
            name = f"{name} {entry[2].strip()}"
        if not name:
            continue
        affiliation = "; ".join(a.strip() for a in entry[3:] if a and a.strip()) or None if n > 3 else None
        authors.append(Author(name, affiliation))
    return authors


def split_author_string(text: str) -> list[Author]:
    """arXiv's free-text author field: ``A. One, B. Two and C. Three``."""
    text = clean_line(text)
    if not text:
        return []
    text = text.replace(", and ", ", ").replace(" and ", ", ")
    return [Author(name.strip()) for name in text.split(",") if name.strip()]


def paper_from_snapshot(record: dict, source: str = "snapshot") -> Paper:
    """One snapshot object → :class:`Paper`; raises ValueError/KeyError/TypeError when it is not usable."""
    raw_id = record.get("id")
    if not isinstance(raw_id, str):
        raise ValueError("missing id")
    paper_id, id_version = parse_arxiv_id(raw_id)
    title = clean_line(record.get("title"))
    if not title:
        raise ValueError("missing title")
    versions = record.get("versions") or []
    version = id_version or 1
    published = updated = None
    if versions:
        numbers = [int(v["version"].lstrip("v")) for v in versions if v.get("version")]
        if numbers:
            version = max(numbers)
        created = [parse_version_date(v["created"]) for v in versions if v.get("created")]
        if created:
            published, updated = min(created), max(created)
    categories = list(dict.fromkeys((record.get("categories") or "").split()))
    return Paper(
        id=paper_id,
        version=version,
        title=title,
        abstract=clean_abstract(record.get("abstract")),
        authors=_authors(record),
        categories=categories,
        published=published,
        updated=updated,
        metadata_date=record.get("update_date") or None,
        comments=clean_optional(record.get("comments")),
        journal_ref=clean_optional(record.get("journal-ref")),
        doi=clean_optional(record.get("doi")),
        report_no=clean_optional(record.get("report-no")),
        license=clean_optional(record.get("license")),
        source=source,
    )


class SnapshotSource(JsonLinesSource):
    name = "snapshot"

    def convert(self, record: dict, where: str) -> IngestItem:
        try:
            return paper_from_snapshot(record)
        except InvalidArxivId as exc:
            return Rejected(where, str(exc))
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            return Rejected(where, f"unusable record ({type(exc).__name__}: {exc})")
