"""An approximate nearest-neighbour graph (HNSW, from usearch) over a vector index's rows.

The graph is an accelerator, never the truth. Its keys are row numbers of ``vectors.i8``; it *covers* rows
``0 .. covered-1``, where ``covered`` is its largest key + 1, and holds every row below that which was
alive when it was added. Rows never come back to life (a re-added id gets a new row), so every live row
below ``covered`` is in the graph; readers scan the rows from ``covered`` on exactly, re-score every
candidate from the index's own vectors, and drop the candidates that have died since (superseded or
removed rows). Graph files written before dead rows were skipped hold every row ``0 .. len-1``, so the
same definition reads them unchanged. Only the index's writer changes the graph, by extending it with new
live rows or rebuilding it without the dead ones, and atomically replacing the file, so readers
memory-map a file that never changes under them.

One file per index generation: ``graph-<uid>.usearch`` (a rebuilt index gets a new uid, so a reader can
never pair a graph with vectors it was not built from).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

# Quality/speed of the graph. 16 links per node and a search beam of 128 keep recall@100 high on real
# sentence embeddings (bench/graph_recall.py); a beam never narrower than the number of results asked for.
CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 128
# Rows added per call while extending, so progress can be shown and memory stays flat.
_ADD_CHUNK = 50_000


def graph_path(index_dir: Path, uid: str) -> Path:
    return index_dir / f"graph-{uid}.usearch"


def _new_graph(dim: int):  # noqa: ANN202
    from usearch.index import Index

    return Index(
        ndim=dim,
        metric="cos",
        dtype="i8",
        connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD,
        expansion_search=EXPANSION_SEARCH,
    )


def _coverage(graph) -> int:  # noqa: ANN001
    """Largest key + 1 (0 for an empty graph). ``keys[:]`` is one numpy copy (~2 ms per 100k nodes);
    iterating ``graph.keys`` in Python costs minutes at millions of nodes."""
    return int(graph.keys[:].max()) + 1 if len(graph) else 0


class GraphReader:
    """A memory-mapped view of one graph file, reopened when the writer replaces it."""

    def __init__(self, path: Path):
        self.path = path
        self._stamp: tuple | None = None
        self._graph = None
        self._covered = 0
        self._lock = threading.Lock()  # usearch searches on one view are not meant to run concurrently

    @property
    def covered(self) -> int:
        """Rows ``0 .. covered-1`` are covered: each of them that is still alive is a node; 0: no graph."""
        return self._covered if self._graph is not None else 0

    # Older name of ``covered`` (bench/graph_recall.py reads it).
    rows = covered

    @property
    def size(self) -> int:
        """Nodes in the graph: the live rows below ``covered`` plus rows that died after they were added."""
        return len(self._graph) if self._graph is not None else 0

    def refresh(self) -> None:
        """Pick up a newer file; costs one stat() when nothing changed."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._graph, self._stamp, self._covered = None, None, 0
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        from usearch.index import Index

        try:
            graph = Index.restore(str(self.path), view=True)
        except (RuntimeError, ValueError, OSError):
            graph = None
        if graph is None:  # not a usearch file (a torn copy): scan exactly until the writer replaces it
            self._graph, self._stamp, self._covered = None, stamp, 0
            return
        graph.expansion_search = EXPANSION_SEARCH
        self._graph, self._stamp, self._covered = graph, stamp, _coverage(graph)

    def search(self, query: np.ndarray, count: int) -> np.ndarray:
        """Rows of (about) the ``count`` nearest neighbours of the int8 ``query``, nearest first."""
        graph = self._graph
        if graph is None or count <= 0:
            return np.empty(0, dtype=np.int64)
        with self._lock:
            found = graph.search(query, count, threads=1)
        return np.asarray(found.keys, dtype=np.int64)


def extend_graph(
    path: Path,
    vectors: np.ndarray,
    alive: np.ndarray,
    start: int,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Make the graph at ``path`` cover every row of ``vectors`` (int8, one row per index row; ``alive``:
    which rows are current), then replace the file atomically. ``start`` is the file's coverage: the live
    rows from there on are added to it; 0 builds a new graph of all live rows (the old file, if any, is
    not read). Returns how many nodes were added."""
    from usearch.index import Index

    end = len(vectors)
    graph = Index.restore(str(path)) if start and path.exists() else None
    if graph is None or _coverage(graph) != start:  # nothing to extend, or not the graph we were told of
        graph, start = _new_graph(vectors.shape[1]), 0
    if end <= start:
        return 0
    keys = start + np.flatnonzero(alive[start:end])
    if keys.size == 0 or keys[-1] != end - 1:
        # The last row goes in even when dead, as an anchor: coverage is the largest key + 1, so without
        # it the dead rows at the end would be "not covered" and scanned again (and re-examined by the
        # next extension) until a live row came after them. Readers drop dead candidates anyway.
        keys = np.append(keys, end - 1)
    threads = os.cpu_count() or 1
    for lo in range(0, keys.size, _ADD_CHUNK):
        chunk = keys[lo : lo + _ADD_CHUNK]
        graph.add(chunk.astype(np.uint64), np.asarray(vectors[chunk]), threads=threads)
        if progress is not None:
            progress(lo + chunk.size, keys.size)
    tmp = path.with_name(f".{path.name}.tmp")
    graph.save(str(tmp))
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return int(keys.size)
