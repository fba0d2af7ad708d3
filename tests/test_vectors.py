"""VectorIndex: add / replace / remove / search / filters, readers picking up a writer's batches, int8
accuracy, and a writer killed with SIGKILL at random moments never corrupting what it committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import orjson
import pytest

from paperwire.search import vectors as vectors_module
from paperwire.search.vectors import IndexLocked, VectorIndex, _top_k, index_path, quantize

DIM = 32


def unit(rows: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def ids(n: int, prefix: str = "2401.") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


def brute_force(matrix: np.ndarray, names: list[str], query: np.ndarray, k: int) -> list[str]:
    scores = matrix @ query
    return [names[i] for i in np.argsort(-scores, kind="stable")[:k]]


def test_empty_index_searches_to_nothing(tmp_path):
    index = VectorIndex(tmp_path / "v", DIM)
    assert len(index) == 0
    assert index.search(unit(1)[0], 5) == ([], [])
    assert not index.has("2401.00001")
    assert index.vector("2401.00001") is None
    assert not (tmp_path / "v").exists()  # opening to read writes nothing


def test_add_search_vector(tmp_path):
    vecs = unit(300)
    names = ids(300)
    index = VectorIndex(tmp_path / "v", DIM)
    index.add(names[:100], vecs[:100])
    index.add(names[100:], vecs[100:])
    assert len(index) == 300
    assert index.has("2401.00007") and not index.has("2401.99999")
    found, scores = index.search(vecs[42], 5)
    assert found[0] == "2401.00042"
    assert scores[0] == pytest.approx(1.0, abs=0.01)
    assert scores == sorted(scores, reverse=True)
    # int8 storage: scores and stored vectors stay close to float32.
    exact = vecs @ vecs[42]
    for name, score in zip(found, scores, strict=True):
        assert score == pytest.approx(exact[names.index(name)], abs=0.02)
    stored = index.vector("2401.00042")
    assert stored.dtype == np.float32
    assert float(stored @ vecs[42]) > 0.999
    assert np.linalg.norm(stored) == pytest.approx(1.0, abs=1e-5)
    assert sorted(index.ids()) == names


def test_int8_recall_against_float32(tmp_path):
    vecs = unit(5000, seed=1)
    names = ids(5000)
    index = VectorIndex(tmp_path / "v", DIM)
    index.add(names, vecs)
    queries = unit(50, seed=2)
    hits = sum(len(set(index.search(q, 10)[0]) & set(brute_force(vecs, names, q, 10))) for q in queries)
    assert hits / (10 * len(queries)) >= 0.95


def test_latest_wins_and_remove(tmp_path):
    vecs = unit(10)
    index = VectorIndex(tmp_path / "v", DIM)
    index.add(["a", "b", "c"], vecs[:3])
    index.add(["b"], vecs[5:6])  # replaces b's vector
    assert len(index) == 3
    assert float(index.vector("b") @ vecs[5]) > 0.999
    found, _ = index.search(vecs[1], 3)
    assert found[0] != "b"  # b's old vector is gone from search
    assert index.search(vecs[5], 1)[0] == ["b"]

    index.remove(["a", "not-there"])
    assert len(index) == 2 and not index.has("a")
    assert "a" not in index.search(vecs[0], 10)[0]
    index.add(["a"], vecs[0:1])  # back after removal
    assert index.search(vecs[0], 1)[0] == ["a"]
    # duplicates within one batch: the last one wins
    index.add(["d", "d"], vecs[6:8])
    assert float(index.vector("d") @ vecs[7]) > 0.999
    assert len(index) == 4


def test_allowed_filter(tmp_path):
    vecs = unit(400, seed=3)
    names = ids(400)
    index = VectorIndex(tmp_path / "v", DIM)
    index.add(names, vecs)
    index.remove([names[1]])
    small = {names[i] for i in range(0, 400, 40)} | {names[1], "unknown"}  # gathered rows
    large = {names[i] for i in range(0, 400, 2)} | {names[1]}  # masked full scan
    for allowed in (small, large):
        found, scores = index.search(vecs[0], 500, allowed=allowed)
        assert set(found) == allowed - {names[1], "unknown"}
        assert scores == sorted(scores, reverse=True)
        assert found[0] == names[0]
    assert index.search(vecs[0], 5, allowed=set()) == ([], [])
    assert index.search(vecs[0], 5, allowed={"unknown"}) == ([], [])


def test_reader_picks_up_writer_batches(tmp_path):
    vecs = unit(50)
    writer = VectorIndex(tmp_path / "v", DIM)
    reader = VectorIndex(tmp_path / "v", DIM)  # opened before anything was written
    assert len(reader) == 0
    writer.add(["x", "y"], vecs[:2])
    assert len(reader) == 2 and reader.search(vecs[1], 1)[0] == ["y"]
    writer.add(["x"], vecs[2:3])
    writer.remove(["y"])
    assert len(reader) == 1
    assert reader.search(vecs[2], 5)[0] == ["x"]
    assert float(reader.vector("x") @ vecs[2]) > 0.999
    reader.reload()
    assert reader.ids() == ["x"]


def test_bulk_load_equals_incremental(tmp_path, monkeypatch):
    """A fresh reader merges a big log vectorised; one following batch by batch uses a dict: same result."""
    vecs = unit(3000, seed=4)
    names = ids(1500) + ids(1500)  # every id added twice: the second half replaces the first
    writer = VectorIndex(tmp_path / "v", DIM)
    follower = VectorIndex(tmp_path / "v", DIM)
    for start in range(0, 3000, 250):
        writer.add(names[start : start + 250], vecs[start : start + 250], tags=[str(start)] * 250)
        writer.remove(names[start : start + 3])
        len(follower)
    monkeypatch.setattr(vectors_module, "_BULK_BYTES", 4096)  # force many slices and the vectorised merge
    fresh = VectorIndex(tmp_path / "v", DIM)
    removed = {names[s + i] for s in range(1500, 3000, 250) for i in range(3)}  # the last removal wins
    for index in (writer, follower, fresh):
        assert sorted(index.ids()) == sorted(set(names) - removed)
        assert len(index) == 1500 - 18
        assert float(index.vector(names[10]) @ vecs[1510]) > 0.999
        assert index.search(vecs[2999], 1)[0] == [names[2999]]
        assert index.tags()[names[10]] == "1500"


def test_tags_and_retag(tmp_path):
    vecs = unit(3)
    index = VectorIndex(tmp_path / "v", DIM)
    index.add(["a", "b"], vecs[:2], tags=["1 aa", "2 bb"])
    view = index.tags()
    assert dict(view) == {"a": "1 aa", "b": "2 bb"}
    index.retag(["a", "missing"], ["3 aa", "x"])
    index.remove(["b"])
    assert dict(view) == {"a": "3 aa"}  # the view follows changes
    other = VectorIndex(tmp_path / "v", DIM)
    assert dict(other.tags()) == {"a": "3 aa"}
    assert float(other.vector("a") @ vecs[0]) > 0.999  # retag kept the vector


def test_one_writer_at_a_time_and_dim_checked(tmp_path):
    first = VectorIndex(tmp_path / "v", DIM)
    first.add(["a"], unit(1))
    second = VectorIndex(tmp_path / "v", DIM)
    with pytest.raises(IndexLocked):
        second.add(["b"], unit(1))
    first.close()
    second.add(["b"], unit(1, seed=5))
    assert len(first) == 2
    with pytest.raises(ValueError, match="32-d"):
        VectorIndex(tmp_path / "v", 16)
    with pytest.raises(ValueError):
        second.add(["c"], unit(1, dim=16))


def test_torn_batch_is_dropped(tmp_path):
    """What a killed writer appended after its last commit is invisible, then truncated by the next writer."""
    path = tmp_path / "v"
    writer = VectorIndex(path, DIM)
    writer.add(["a", "b"], unit(2))
    writer.close()
    with open(path / "vectors.i8", "ab") as f:
        f.write(b"\x01" * (DIM + 5))
    with open(path / "log.jsonl", "ab") as f:
        f.write(b'["a","c",2,null]\n["a","d",')
    reader = VectorIndex(path, DIM)
    assert sorted(reader.ids()) == ["a", "b"]
    again = VectorIndex(path, DIM)
    again.add(["e"], unit(1, seed=9))
    assert (path / "vectors.i8").stat().st_size == 3 * DIM
    assert sorted(reader.ids()) == ["a", "b", "e"]
    assert float(reader.vector("e") @ unit(1, seed=9)[0]) > 0.999


def test_quantize_roundtrip():
    v = unit(100, seed=6, dim=384)
    q, scale = quantize(v)
    assert q.dtype == np.int8 and scale.dtype == np.float32
    back = q.astype(np.float32) * scale[:, None]
    assert np.abs(back - v).max() <= scale.max() / 2 + 1e-6
    assert (np.abs(q).max(axis=1) == 127).all()


@pytest.mark.parametrize("n,k", [(10, 3), (5000, 10), (300_000, 10), (300_000, 100), (200_000, 1)])
def test_top_k(n, k):
    rng = np.random.default_rng(n + k)
    for case in ("plain", "mostly excluded", "ties"):
        scores = rng.standard_normal(n).astype(np.float32)
        if case == "mostly excluded":
            scores[rng.random(n) < 0.95] = -np.inf
        elif case == "ties":
            scores = np.round(scores, 1)
        top = _top_k(scores, k)
        assert top.size == k == np.unique(top).size
        assert np.array_equal(np.sort(scores[top]), np.sort(scores)[-k:])


def test_index_path(tmp_path, monkeypatch):
    monkeypatch.delenv("PAPERWIRE_INDEX_DIR", raising=False)
    monkeypatch.setenv("PAPERWIRE_DATA_DIR", str(tmp_path))
    assert index_path("minilm") == tmp_path / "index" / "vectors" / "minilm"


def test_dim_from_the_index_or_the_first_batch(tmp_path):
    reader = VectorIndex(tmp_path / "v")
    assert reader.dim is None and len(reader) == 0
    writer = VectorIndex(tmp_path / "v")
    writer.add(["a"], unit(1))
    assert writer.dim == DIM
    assert len(reader) == 1 and reader.dim == DIM
    assert VectorIndex(tmp_path / "v").dim == DIM


WRITER = """
import sys
from pathlib import Path
import numpy as np
import orjson
from paperwire.search.vectors import VectorIndex

