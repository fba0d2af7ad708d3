"""An approximate nearest-neighbour graph (HNSW, from usearch) over a vector index's rows.

The graph is an accelerator, never the truth: it holds rows ``0 .. covered-1`` of ``vectors.i8`` (its keys
are row numbers), readers scan the rows appended since it was saved exactly, and every candidate it
returns is re-scored from the index's own vectors. Deleted or superseded rows stay in the graph and are
filtered out by the reader. Only the index's writer extends it, by loading it, adding the new rows and
atomically replacing the file, so readers memory-map a file that never changes under them.

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


class GraphReader:
    """A memory-mapped view of one graph file, reopened when the writer replaces it."""

    def __init__(self, path: Path):
        self.path = path
        self._stamp: tuple | None = None
        self._graph = None
        self._lock = threading.Lock()  # usearch searches on one view are not meant to run concurrently

    @property
    def rows(self) -> int:
        """How many rows (from row 0) the graph covers; 0 when there is none."""
        return len(self._graph) if self._graph is not None else 0

    def refresh(self) -> None:
        """Pick up a newer file; costs one stat() when nothing changed."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._graph, self._stamp = None, None
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
            self._graph, self._stamp = None, stamp
            return
        graph.expansion_search = EXPANSION_SEARCH
        self._graph, self._stamp = graph, stamp

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
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Add the rows of ``vectors`` (int8, one row per index row) that the graph at ``path`` does not cover
    yet, then replace the file atomically. Returns how many rows were added."""
    from usearch.index import Index

    graph = Index.restore(str(path)) if path.exists() else None
    if graph is None:
        graph = _new_graph(vectors.shape[1])
    start = len(graph)
    end = len(vectors)
    if end <= start:
        return 0
    threads = os.cpu_count() or 1
    for lo in range(start, end, _ADD_CHUNK):
        hi = min(end, lo + _ADD_CHUNK)
        graph.add(np.arange(lo, hi, dtype=np.uint64), np.asarray(vectors[lo:hi]), threads=threads)
        if progress is not None:
            progress(hi - start, end - start)
    tmp = path.with_name(f".{path.name}.tmp")
    graph.save(str(tmp))
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return end - start
