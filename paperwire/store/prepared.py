"""Prepared rows: a paper already in the store's column layout, with its content digest.

Preparing is the CPU-heavy half of an import (digest, JSON of authors, timestamps as text), so a big
import does it in the parser process and ships plain lists (cheap to serialise with orjson) to the
writer, which mostly just hands them to the database.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from paperwire.models import Author, Paper
from paperwire.store.merge import content_hash

# Column order of a prepared row; the digest is the last element.
PREPARED_COLUMNS = (
    "id",
    "version",
    "title",
    "abstract",
    "authors",
    "categories",
    "primary_category",
    "published",
    "updated",
    "metadata_date",
    "comments",
    "journal_ref",
    "doi",
    "report_no",
    "license",
    "source",
    "content_hash",
)
PUBLISHED, UPDATED, DIGEST = 7, 8, 16

PreparedRow = list


def time_text(value: datetime | None) -> str | None:
    """UTC as ``YYYY-MM-DD HH:MM:SS.ffffff``: the layout SQLAlchemy's SQLite DateTime writes and reads
    (isoformat is several times faster than strftime)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def parse_time_text(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if text else None


def prepare(p: Paper) -> PreparedRow:
    if p.published is not None and p.published.tzinfo is not UTC:
        p.published = p.published.astimezone(UTC) if p.published.tzinfo else p.published.replace(tzinfo=UTC)
    if p.updated is not None and p.updated.tzinfo is not UTC:
        p.updated = p.updated.astimezone(UTC) if p.updated.tzinfo else p.updated.replace(tzinfo=UTC)
    return [
        p.id,
        p.version,
        p.title,
        p.abstract,
        orjson.dumps([a.to_json() for a in p.authors]).decode(),
        " ".join(p.categories),
        p.primary_category,
        time_text(p.published),
        time_text(p.updated),
        p.metadata_date,
        p.comments,
        p.journal_ref,
        p.doi,
        p.report_no,
        p.license,
        p.source,
        content_hash(p),
    ]


def paper_from_prepared(row: PreparedRow) -> Paper:
    return Paper(
        id=row[0],
        version=row[1],
        title=row[2],
        abstract=row[3],
        authors=[Author(a["name"], a.get("affiliation")) for a in orjson.loads(row[4])],
        categories=row[5].split() if row[5] else [],
        published=parse_time_text(row[PUBLISHED]),
        updated=parse_time_text(row[UPDATED]),
        metadata_date=row[9],
        comments=row[10],
        journal_ref=row[11],
        doi=row[12],
        report_no=row[13],
        license=row[14],
        source=row[15],
    )
