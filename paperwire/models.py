"""The records every ingest source yields and the store keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class Author:
    name: str
    affiliation: str | None = None

    def to_json(self) -> dict:
        return (
            {"name": self.name, "affiliation": self.affiliation} if self.affiliation else {"name": self.name}
        )

    def __reduce__(self):  # plain tuples pickle several times faster than slotted dataclass state
        return (Author, (self.name, self.affiliation))


@dataclass(slots=True)
class Paper:
    """One arXiv paper at its latest known version.

    ``id`` is the canonical arXiv id without version. ``categories`` lists the primary category first.
    ``published`` is when version 1 was submitted, ``updated`` when the latest version was.
    ``metadata_date`` is the day the source last changed this record's metadata (snapshot
    ``update_date``, OAI ``datestamp``): two records of the same version and submission time are
    ordered by it, so a journal-ref added later wins over the record without it.
    """

    id: str
    title: str
    version: int = 1
    abstract: str = ""
    authors: list[Author] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    published: datetime | None = None
    updated: datetime | None = None
    metadata_date: str | None = None
    comments: str | None = None
    journal_ref: str | None = None
    doi: str | None = None
    report_no: str | None = None
    license: str | None = None
    source: str = ""

    @property
    def primary_category(self) -> str | None:
        return self.categories[0] if self.categories else None

    def __reduce__(self):
        # Papers cross a process boundary during big imports (see ingest/background.py); the default
        # pickling of slotted dataclasses costs as much as parsing the record did.
        return (_rebuild_paper, (type(self), tuple(getattr(self, f) for f in self.__dataclass_fields__)))


def _rebuild_paper(cls: type, values: tuple) -> Paper:
    return cls(*values)


@dataclass(slots=True, frozen=True)
class Tombstone:
    """The source says this paper was deleted (OAI-PMH ``status="deleted"``)."""

    id: str
    metadata_date: str | None = None
    source: str = ""


@dataclass(slots=True, frozen=True)
class Rejected:
    """A record the source could not turn into a paper; ``where`` is e.g. ``line 12`` or ``record 3``."""

    where: str
    reason: str


IngestItem = Paper | Tombstone | Rejected
