"""A local on-disk vector index, derived from the store (it can always be rebuilt by re-embedding).

Layout of an index directory (one per embedding model, ``<index dir>/vectors/minilm/``)::

    vectors.i8     one row of ``dim`` int8 per added vector, append-only
    scales.f32     one float32 per row: the row's int8 step (row ~= int8 * scale)
    log.jsonl      append-only events: ["a", id, row, tag] add, ["r", id] remove, ["t", id, tag] retag
    manifest.json  {"rows": R, "log_bytes": L, ...}: how much of the three files is committed
    writer.lock    flock'ed by the one process that writes
    graph-<uid>.usearch  an approximate nearest-neighbour graph over the live rows of the first rows
                         (graph.py), optional

A batch is appended to the three files, fsynced, and only then committed by atomically replacing the
manifest. Readers never look past the manifest's sizes, and a writer truncates the files back to them
before appending, so a process killed at any moment loses at most the batch in flight. Re-adding an id
appends a new row that supersedes the old one (latest wins); removing an id logs a tombstone.

Vectors are stored as int8 with one scale per row (384-d: 388 bytes a vector instead of 1,536 for
float32: 1.16 GB at 3M papers) and memory-mapped, so resident memory is the page cache of that file plus a
few bytes of id table per row. Small indexes are searched exactly by brute force over the int8 rows
(numkong's SIMD int8 dot product, ~25 ms per million rows on one core). From ``graph_min_rows`` rows on,
the writer keeps an HNSW graph (graph.py) and search asks it for candidates, scans the rows added since
the graph was saved, and re-scores both exactly: ~1-2 ms instead of ~75 ms at 3M papers. The graph gets
only rows alive when they are added, and is rebuilt from the live rows once most of its nodes have died
(after a re-embedding of the whole catalogue, say), so it stays about the size of the live set.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np
import orjson

from paperwire.search.graph import GraphReader, extend_graph, graph_path

MANIFEST = "manifest.json"
VECTORS = "vectors.i8"
SCALES = "scales.f32"
LOG = "log.jsonl"
LOCK = "writer.lock"
FORMAT = 1
# Changes since the last rebuild of the sorted id table are kept in a dict; past this many (or an eighth of
# the table) the table is rebuilt, so catching up batch by batch stays cheap and memory stays compact.
_RECENT_MAX = 50_000
# A catch-up of more log than this (~40k events) is parsed in slices of this size and merged vectorised.
_BULK_BYTES = 2 << 20
# Scoring a subset by gathering its rows beats scanning everything only while the subset is small.
_GATHER_FRACTION = 0.25
# Below this many rows an exact scan costs about as much as a graph search (~1 ms) and needs no upkeep.
GRAPH_MIN_ROWS = 50_000
# Rows appended since the graph was saved are scanned exactly; past this many the writer extends the graph
# (or rebuilds it, when more of its nodes are dead than alive).
GRAPH_TAIL = 20_000


class IndexLocked(RuntimeError):
    """Another process is writing this index."""


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalise rows, then int8 with one scale per row (max |component| maps to 127)."""
    v = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    peak = np.abs(v).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    return np.rint(v / scale[:, None]).astype(np.int8), scale


