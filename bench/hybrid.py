"""Hybrid search latency at scale, on the corpus `bench/search.py` built (run that first, same --n).

    python bench/search.py --n 1000000
    python bench/hybrid.py --n 1000000

Embedding a million abstracts with MiniLM takes hours on this CPU, so the vector index gets random unit
vectors instead: how long the fusion and the query's embedding take does not depend on what the vectors
say (the ranking they give is meaningless; bench/quality.py measures ranking). Random vectors are the
worst case for the nearest-neighbour graph: they have no neighbourhoods, so its search explores more of
the graph than on real embeddings and finds few of the exact neighbours (recall on real MiniLM vectors is
in docs/benchmarks.md). For each query kind it prints p50/p95 of hybrid search through the graph and
through an exact scan of every vector, next to keyword search on the same queries (the baseline, same
run), and the query embedding alone, so the table shows what the meaning side costs.

``--model mpnet`` embeds the queries with mpnet (768-d) instead; the graph stays the 384-d one (a 3M
graph takes an hour to build here), so the query vector is cut to its first 384 dimensions for it: the
timing of the model is mpnet's, that of the graph search MiniLM's shape (at 768-d each distance costs
about twice as much).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.search import (  # noqa: E402
    corpus_options,
    make_queries,
    open_corpus,
    percentile,
    read_into_page_cache,
)
from bench.synthetic import CorpusModel  # noqa: E402
from paperwire.search.embeddings import Embedder, get_embedder, serving_threads  # noqa: E402
from paperwire.search.keyword import KeywordIndex  # noqa: E402
from paperwire.search.service import SearchEngine, model_thread  # noqa: E402
from paperwire.search.vectors import VectorIndex  # noqa: E402
from paperwire.store import Store  # noqa: E402

DIM = 384  # MiniLM's


def random_vectors(store: Store, path: Path, chunk: int = 50_000, dim: int = DIM) -> float:
    """Give every paper without a vector in ``path`` a random unit vector (all of them on the first run,
    only the new ones after the corpus grew); returns the seconds it took."""
    started = time.monotonic()
    with store.engine.connect() as conn:
        ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM papers WHERE deleted = 0")]
    index = VectorIndex(path, dim)
    have = set(index.ids())
    ids = [i for i in ids if i not in have]
    rng = np.random.default_rng(1 + len(have))
    try:
        for i in range(0, len(ids), chunk):
            part = ids[i : i + chunk]
            vectors = rng.standard_normal((len(part), dim), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            index.add(part, vectors)
            print(f"  {i + len(part):,} of {len(ids):,} vectors", file=sys.stderr, end="\r")
    finally:
        index.close()
    print(file=sys.stderr)
    return time.monotonic() - started


class FirstDimensions(Embedder):
    """A model's query vectors cut to their first ``dim`` dimensions (and made unit again), to time a
    model against a vector index of another size."""

    def __init__(self, model: Embedder, dim: int):
        self.model, self.dim, self.name = model, dim, model.name

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size)[:, : self.dim]
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def encode_query(self, text: str) -> np.ndarray:  # the model's own query path (int8 where it has one)
        vector = self.model.encode_query(text)[: self.dim]
        return vector / np.linalg.norm(vector)


class CountingEmbedder(Embedder):
    """A model that counts the queries it embeds (which queries re-scoring reached)."""

    def __init__(self, model: Embedder):
        self.model, self.dim, self.name, self.precision = model, model.dim, model.name, model.precision
        self.query_precision = model.query_precision
        self.queries = 0

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        self.queries += len(texts)
        return self.model.encode(texts, batch_size)

    def encode_query(self, text: str) -> np.ndarray:
        self.queries += 1
        return self.model.encode_query(text)


def counting_blends(blended, rescored: list[str]):
    """SearchEngine._blended that notes each blend with the second model's cosines in ``rescored``."""

    def blend(cosines, rescoring):
        if rescoring is not None:
            rescored.append("rescored")
        return blended(cosines, rescoring)

    return blend


