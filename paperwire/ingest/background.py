"""Parse a file source in a second process while this one writes to the store.

Parsing (JSON, text clean-up) and writing (hashing, SQLite) each take about half the time of a
snapshot import; on two cores, running them side by side nearly doubles the rate. The queue between the
processes is bounded, so memory stays flat however far the parser could run ahead.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson

from paperwire.ingest.base import SOURCES, IngestError
from paperwire.models import IngestItem, Paper

BATCH = 1000
QUEUE_BATCHES = 8
# Below this size a second process costs more (start-up ≈ 0.3 s) than it saves.
MIN_BACKGROUND_BYTES = 16 * 1024 * 1024


def _exit_when_orphaned(parent: Any) -> None:
    """A parent killed with SIGKILL cannot stop us. Our queue's feeder thread may then block forever
    writing to a pipe nobody reads, so a watchdog ends the process once the parent is gone."""
    while parent.is_alive():
        time.sleep(0.5)
    os._exit(1)


def _parse_worker(source_name: str, path: str, out: Any) -> None:
    parent = mp.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()

    def put(message: tuple) -> None:
        # A parent killed with SIGKILL cannot stop us: notice it instead of blocking on a full queue forever.
        while True:
            try:
                out.put(message, timeout=1.0)
                return
            except queue.Full:
                if parent is not None and not parent.is_alive():
                    os._exit(1)

    try:
        import paperwire.ingest.jsonl  # noqa: F401  (registers the file sources)
        import paperwire.ingest.snapshot  # noqa: F401
        from paperwire.store.prepared import prepare

        source = SOURCES[source_name](path)
        # Papers travel as prepared rows in one orjson blob per batch (an order of magnitude cheaper
        # than pickling objects); anything else (rejections) is pickled with its position in the batch.
        rows: list[list] = []
        others: list[tuple[int, IngestItem]] = []
        for item in source.items():
            if isinstance(item, Paper):
                rows.append(prepare(item))
            else:
                others.append((len(rows) + len(others), item))
            if len(rows) + len(others) >= BATCH:
                put(("items", (orjson.dumps(rows), others), source.position()))
                rows, others = [], []
        put(("items", (orjson.dumps(rows), others), source.position()))
        put(("done", None, source.position()))
    except Exception as exc:  # report, don't die silently: the parent turns it into an IngestError
        put(("error", f"{type(exc).__name__}: {exc}", 0))


def _merge_batch(blob: bytes, others: list[tuple[int, IngestItem]]) -> Iterator[IngestItem | list]:
    rows = iter(orjson.loads(blob))
    at = 0
    for position, item in others:
        while at < position:
            yield next(rows)
            at += 1
        yield item
        at += 1
    yield from rows


class BackgroundSource:
    """Wraps a registered file source (``snapshot``, ``jsonl``) so that it parses in a child process."""

    def __init__(self, source_name: str, path: str | os.PathLike):
        self.source_name = source_name
        self.path = os.fspath(path)
        self.size = os.path.getsize(self.path)
        self._position = 0

    def position(self) -> int:
        return self._position

    def items(self) -> Iterator[IngestItem]:
        ctx = mp.get_context("spawn")
        out = ctx.Queue(maxsize=QUEUE_BATCHES)
        worker = ctx.Process(target=_parse_worker, args=(self.source_name, self.path, out), daemon=True)
        worker.start()
        try:
            while True:
                try:
                    kind, payload, position = out.get(timeout=5.0)
                except queue.Empty:
                    if not worker.is_alive():
                        raise IngestError(
                            f"the parser process for {self.path} died (exit code {worker.exitcode})"
                        ) from None
                    continue
                self._position = position
                if kind == "items":
                    yield from _merge_batch(*payload)
                elif kind == "done":
                    return
                else:
                    raise IngestError(f"{self.path}: {payload}")
        finally:
            if worker.is_alive():
                worker.terminate()
            worker.join(timeout=5)


def file_source(source_name: str, path: str | os.PathLike, *, background: bool | None = None):  # noqa: ANN201
    """The source for a file: parsed in a second process when the file is big enough to gain from it."""
    if background is None:
        background = (os.cpu_count() or 1) > 1 and os.path.getsize(path) >= MIN_BACKGROUND_BYTES
    if background:
        return BackgroundSource(source_name, path)
    return SOURCES[source_name](path)