def _int8_dots(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Exact int8 dot products of each row of ``matrix`` with the int8 vector ``query``, as float64."""
    try:
        import numkong

        return np.asarray(numkong.cdist(query[None, :], matrix, metric="dot"))[0]
    except ImportError:  # plain numpy: ~20x slower, still exact
        return np.matmul(matrix, query.astype(np.int32), dtype=np.int64).astype(np.float64)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, unordered. Over millions of scores a full argpartition costs
    more than the dot products, so first find a threshold: the k-th largest of the block maxima is <= the
    k-th largest score, and only the few scores above it need partitioning."""
    block = 1024
    usable = scores.size // block * block
    if usable // block >= 4 * k:
        maxima = scores[:usable].reshape(-1, block).max(axis=1)
        threshold = np.partition(maxima, maxima.size - k)[maxima.size - k]
        candidates = np.flatnonzero(scores >= threshold)
        return candidates[np.argpartition(scores[candidates], candidates.size - k)[-k:]]
    return np.argpartition(scores, scores.size - k)[-k:]


def _best(scores: np.ndarray, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the ``k`` best ``scores`` (``rows[i]`` scored ``scores[i]``; by default row i) and
    their scores, best first; ties by row, for a stable order."""
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    top = _top_k(scores, k)
    found = top if rows is None else rows[top]
    order = np.lexsort((found, -scores[top]))
    return found[order], scores[top][order]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class VectorIndex:
    """Vectors by paper id: add (latest wins), remove, exact cosine search, and automatic pick-up of what
    another process committed. Safe for concurrent use by threads of one process."""

    def __init__(
        self,
        path: str | Path,
        dim: int | None = None,
        *,
        graph_min_rows: int = GRAPH_MIN_ROWS,
        graph_tail: int = GRAPH_TAIL,
        use_graph: bool = True,
    ):
        """``dim``: the vectors' size, checked against an existing index; None takes it from the index,
        or from the first batch added to a new one. ``graph_min_rows``/``graph_tail``: when the writer's
        :meth:`update_graph` builds and extends the nearest-neighbour graph; ``use_graph=False`` searches
        exactly even where there is one (to measure what the graph gives and costs)."""
        self.path = Path(path)
        self.dim = dim
        self.graph_min_rows = graph_min_rows
        self.graph_tail = graph_tail
        self.use_graph = use_graph
        self._mutex = threading.RLock()
        self._lock_fd: int | None = None
        self._reset()
        self._refresh()

    # -- state ----------------------------------------------------------------------------------------

    def _reset(self) -> None:
        self._uid: str | None = None
        self._stamp: tuple | None = None  # (inode, mtime_ns, size) of the manifest last read
        self._rows = 0  # committed rows loaded
        self._log_pos = 0  # committed log bytes applied
        self._vecs: np.ndarray | None = None  # memory map of the committed rows
        self._scales = np.empty(0, dtype=np.float32)
        self._row_ids = np.empty(0, dtype="S1")  # id of each row
        self._alive = np.empty(0, dtype=bool)  # the row is its id's current vector
        self._live = 0
        # id -> current row (-1: removed): a sorted table plus a dict of changes since it was built.
        self._sorted_ids = np.empty(0, dtype="S1")
        self._sorted_rows = np.empty(0, dtype=np.int64)
        self._recent: dict[bytes, int] = {}
        self._tags: dict[str, str | None] | None = None  # built on first tags() call
        self._dead: np.ndarray | None = None  # rows superseded or removed, for search; None: recompute
        self._graph: GraphReader | None = None

    def _read_manifest(self) -> dict | None:
        try:
            return orjson.loads((self.path / MANIFEST).read_bytes())
        except FileNotFoundError:
            return None

    def _refresh(self) -> None:
        """Pick up batches committed since we last looked; costs one stat() when nothing changed."""
        with self._mutex:
            try:
                st = os.stat(self.path / MANIFEST)
            except FileNotFoundError:
                if self._stamp is not None:  # the index was deleted
                    self._reset()
                return
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if self._graph is not None:
                self._graph.refresh()
            if stamp == self._stamp:
                return
            manifest = self._read_manifest()
            if manifest is None:
                return
            if self.dim is None:
                self.dim = manifest["dim"]
            elif manifest["dim"] != self.dim:
                raise ValueError(f"{self.path} holds {manifest['dim']}-d vectors, not {self.dim}-d")
            if manifest["uid"] != self._uid or manifest["rows"] < self._rows:
                self._reset()  # rebuilt or replaced by someone else: start over
                self._uid = manifest["uid"]
            self._catch_up(manifest["rows"], manifest["log_bytes"])
            self._stamp = stamp
            if self._graph is None or self._graph.path != graph_path(self.path, self._uid):
                self._graph = GraphReader(graph_path(self.path, self._uid))
                self._graph.refresh()

    def _catch_up(self, rows: int, log_bytes: int) -> None:
        self._dead = None
        if rows > self._rows:
            with open(self.path / SCALES, "rb") as f:
                f.seek(self._rows * 4)
                new_scales = np.frombuffer(f.read((rows - self._rows) * 4), dtype=np.float32)
            self._reserve(rows)
            self._scales[self._rows : rows] = new_scales
            self._vecs = np.memmap(self.path / VECTORS, dtype=np.int8, mode="r", shape=(rows, self.dim))
            self._rows = rows
        if log_bytes <= self._log_pos:
            return
        bulk = log_bytes - self._log_pos > _BULK_BYTES
        chunks: list[tuple[np.ndarray, np.ndarray]] = []
        with open(self.path / LOG, "rb") as f:
            f.seek(self._log_pos)
            # Parsed a slice at a time, so a fresh reader of millions of rows never holds a Python object
            # per event: only compact arrays until the final merge.
            while self._log_pos < log_bytes:
                data = f.read(min(_BULK_BYTES, log_bytes - self._log_pos))
                if self._log_pos + len(data) < log_bytes:
                    data = data[: data.rindex(b"\n") + 1]
                    f.seek(self._log_pos + len(data))
                self._log_pos += len(data)
                events = [orjson.loads(line) for line in data.splitlines()]
                if self._tags is not None:
                    _apply_tags(self._tags, events)
                if bulk:
                    chunks.append(self._parse_bulk(events))
                else:
                    self._apply_small(events)
        if chunks or len(self._recent) > max(_RECENT_MAX, self._sorted_ids.size // 8):
            self._merge(chunks)

    def _reserve(self, rows: int) -> None:
        """Room for ``rows`` rows in the per-row arrays, grown geometrically so appends stay cheap."""
        if rows <= self._alive.size:
            return
        size = max(rows, 2 * self._alive.size, 1024)
        for name in ("_scales", "_alive", "_row_ids"):
            old = getattr(self, name)
            new = np.zeros(size, dtype=old.dtype)
            new[: old.size] = old
            setattr(self, name, new)

    def _apply_small(self, events: list) -> None:
        for e in events:
            if e[0] == "t":
                continue
            key = e[1].encode()
            old = self._row_of(key)
            if old >= 0:
                self._alive[old] = False
                self._live -= 1
            if e[0] == "a":
                row = e[2]
                self._alive[row] = True
                self._live += 1
                if len(key) > self._row_ids.dtype.itemsize:  # widen the fixed-width id column
                    self._row_ids = self._row_ids.astype(f"S{len(key)}")
                self._row_ids[row] = key
                self._recent[key] = row
            elif old >= 0:
                self._recent[key] = -1

    def _parse_bulk(self, events: list) -> tuple[np.ndarray, np.ndarray]:
        """Ids and rows (-1: removed) of ``events`` as arrays; row ids recorded on the way."""
        events = [e for e in events if e[0] != "t"]
        keys = np.array([e[1].encode() for e in events], dtype="S") if events else np.empty(0, "S1")
        rows = np.array([e[2] if e[0] == "a" else -1 for e in events], dtype=np.int64)
        adds = rows >= 0
        if keys.dtype.itemsize > self._row_ids.dtype.itemsize:
            self._row_ids = self._row_ids.astype(keys.dtype)
        self._row_ids[rows[adds]] = keys[adds]
        return keys, rows

    def _merge(self, chunks: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Fold the recent-changes dict and ``chunks`` (in log order) into a new sorted id table."""
        recent_keys = np.array(list(self._recent), dtype="S") if self._recent else np.empty(0, "S1")
        recent_rows = np.fromiter(self._recent.values(), dtype=np.int64, count=len(self._recent))
        # Oldest first: the table, then recent changes, then the chunks; keep each id's last entry.
        all_keys = np.concatenate([self._sorted_ids, recent_keys, *(k for k, _ in chunks)])
        all_rows = np.concatenate([self._sorted_rows, recent_rows, *(r for _, r in chunks)])
        uniq, last_from_end = np.unique(all_keys[::-1], return_index=True)
        current = all_rows[::-1][last_from_end]
        keep = current >= 0  # ids removed for good need no entry
        self._sorted_ids, self._sorted_rows = uniq[keep], current[keep]
        self._recent = {}
        self._alive[:] = False
        self._alive[self._sorted_rows] = True
        self._live = int(self._sorted_rows.size)

    def _row_of(self, key: bytes) -> int:
        row = self._recent.get(key)
        if row is not None:
            return row
        if len(key) > self._sorted_ids.dtype.itemsize:
            # Longer than every id in the table, so not in it; and searching for it would first copy the
            # whole table to the wider type (old-style ids like hep-th/9901001 after a table of new ones).
            return -1
        i = int(np.searchsorted(self._sorted_ids, key))
        if i < self._sorted_ids.size and self._sorted_ids[i] == key:
            return int(self._sorted_rows[i])
        return -1

    def _rows_of(self, ids: Iterable[str]) -> np.ndarray:
        """Current rows of ``ids`` (those without a vector left out), vectorised for big sets."""
        keys = np.unique(np.array([i.encode() for i in ids], dtype="S"))  # sorted: searchsorted runs faster
        if keys.size == 0:
            return np.empty(0, dtype=np.int64)
        rows = np.full(keys.size, -1, dtype=np.int64)
        if self._sorted_ids.size:
            # Compared at the table's width (one copy of the keys, not of the table); a key cut short
            # can only equal a table id that it is not, so equality is checked on the full keys.
            pos = np.searchsorted(self._sorted_ids, keys.astype(self._sorted_ids.dtype))
            pos[pos >= self._sorted_ids.size] = 0
            hit = self._sorted_ids[pos] == keys
            rows[hit] = self._sorted_rows[pos[hit]]
        if self._recent:
            for j, key in enumerate(keys.tolist()):
                row = self._recent.get(key)
                if row is not None:
                    rows[j] = row
        return np.unique(rows[rows >= 0])

    # -- reading --------------------------------------------------------------------------------------

    def reload(self) -> None:
        """Forget what was loaded and read the index from disk again."""
        with self._mutex:
            self._reset()
            self._refresh()

    def __len__(self) -> int:
        self._refresh()
        return self._live

    def has(self, paper_id: str) -> bool:
        self._refresh()
        with self._mutex:
            return self._row_of(paper_id.encode()) >= 0

    def vector(self, paper_id: str) -> np.ndarray | None:
        """The stored vector of ``paper_id`` (float32, unit length), or None."""
        self._refresh()
        with self._mutex:
            row = self._row_of(paper_id.encode())
            if row < 0:
                return None
            v = self._vecs[row].astype(np.float32) * self._scales[row]
        return v / max(float(np.linalg.norm(v)), 1e-12)

    def similarities(self, ids: Iterable[str], query: np.ndarray) -> dict[str, float]:
        """Cosine of each of ``ids`` that has a vector with ``query`` (a unit vector), in one pass."""
        self._refresh()
        with self._mutex:
            rows = self._rows_of(ids)
            if rows.size == 0:
                return {}
            matrix = self._vecs[rows].astype(np.float32) * self._scales[rows, None]
            names = [k.decode() for k in self._row_ids[rows].tolist()]
        norms = np.maximum(np.linalg.norm(matrix, axis=1), 1e-12)
        return dict(zip(names, (matrix @ np.asarray(query, dtype=np.float32) / norms).tolist(), strict=True))

    def ids(self) -> list[str]:
        """Every id that has a vector."""
        self._refresh()
        with self._mutex:
            return [k.decode() for k in self._row_ids[: self._rows][self._alive[: self._rows]].tolist()]

    def tags(self) -> Mapping[str, str | None]:
        """id -> the tag given with its vector (embed_job keeps what the vector was computed from), as a
        read-only view that follows later changes. Read from the log on first use (readers that never
        ask pay nothing), then kept up to date."""
        self._refresh()
        with self._mutex:
            if self._tags is None:
                tags: dict[str, str | None] = {}
                if self._log_pos:
                    with open(self.path / LOG, "rb") as f:
                        data = f.read(self._log_pos)
                    _apply_tags(tags, [orjson.loads(line) for line in data.splitlines()])
                self._tags = tags
            return MappingProxyType(self._tags)

    def search(
        self, query: np.ndarray, k: int = 10, allowed: set[str] | None = None, *, exact: bool = False
    ) -> tuple[list[str], list[float]]:
        """The ``k`` ids most similar to ``query`` by cosine, best first, with their similarities;
        only ids in ``allowed`` when given. Uses the nearest-neighbour graph when there is one (unless
        ``exact``): the result may then miss a few of the true nearest, never include a removed id."""
        self._refresh()
        with self._mutex:  # a consistent view; the arrays are only replaced or appended to, never reused
            vecs, scales, row_ids, rows_n = self._vecs, self._scales, self._row_ids, self._rows
            alive, graph = self._alive, self._graph
            if self._dead is None:
                self._dead = np.flatnonzero(~self._alive[: self._rows])
            dead = self._dead
            subset = None if allowed is None else self._rows_of(allowed)
        if k <= 0 or vecs is None or (subset is not None and subset.size == 0):
            return [], []
        q, q_scale = quantize(query)
        q, q_scale = q[0], float(q_scale[0])
        found = None
        if subset is None and not exact and self.use_graph and graph is not None and graph.covered:
            found = self._approximate(q, k, graph, vecs, scales, alive, dead, rows_n)
        if found is None:
            found = self._exact(q, k, vecs, scales, dead, rows_n, subset)
        rows, scores = found
        return [row_ids[r].decode() for r in rows], [min(1.0, float(s) * q_scale) for s in scores]

    @staticmethod
    def _exact(q, k, vecs, scales, dead, rows_n, subset) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
        """Best ``k`` current rows and their int8 scores by scanning every row (or the ``subset``)."""
        # float32 from here on: at millions of rows every pass over the scores counts.
        if subset is not None and subset.size < _GATHER_FRACTION * rows_n:
            rows = subset
            scores = _int8_dots(vecs[rows], q).astype(np.float32) * scales[rows]
            eligible = rows.size
        else:
            rows = None
            scores = _int8_dots(vecs, q).astype(np.float32)
            scores *= scales[:rows_n]
            if subset is None:
                scores[dead] = -np.inf
                eligible = rows_n - dead.size
            else:  # subset rows are current rows already
                others = np.ones(rows_n, dtype=bool)
                others[subset] = False
                scores[others] = -np.inf
                eligible = subset.size
        return _best(scores, min(k, eligible), rows)

    @staticmethod
    def _approximate(q, k, graph, vecs, scales, alive, dead, rows_n) -> tuple[np.ndarray, np.ndarray] | None:  # noqa: ANN001
        """Best ``k`` current rows from the graph's candidates plus an exact scan of the rows it does not
        cover, re-scored exactly; None when the graph cannot supply enough (mostly removed rows)."""
        covered = min(graph.covered, rows_n)
        live_covered = covered - int(np.searchsorted(dead, covered))  # each of them a node
        # Ask for more than k when nodes that died since they were added (filtered below) are common.
        want = int(np.ceil(k * graph.size / max(1, live_covered))) + 8
        candidates = graph.search(q, want)
        candidates = candidates[candidates < covered]
        candidates = candidates[alive[candidates]]
        if candidates.size < min(k, live_covered):
            return None
        rows = np.sort(candidates)  # gathering in file order reads the memory map sequentially
        scores = _int8_dots(vecs[rows], q).astype(np.float32)
        if covered < rows_n:  # appended since the graph was saved
            tail = _int8_dots(vecs[covered:rows_n], q).astype(np.float32)
            tail_rows = np.arange(covered, rows_n)
            keep = alive[covered:rows_n]
            rows = np.concatenate([rows, tail_rows[keep]])
            scores = np.concatenate([scores, tail[keep]])
        scores *= scales[rows]
        return _best(scores, min(k, rows.size), rows)

    # -- writing --------------------------------------------------------------------------------------

    def _begin_write(self) -> None:
        """Become the writer: take the lock, drop whatever a killed writer left past the manifest."""
        if self._lock_fd is not None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise IndexLocked(f"{self.path} is being written by another process") from None
        self._lock_fd = fd
        manifest = self._read_manifest()
        if manifest is None:
            manifest = {"format": FORMAT, "uid": uuid.uuid4().hex, "dim": self.dim, "rows": 0, "log_bytes": 0}
        for name, size in (
            (VECTORS, manifest["rows"] * self.dim),
            (SCALES, manifest["rows"] * 4),
            (LOG, manifest["log_bytes"]),
        ):
            with open(self.path / name, "ab") as f:
                f.truncate(size)
        if not (self.path / MANIFEST).exists():
            self._commit(manifest)
        self._refresh()  # what we loaded was committed, so the truncation took nothing from it

    def _commit(self, manifest: dict) -> None:
        tmp = self.path / f".{MANIFEST}.tmp"
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(manifest))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path / MANIFEST)
        _fsync_dir(self.path)

    def _write(self, events: list[list], vectors: np.ndarray | None = None) -> None:
        """Append one batch and commit it. Add events carry their row within ``vectors``."""
        with self._mutex:
            self._begin_write()
            self._refresh()
            manifest = self._read_manifest()
            rows = manifest["rows"]
            for e in events:
                if e[0] == "a":
                    e[2] += rows
            log = b"".join(orjson.dumps(e) + b"\n" for e in events)
            files = [(LOG, log)]
            if vectors is not None:
                q, scale = quantize(vectors)
                files += [(VECTORS, q.tobytes()), (SCALES, scale.tobytes())]
                rows += len(q)
            for name, data in files:
                with open(self.path / name, "ab") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            manifest.update(rows=rows, log_bytes=manifest["log_bytes"] + len(log))
            self._commit(manifest)
            self._refresh()

    def add(self, ids: Sequence[str], vectors: np.ndarray, tags: Sequence[str | None] | None = None) -> None:
        """Store vectors for ``ids`` (an id added again gets the new vector) as one committed batch.
        ``tags`` are opaque strings kept with the vectors (see :meth:`tags`)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.dim is None and vectors.ndim == 2:
            self._refresh()
            self.dim = self.dim or vectors.shape[1]
        if len(ids) != len(vectors) or (tags is not None and len(tags) != len(ids)):
            raise ValueError("ids, vectors and tags must have the same length")
        if not len(ids):
            return
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {vectors.shape}")
        tags = [None] * len(ids) if tags is None else tags
        self._write([["a", pid, i, tag] for i, (pid, tag) in enumerate(zip(ids, tags, strict=True))], vectors)

    def retag(self, ids: Sequence[str], tags: Sequence[str | None]) -> None:
        """Change the tags of ids that have vectors, keeping the vectors."""
        self._refresh()
        with self._mutex:
            events = [
                ["t", pid, tag] for pid, tag in zip(ids, tags, strict=True) if self._row_of(pid.encode()) >= 0
            ]
            if events:
                self._write(events)

    def remove(self, ids: Iterable[str]) -> None:
        """Drop the vectors of ``ids`` (deleted papers); ids without one are ignored."""
        self._refresh()
        with self._mutex:
            events = [["r", pid] for pid in dict.fromkeys(ids) if self._row_of(pid.encode()) >= 0]
            if events:
                self._write(events)

    def update_graph(self, progress: Callable[[int, int], None] | None = None, *, force: bool = False) -> int:
        """Build or extend the nearest-neighbour graph when it pays: once the index has ``graph_min_rows``
        rows, and then whenever more than ``graph_tail`` rows were added since (or at once with
        ``force``). Extending rebuilds it from the live rows instead when more of its nodes are dead than
        alive. Takes the writer lock. Returns how many nodes were added to the graph."""
        with self._mutex:
            self._begin_write()
            self._refresh()
            path = graph_path(self.path, self._uid)
            for stale in self.path.glob("graph-*.usearch"):  # left by an earlier generation of the index
                if stale != path:
                    stale.unlink()
            graph = self._graph
            covered, nodes = (graph.covered, graph.size) if graph is not None else (0, 0)
            if self._rows < self.graph_min_rows or self._rows <= covered:
                return 0
            if not force and covered and self._rows - covered <= self.graph_tail:
                return 0
            vecs, rows = self._vecs, self._rows
            # A copy, as the graph is built outside the mutex: rows that die meanwhile become dead nodes,
            # which readers skip anyway.
            alive = self._alive[:rows].copy()
            live_covered = int(np.count_nonzero(alive[:covered]))
            if nodes - live_covered > live_covered:
                # Mostly dead nodes (a re-embedded catalogue leaves every old row dead): searches would
                # fetch that many more candidates and memory would hold them, so start over.
                covered = 0
        added = extend_graph(path, vecs[:rows], alive, covered, progress)
        _fsync_dir(self.path)
        self._refresh()
        return added

    def close(self) -> None:
        """Give up the writer lock (readers hold nothing)."""
        with self._mutex:
            if self._lock_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> VectorIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _apply_tags(tags: dict[str, str | None], events: list) -> None:
    for e in events:
        if e[0] == "a":
            tags[e[1]] = e[3]
        elif e[0] == "t":
            if e[1] in tags:
                tags[e[1]] = e[2]
        else:
            tags.pop(e[1], None)


def index_path(model_name: str, index_dir: str | Path | None = None) -> Path:
    """Where the vectors of ``model_name`` live: ``<index dir>/vectors/<model>/`` (the index dir defaults to
    ``$PAPERWIRE_INDEX_DIR``, i.e. ``$PAPERWIRE_DATA_DIR/index``)."""
    if index_dir is None:
        from paperwire.config import get_settings

        index_dir = get_settings().index_dir
    return Path(index_dir) / "vectors" / model_name
