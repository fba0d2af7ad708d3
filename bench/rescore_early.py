"""Queries that describe an idea in hybrid search: the second model started as soon as the relaxing
walk shows the query is a description, against after the keyword side, on the corpus `bench/search.py`
built and the random vectors `bench/hybrid.py` gave it (run both first, same --n).

    python bench/search.py --n 1000000
    python bench/hybrid.py --n 1000000
    python bench/rescore_early.py --n 1000000

Where no paper matches more than half of a query's words, hybrid search re-scores its candidates with
a second model (service.RESCORE_SHARE), which embeds the query first (~20 ms on 2 cores). The keyword
side learns how many words the best papers match from its relaxing walk, before it ranks them; from
there the model's thread embeds beside it (service.RESCORE_EARLY). Both ways are timed on
`bench/hybrid.py`'s described queries in the same process, taking turns at going first, and their
results (ids and scores) are compared: they must be the same. Started early on a guess that the
keyword side then proves wrong, the model's work is wasted: the table counts those too.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hybrid import CountingEmbedder, counting_blends, described_queries, open_random_vectors  # noqa: E402
from bench.search import in_turns, percentile  # noqa: E402
from bench.synthetic import CorpusModel  # noqa: E402
from paperwire.search import service  # noqa: E402
from paperwire.search.embeddings import get_embedder  # noqa: E402
from paperwire.search.vectors import VectorIndex  # noqa: E402

WAYS = {"started by the walk": True, "started after the keyword side": False}


def main() -> None:
    engine, args, first, second = open_random_vectors(__doc__)
    model, rescorer = get_embedder("minilm"), CountingEmbedder(get_embedder("mpnet"))
    engine.vectors, engine.embedder = VectorIndex(first, use_graph=True), lambda: model
    engine.rescore_with("mpnet", second, lambda: rescorer)
    engine.vector_cache_size = 0  # every search embeds its query, as a new query would
    engine.warm_up()
    rescored: list[str] = []
    engine._blended = counting_blends(engine._blended, rescored)
    queries = described_queries(CorpusModel(seed=1), args.queries)
    for text in queries[:20]:  # warm tantivy's caches, as a running server would be
        engine.search(text, mode="hybrid")
    of_rescored: dict[str, list[float]] = {way: [] for way in WAYS}
    embedded = dict.fromkeys(WAYS, 0)
    before = [0, 0]  # the second model's embeddings and the blends, before a search

    def switch(early: bool) -> None:
        service.RESCORE_EARLY = early
        before[:] = [rescorer.queries, len(rescored)]

    def counted(way: str, ms: float) -> None:
        if len(rescored) > before[1]:
            of_rescored[way].append(ms)
        embedded[way] += rescorer.queries - before[0]

    timings, same = in_turns(
        lambda text: engine.search(text, mode="hybrid"),
        queries,
        {way: lambda early=early: switch(early) for way, early in WAYS.items()},
        counted,
    )
    service.RESCORE_EARLY = True
    n = len(queries)
    print()
    print(
        f"| second model | p50 ms | p95 ms | re-scored queries: p50 / p95 ms | re-scored (of {n}) | "
        f"second model embedded | same results (of {n}) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for way, t in timings.items():
        r = of_rescored[way]
        print(
            f"| {way} | {statistics.median(t):.1f} | {percentile(t, 0.95):.1f} | "
            f"{statistics.median(r) if r else 0:.1f} / {percentile(r, 0.95) if r else 0:.1f} | "
            f"{len(r)} | {embedded[way]} | {same} |"
        )


if __name__ == "__main__":
    main()
