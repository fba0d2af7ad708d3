"""Reading local files line by line, whatever their compression, with a byte position for progress."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from paperwire.ingest.base import IngestError, Source
from paperwire.models import IngestItem, Rejected


class LineFile:
    """Iterate ``(line_number, bytes)`` over a plain or gzip file; ``position()`` is bytes read of the
    file on disk (compressed bytes for .gz), which against ``size`` gives honest progress."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise IngestError(f"no such file: {self.path}")
        self.size = self.path.stat().st_size
        self._raw: BinaryIO | None = None
        # Set when the file could not be read to its end (a truncated .gz): what was read still counts.
        self.read_error: str | None = None
        self.last_line = 0

    def position(self) -> int:
        try:
            return self._raw.tell() if self._raw else 0
        except (OSError, ValueError):
            return self.size

    def _open(self) -> BinaryIO:
        self._raw = open(self.path, "rb")  # noqa: SIM115 - closed in lines()
        magic = self._raw.peek(2)[:2] if hasattr(self._raw, "peek") else b""
        if magic == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=self._raw)
        return self._raw

    def lines(self) -> Iterator[tuple[int, bytes]]:
        stream = self._open()
        try:
            for number, line in enumerate(stream, start=1):
                self.last_line = number
                yield number, line
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            self.read_error = f"file could not be read past line {self.last_line}: {exc}"
        finally:
            stream.close()
            if self._raw is not None and not self._raw.closed:
                self._raw.close()


class JsonLinesSource(Source):
    """A file of one JSON object a line; subclasses turn each object into a record."""

    def __init__(self, path: str | os.PathLike):
        self.file = LineFile(path)

    def position(self) -> int:
        return self.file.position()

    def convert(self, record: dict, where: str) -> IngestItem:
        """The record for one object, or :class:`Rejected` saying why there is none."""
        raise NotImplementedError

    def items(self) -> Iterator[IngestItem]:
        for number, line in self.file.lines():
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield Rejected(f"line {number}", f"invalid JSON: {exc}")
                continue
            if not isinstance(record, dict):
                yield Rejected(f"line {number}", "not a JSON object")
                continue
            yield self.convert(record, f"line {number}")
        if self.file.read_error:
            yield Rejected(f"line {self.file.last_line + 1}", self.file.read_error)