def open_random_vectors(description: str) -> tuple[SearchEngine, argparse.Namespace, Path, Path]:
    """For a bench on the corpus and the random vectors this script gave it: the keyword engine and
    command line of bench.search.open_corpus, with the model's threads as `paperwire serve` sets them
    for one worker (the keyword side keeps a core), and the folders of the 384-d and 768-d vectors,
    read into the page cache."""
    os.environ.setdefault("PAPERWIRE_EMBED_THREADS", str(serving_threads(1)))
    engine, args = open_corpus(description)
    work = args.workdir / str(args.n)
    first, second = work / "random-vectors", work / "random-vectors-768"
    if not second.exists():
        raise SystemExit(f"no random vectors in {work}: run python bench/hybrid.py --n {args.n} first")
    read_into_page_cache(first, second)
    return engine, args, first, second


def described_queries(model: CorpusModel, count: int, seed: int = 11) -> list[str]:
    """Long queries, as ideas described in words: 6 to 9 of the vocabulary's commoner words (ranks 50 to
    4,000). Meant to be held by no paper beyond half their words, so that hybrid search leaves them to
    meaning and re-scores their candidates; at 3M most are not (the best papers hold 5 to 7 of them) and
    12 of 200 are left to meaning (docs/benchmarks.md, stop 36)."""
    rng = random.Random(seed)
    vocab = [w.strip(".,;:()[]$").lower() for w in model.population[50:4000]]
    vocab = [w for w in vocab if w.isalpha() and len(w) >= 4]
    return [" ".join(rng.sample(vocab, rng.randint(6, 9))) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    corpus_options(parser)
    parser.add_argument("--model", default="minilm", help="the model that embeds the queries")
    parser.add_argument(
        "--rescore-model",
        default="mpnet",
        help="the model that re-scores the candidates of described queries, as shipped ('none': off)",
    )
    args = parser.parse_args()
    # The model's threads as `paperwire serve` sets them for one worker (the keyword side keeps a core).
    os.environ.setdefault("PAPERWIRE_EMBED_THREADS", str(serving_threads(1)))
    work = args.workdir / str(args.n)
    if not (work / "index" / "keyword").exists():
        raise SystemExit(f"no corpus in {work}: run python bench/search.py --n {args.n} first")
    store = Store.open(f"sqlite:///{work / 'paperwire.db'}")
    vectors_dir = work / "random-vectors"
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"N = {args.n:,}; vectors: random, {DIM}-d int8 (MiniLM's shape)"
    )
    print(f"# random vectors for the papers that had none: {random_vectors(store, vectors_dir):.0f}s")
    with VectorIndex(vectors_dir, graph_min_rows=0) as writer:
        started = time.monotonic()
        added = writer.update_graph(
            progress=lambda done, total: print(f"  graph: {done:,} of {total:,}", file=sys.stderr, end="\r")
        )
        if added:
            print(
                f"# built the nearest-neighbour graph of {added:,} vectors in {time.monotonic() - started:.0f}s"
            )
    graph_file = next(vectors_dir.glob("graph-*.usearch"))
    print(f"# graph file: {graph_file.stat().st_size / 2**20:,.0f} MiB")
    embedder = get_embedder(args.model)
    print(
        f"# query embedding: {args.model} on the CPU, {embedder.query_precision}, "
        f"{os.environ['PAPERWIRE_EMBED_THREADS']} thread(s)"
    )
    if embedder.dim != DIM:
        embedder = FirstDimensions(embedder, DIM)
    keyword_index = KeywordIndex(work / "index" / "keyword")
    engines = {
        name: SearchEngine(store, keyword_index, VectorIndex(vectors_dir, use_graph=graph), lambda: embedder)
        for name, graph in (("graph", True), ("exact", False), ("unrescored", True))
    }
    rescorer = CountingEmbedder(get_embedder(args.rescore_model)) if args.rescore_model != "none" else None
    if rescorer is not None:
        rescore_dir = work / f"random-vectors-{rescorer.dim}"
        seconds = random_vectors(store, rescore_dir, dim=rescorer.dim)
        print(
            f"# random {rescorer.dim}-d vectors for re-scoring, for the papers that had none: {seconds:.0f}s"
        )
        print(f"# re-scoring: {args.rescore_model} on the CPU, queries in {rescorer.query_precision}")
        for name in ("graph", "exact"):
            engines[name].rescore_with(args.rescore_model, rescore_dir, lambda: rescorer)
    # Queries whose candidates were re-scored, and (the rescorer's count) those the second model
    # embedded: more where it started early on a guess that the keyword side then proved wrong.
    rescored: list[str] = []
    for name in ("graph", "exact"):
        engines[name]._blended = counting_blends(engines[name]._blended, rescored)
    for engine in engines.values():
        engine.result_cache_size = 0  # time the search, not the result cache
        engine.vector_cache_size = 0  # nor the cache of query embeddings
    queries = make_queries(CorpusModel(seed=1), args.queries)
    queries["described"] = described_queries(CorpusModel(seed=1), args.queries)
    cached = [work / "paperwire.db", work / "index" / "keyword", vectors_dir]
    if rescorer is not None:
        cached.append(rescore_dir)
    size, seconds = read_into_page_cache(*cached)
    print(f"# read store, index and vectors into the page cache: {size / 1e9:.2f} GB in {seconds:.0f}s")
    for engine in engines.values():
        engine.warm_up()  # load the models, as `paperwire serve` does when it starts
    for text in queries["keyword"][:50]:  # and warm tantivy's own caches, as a running server would be
        for engine in engines.values():
            engine.search(text, mode="hybrid")
    print()
    print(
        "| query kind | hybrid p50 ms | hybrid p95 ms | hybrid exact-scan p95 ms | keyword p50 ms | "
        "keyword p95 ms | hybrid / keyword (p95) | query embedding p50 ms | vectors: graph / scan p50 ms | "
        "re-scored (second model ran) | hybrid without re-scoring p50 / p95 ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(2)
    for kind in ("keyword", "typo", "prefix", "typing", "described"):
        timings: dict[str, list[float]] = {
            k: [] for k in ("hybrid", "exact", "keyword", "embed", "graph", "scan", "unrescored")
        }
        rescored_before = rescorer.queries if rescorer is not None else 0
        blended_before = len(rescored)
        for text in queries[kind]:
            # Alternated per query, so that a noisy neighbour on the machine hits every column alike.
            for name, engine, mode in (
                ("hybrid", engines["graph"], "hybrid"),
                ("exact", engines["exact"], "hybrid"),
                ("keyword", engines["graph"], "keyword"),
                ("unrescored", engines["unrescored"], "hybrid"),
            ):
                started = time.perf_counter()
                engine.search(text, mode=mode)
                timings[name].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            model_thread().submit(embedder.encode_query, text).result()  # where searches embed queries
            timings["embed"].append((time.perf_counter() - started) * 1000)
            q = rng.standard_normal(DIM).astype(np.float32)
            for name in ("graph", "scan"):
                started = time.perf_counter()
                engines["graph" if name == "graph" else "exact"].vectors.search(q, 100)
                timings[name].append((time.perf_counter() - started) * 1000)
        t = timings
        print(
            f"| {kind} | {statistics.median(t['hybrid']):.1f} | {percentile(t['hybrid'], 0.95):.1f} | "
            f"{percentile(t['exact'], 0.95):.1f} | "
            f"{statistics.median(t['keyword']):.1f} | {percentile(t['keyword'], 0.95):.1f} | "
            f"{percentile(t['hybrid'], 0.95) / percentile(t['keyword'], 0.95):.1f} | "
            f"{statistics.median(t['embed']):.1f} | "
            f"{statistics.median(t['graph']):.1f} / {statistics.median(t['scan']):.1f} | "
            # Queries the second model embedded (each is searched twice: graph and exact scan).
            f"{(len(rescored) - blended_before) // 2} of {len(queries[kind])} "
            f"({(rescorer.queries - rescored_before) // 2 if rescorer else 0}) | "
            f"{statistics.median(t['unrescored']):.1f} / {percentile(t['unrescored'], 0.95):.1f} |"
        )
    memory = psutil.Process().memory_info()
    print()
    print(
        f"Process memory after the queries: RSS {memory.rss / 2**20:,.0f} MiB, of it mapped files "
        f"{memory.shared / 2**20:,.0f} MiB (keyword index, vectors, graph: page cache, reclaimable) and "
        f"private {(memory.rss - memory.shared) / 2**20:,.0f} MiB; two engines share one model"
    )


if __name__ == "__main__":
    main()
