"""How two records of the same paper combine. Pure functions, so the rules are easy to test.

Rules:
- Records are ordered by ``(version, day of updated, metadata_date)``. Days, not instants, because
  OAI-PMH gives only dates: a same-day record with a later metadata date (a journal-ref added) must win
  over one whose submission time merely looks later. A newer record replaces an older one; an older
  record never overwrites a newer one's values.
- A newer record keeps what it does not carry itself (DOI, journal-ref, report number, license, first
  publication date) from the older one: the arXiv API, say, has no report numbers, and fetching a new
  version through it must not erase the one the snapshot gave.
- A record of the same rank only fills gaps, so importing the same paper from two sources, in any order,
  ends in the same state and re-importing changes nothing. An older record may still fill the gaps of
  version-independent fields (DOI, journal-ref, report number, license).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime

import orjson

from paperwire.models import Paper

# Fields that some sources lack and that do not change with a new version.
_STICKY_FIELDS = ("doi", "journal_ref", "report_no", "license", "published")
_GAP_FIELDS = (
    "abstract",
    "published",
    "updated",
    "metadata_date",
    "comments",
    "journal_ref",
    "doi",
    "report_no",
    "license",
)


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def rank(p: Paper) -> tuple[int, str, str]:
    return (p.version, p.updated.date().isoformat() if p.updated else "", p.metadata_date or "")


def merge(old: Paper | None, new: Paper) -> Paper:
    """The record the store should hold after ``new`` arrives where it held ``old``."""
    if old is None:
        return new
    r_old, r_new = rank(old), rank(new)
    if r_new < r_old:
        fills = {f: getattr(new, f) for f in _STICKY_FIELDS if not getattr(old, f) and getattr(new, f)}
        return replace(old, **fills) if fills else old
    if r_new > r_old:
        missing = {f: getattr(old, f) for f in _STICKY_FIELDS if not getattr(new, f) and getattr(old, f)}
        return replace(new, **missing) if missing else new
    fills = {f: getattr(new, f) for f in _GAP_FIELDS if not getattr(old, f) and getattr(new, f)}
    if not old.authors and new.authors:
        fills["authors"] = new.authors
    if not old.categories and new.categories:
        fills["categories"] = new.categories
    return replace(old, **fills) if fills else old


def content_hash(p: Paper) -> str:
    """A digest of everything a reader sees; equal digests mean an update would change nothing."""
    doc = (
        p.id,
        p.version,
        p.title,
        p.abstract,
        [(a.name, a.affiliation) for a in p.authors],
        p.categories,
        _iso(p.published),
        _iso(p.updated),
        p.metadata_date,
        p.comments,
        p.journal_ref,
        p.doi,
        p.report_no,
        p.license,
    )
    return hashlib.blake2b(orjson.dumps(doc), digest_size=16).hexdigest()