path = Path(sys.argv[1])
index = VectorIndex(path, 32)
done = orjson.loads((path / "manifest.json").read_bytes())["rows"] // 10 if path.exists() else 0
if done and (done - 1) % 3 == 0:  # the kill may have come between a batch's add and its remove
    index.remove([f"p{(done - 1) * 10 - 7}"])
for batch in range(done, 10_000):
    names = [f"p{batch * 10 + i}" for i in range(10)]
    rng = np.random.default_rng(batch)
    index.add(names, rng.standard_normal((10, 32)), tags=[str(batch)] * 10)
    if batch % 3 == 0:
        index.remove([f"p{batch * 10 - 7}"])
"""


def expected_vector(name: str) -> np.ndarray:
    n = int(name[1:])
    v = np.random.default_rng(n // 10).standard_normal((10, 32))[n % 10].astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.mark.slow
def test_writer_killed_at_random_moments(tmp_path):
    path = tmp_path / "v"
    reader = VectorIndex(path, DIM)
    rng = np.random.default_rng(7)
    for round_ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
        deadline = time.monotonic() + 30
        target = (round_ + 1) * 100
        while len(reader) < target and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0, 0.05)))  # land anywhere inside a batch
        assert proc.poll() is None, "the writer stopped by itself"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        fresh = VectorIndex(path, DIM)
        manifest = orjson.loads((path / "manifest.json").read_bytes())
        assert manifest["rows"] % 10 == 0  # whole batches only
        names = fresh.ids()
        assert len(names) == len(set(names)) == len(fresh) == len(reader)
        batches = manifest["rows"] // 10
        live = {f"p{i}" for i in range(batches * 10)} - {
            f"p{b * 10 - 7}" for b in range(0, batches) if b % 3 == 0 and b * 10 - 7 >= 0
        }
        # the kill may have come between the last batch's add and its remove
        assert set(names) - live <= {f"p{(batches - 1) * 10 - 7}"}
        assert live <= set(names)
        for name in rng.choice(sorted(live), 20):
            assert float(fresh.vector(name) @ expected_vector(name)) > 0.999
            assert fresh.tags()[name] == str(int(name[1:]) // 10)
    assert len(reader) > 400


def test_similarities_of_some_ids(tmp_path):
    vecs = unit(200, seed=4)
    names = ids(200)
    index = VectorIndex(tmp_path / "v", DIM)
    index.add(names, vecs)
    index.remove([names[3]])
    query = vecs[7]
    got = index.similarities([names[7], names[3], names[150], "2401.99999"], query)
    assert set(got) == {names[7], names[150]}  # removed and unknown ids have no vector
    assert got[names[7]] == pytest.approx(1.0, abs=0.01)
    assert got[names[150]] == pytest.approx(float(vecs[150] @ query), abs=0.02)
    assert index.similarities([], query) == {}


def test_old_style_ids_after_a_table_of_new_ones(tmp_path, monkeypatch):
    """Ids longer than every id already merged into the sorted table (hep-th/9901001 after 2401.00001):
    added, replaced, looked up one by one and in bulk, by the writer and by a following reader."""
    monkeypatch.setattr(vectors_module, "_RECENT_MAX", 10)  # merge the new-style ids into the table early
    vecs = unit(300, seed=5)
    short = ids(200)
    long = [f"hep-th/99{i:05d}" for i in range(100)]
    writer = VectorIndex(tmp_path / "v", DIM)
    follower = VectorIndex(tmp_path / "v", DIM)
    writer.add(short, vecs[:200])
    assert len(follower) == 200 and follower._sorted_ids.dtype.itemsize == len(short[0])
    writer.add(long, vecs[200:])
    writer.add(long[:5], vecs[:5])  # replaced: each found again through the narrower table
    for index in (writer, follower, VectorIndex(tmp_path / "v", DIM)):
        assert len(index) == 300
        assert index.has(long[7]) and not index.has("hep-th/9999999") and index.has(short[3])
        assert float(index.vector(long[0]) @ vecs[0]) > 0.99
        assert set(index.similarities([long[9], short[9], "hep-th/9999999"], vecs[209])) == {
            long[9],
            short[9],
        }
        assert index.search(vecs[250], 1)[0] == [long[50]]
