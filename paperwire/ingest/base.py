"""What every ingest source is: something that yields :data:`~paperwire.models.IngestItem` records.

Sources register by name so the CLI and the worker can find them (``SOURCES["snapshot"]``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar

from paperwire.models import IngestItem

SOURCES: dict[str, type[Source]] = {}


class Source(ABC):
    """One origin of papers. ``items()`` yields papers, tombstones and rejected records, never raises
    for a bad record (it yields :class:`~paperwire.models.Rejected`), only for a failed source."""

    name: ClassVar[str]

    @abstractmethod
    def items(self) -> Iterator[IngestItem]: ...

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if getattr(cls, "name", None):
            SOURCES[cls.name] = cls


class IngestError(Exception):
    """A source failed as a whole (unreadable file, remote error after retries, error feed)."""
