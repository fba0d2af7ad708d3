"""MiniLM's query vectors in float32 against the default (int8 through the feed-forward layers, on a CPU
without native bfloat16) in hybrid search, on the corpus `bench/search.py` built and the random vectors
`bench/hybrid.py` gave it (run both first, same --n).

    python bench/search.py --n 1000000
    python bench/hybrid.py --n 1000000
    python bench/query_int8.py --n 1000000

Hybrid search embeds every query with MiniLM on the model's thread while the keyword side searches, then
looks up its nearest papers: for most queries that path is the longer one. Both precisions are timed on
`bench/hybrid.py`'s query kinds in the same process, taking turns at going first, and their first pages
are compared. The vectors are random, so a query vector that moved a little reorders the papers ranked
by meaning alone more than real vectors would: `bench/quality.py` measures the ranking. Then the
embedding alone, and how close each way's vector is to float32's, on the judged queries.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hybrid import described_queries, open_random_vectors  # noqa: E402
from bench.search import in_turns, make_queries, percentile  # noqa: E402
from bench.synthetic import CorpusModel  # noqa: E402
from paperwire.search.embeddings import MiniLMEmbedder, get_embedder  # noqa: E402
from paperwire.search.vectors import VectorIndex  # noqa: E402

JUDGED = Path(__file__).resolve().parent / "judgments.json"


def main() -> None:
    engine, args, first, second = open_random_vectors(__doc__)
    models = {"float32": MiniLMEmbedder(device="cpu", precision="float32"), "default": get_embedder("minilm")}
    print(f"# MiniLM's queries: float32 against the default ({models['default'].query_precision})")
    rescorer = get_embedder("mpnet")
    engine.vectors = VectorIndex(first, use_graph=True)
    engine.rescore_with("mpnet", second, lambda: rescorer)
    engine.vector_cache_size = 0  # every search embeds its query, as a new query would
    current = ["default"]
    engine.embedder = lambda: models[current[0]]
    for name in models:
        current[0] = name
        engine.warm_up()
    queries = make_queries(CorpusModel(seed=1), args.queries)
    queries["described"] = described_queries(CorpusModel(seed=1), args.queries)
    for text in queries["keyword"][:20]:  # warm tantivy's caches, as a running server would be
        engine.search(text, mode="hybrid")
    print()
    print(f"| query kind | MiniLM's queries | p50 ms | p95 ms | same first page (of {args.queries}) |")
    print("|---|---|---:|---:|---:|")
    for kind in ("keyword", "typo", "prefix", "typing", "described"):
        timings, same = in_turns(
            lambda text: engine.search(text, mode="hybrid"),
            queries[kind],
            {name: lambda name=name: current.__setitem__(0, name) for name in models},
        )
        for name, t in timings.items():
            print(f"| {kind} | {name} | {statistics.median(t):.1f} | {percentile(t, 0.95):.1f} | {same} |")
    judged = [q["query"] for q in json.loads(JUDGED.read_text())]
    exact = [models["float32"].encode_query(text) for text in judged]
    print()
    print(
        f"| MiniLM's queries | embedding p50 ms (1 thread) | cosine to float32's: least / mean ({len(judged)} judged queries) |"
    )
    print("|---|---:|---|")
    for name, model in models.items():
        took = []
        for text in judged * 3:
            started = time.perf_counter()
            model.encode_query(text)
            took.append((time.perf_counter() - started) * 1000)
        cosines = [float(a @ model.encode_query(text)) for a, text in zip(exact, judged, strict=True)]
        print(
            f"| {name} | {statistics.median(took):.1f} | {min(cosines):.4f} / {statistics.mean(cosines):.5f} |"
        )


if __name__ == "__main__":
    main()
