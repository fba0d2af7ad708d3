"""The nearest-neighbour graph behind VectorIndex.search: built and extended only when it pays, its
candidates re-scored exactly, rows added since it was saved still found, removed ids never returned, a
reader picking up a new graph, and a rebuilt index never paired with an old graph."""

from __future__ import annotations

import numpy as np
import pytest

from paperwire.search.graph import graph_path
from paperwire.search.vectors import VectorIndex

DIM = 32
TOPICS = np.random.default_rng(99).standard_normal((40, DIM)).astype(np.float32)


def clustered(rows: int, seed: int) -> np.ndarray:
    """Vectors around a few dozen topics, as text embeddings are (uniform random vectors have no
    neighbourhoods for a graph to follow)."""
    rng = np.random.default_rng(seed)
    v = TOPICS[rng.integers(0, len(TOPICS), rows)] + 0.35 * rng.standard_normal((rows, DIM)).astype(
        np.float32
    )
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def ids(start: int, stop: int) -> list[str]:
    return [f"2401.{i:05d}" for i in range(start, stop)]


def open_index(path, **kw) -> VectorIndex:
    return VectorIndex(
        path, DIM, graph_min_rows=kw.pop("graph_min_rows", 1000), graph_tail=kw.pop("graph_tail", 200)
    )


def with_graph(path, vectors: np.ndarray) -> VectorIndex:
    """An index of ``vectors`` (ids 2401.00000 on) whose graph covers all of them."""
    index = open_index(path)
    index.add(ids(0, len(vectors)), vectors)
    index.update_graph()
    return index


def recall(index: VectorIndex, queries: np.ndarray, k: int) -> float:
    found = 0
    for q in queries:
        approximate, _ = index.search(q, k)
        exact, _ = index.search(q, k, exact=True)
        found += len(set(approximate) & set(exact))
    return found / (k * len(queries))


def test_graph_is_built_only_past_the_threshold_and_extended_past_the_tail(tmp_path):
    path = tmp_path / "v"
    with open_index(path) as index:
        index.add(ids(0, 900), clustered(900, 1))
        assert index.update_graph() == 0  # 900 rows: an exact scan is as fast
        assert not list(path.glob("graph-*"))
        index.add(ids(900, 2000), clustered(1100, 2))
        assert index.update_graph() == 2000
        assert graph_path(path, index._uid).exists()
        index.add(ids(2000, 2150), clustered(150, 3))
        assert index.update_graph() == 0  # 150 new rows: scanned exactly until there are more
        assert index.update_graph(force=True) == 150
        assert index.update_graph(force=True) == 0


def test_graph_search_matches_exact_search(tmp_path):
    path = tmp_path / "v"
    vecs = clustered(3000, 1)
    with with_graph(path, vecs) as index:
        queries = clustered(40, 7)
        assert recall(index, queries, 10) >= 0.95
        assert recall(index, queries, 100) >= 0.9
        found, scores = index.search(vecs[123], 5)
        assert found[0] == "2401.00123"
        exact_found, exact_scores = index.search(vecs[123], 5, exact=True)
        # Candidates are re-scored from the stored vectors: the same similarities as the exact scan.
        assert scores[0] == pytest.approx(exact_scores[0])
        assert scores == sorted(scores, reverse=True)


def test_rows_added_after_the_graph_are_found(tmp_path):
    path = tmp_path / "v"
    with with_graph(path, clustered(2000, 1)) as index:
        late = clustered(50, 5)
        index.add(ids(5000, 5050), late)
        assert index._graph.rows == 2000  # not in the graph yet
        for i in (0, 17, 49):
            assert index.search(late[i], 3)[0][0] == f"2401.{5000 + i:05d}"


def test_removed_and_replaced_ids_never_come_back(tmp_path):
    path = tmp_path / "v"
    vecs = clustered(2000, 1)
    with with_graph(path, vecs) as index:
        removed = set(ids(0, 2000)[::2])
        index.remove(sorted(removed))
        moved = clustered(1, 9)
        index.add(["2401.00001"], moved)  # a new vector for an id: its old row is still in the graph
        for q in clustered(20, 3):
            found, _ = index.search(q, 50)
            assert not removed & set(found)
            assert len(found) == len(set(found)) == 50
        assert index.search(moved[0], 1)[0] == ["2401.00001"]


def test_mostly_removed_falls_back_to_exact(tmp_path):
    path = tmp_path / "v"
    vecs = clustered(2000, 1)
    with with_graph(path, vecs) as index:
        index.remove(ids(0, 1995))
        found, _ = index.search(vecs[1997], 10)
        assert sorted(found) == ids(1995, 2000)


def test_reader_picks_up_a_new_graph(tmp_path):
    path = tmp_path / "v"
    writer = open_index(path)
    writer.add(ids(0, 2000), clustered(2000, 1))
    reader = VectorIndex(path)
    reader.search(clustered(1, 2)[0], 5)
    assert reader._graph.rows == 0
    writer.update_graph()
    found, _ = reader.search(clustered(1, 2)[0], 5)
    assert reader._graph.rows == 2000
    assert found == writer.search(clustered(1, 2)[0], 5, exact=True)[0]
    writer.close()


def test_a_rebuilt_index_drops_the_old_graph(tmp_path):
    path = tmp_path / "v"
    with with_graph(path, clustered(2000, 1)) as index:
        old = graph_path(path, index._uid)
    for name in ("manifest.json", "vectors.i8", "scales.f32", "log.jsonl"):
        (path / name).unlink()  # what a rebuild starts from: same folder, no vectors
    with open_index(path) as index:
        index.add(ids(0, 1500), clustered(1500, 4))
        assert index._graph.rows == 0  # the old file is another generation's
        index.update_graph()
        assert not old.exists()
        assert graph_path(path, index._uid).exists()


def test_a_torn_graph_file_is_ignored(tmp_path):
    path = tmp_path / "v"
    vecs = clustered(2000, 1)
    with with_graph(path, vecs) as index:
        graph_file = graph_path(path, index._uid)
    graph_file.write_bytes(graph_file.read_bytes()[:1000])
    reader = VectorIndex(path)
    assert reader.search(vecs[5], 1)[0] == ["2401.00005"]
