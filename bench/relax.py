"""Long queries in keyword search: relaxing by one walk of the words' union against stepping down a word at
a time, on the corpus `bench/search.py` built (run that first, same --n).

    python bench/search.py --n 1000000
    python bench/relax.py --n 1000000

A query of 6-9 common words (bench/hybrid.py's "described" kind) that no page of papers matches whole is
relaxed: paperwire looks for the most words a page of papers matches. Stepping down ("at least n-1 of n",
then n-2, ...) walks the union of the words' postings once per level; `_plain` now reads the level from
one walk of the union (RELAX_JUMP_FROM), a cheap one that only counts the words each paper matches
(QueryBuilder.words_matched), and where that walk's first LEVEL_IDS hits hold every paper of the
level, ranks those papers alone instead of walking the level. The three ways are timed on the same
queries in the same process, taking turns at going first, and their results (ids, totals, the relaxed
flag) are compared: they must be the same, but for papers whose scores tie: the ways add the same
float32 scores in different orders, so a score may differ in its last digits (0.001 in 500) and two
tied papers change places.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hybrid import described_queries  # noqa: E402
from bench.search import open_corpus, percentile  # noqa: E402
from bench.synthetic import CorpusModel  # noqa: E402
from paperwire.search import service  # noqa: E402

# (RELAX_JUMP_FROM, LEVEL_IDS) for each way of relaxing
WAYS = {
    "counting walk, the level's papers ranked alone": (service.RELAX_JUMP_FROM, service.LEVEL_IDS),
    "counting walk, then the level's walk": (service.RELAX_JUMP_FROM, 0),
    "a word at a time": (10**9, 0),
}


def main() -> None:
    engine, args = open_corpus(__doc__)
    queries = described_queries(CorpusModel(seed=1), args.queries)
    for text in queries[:20]:  # warm tantivy's caches, as a running server would be
        engine.search(text, mode="keyword")
    timings: dict[str, list[float]] = {way: [] for way in WAYS}
    same = same_but_ties = 0
    for i, text in enumerate(queries):
        found = {}
        for way in list(WAYS)[:: 1 if i % 2 else -1]:
            service.RELAX_JUMP_FROM, service.LEVEL_IDS = WAYS[way]
            started = time.perf_counter()
            result = engine.search(text, mode="keyword")
            timings[way].append((time.perf_counter() - started) * 1000)
            found[way] = (result.total, [(h.id, h.score) for h in result.hits], result.relaxed)
        results = list(found.values())
        same += len({(total, tuple(i for i, _ in hits), relaxed) for total, hits, relaxed in results}) == 1
        same_but_ties += all(agree_but_ties(r, results[0]) for r in results)
    service.RELAX_JUMP_FROM, service.LEVEL_IDS = next(iter(WAYS.values()))
    base = percentile(timings["a word at a time"], 0.95)
    print()
    print("| relaxing | p50 ms | p95 ms | p95 against a word at a time |")
    print("|---|---:|---:|---:|")
    for way, t in timings.items():
        p95 = percentile(t, 0.95)
        print(f"| {way} | {statistics.median(t):.1f} | {p95:.1f} | {p95 / base:.2f} |")
    print()
    print(f"Same results (ids, total, relaxed) for {same} of {len(queries)} queries;")
    print(f"the same but for the order of tied papers (scores within {TIE}) for {same_but_ties}.")


TIE = 0.01


def agree_but_ties(a: tuple, b: tuple) -> bool:
    """The same total, relaxed flag and papers, each rank's score within TIE of the other's."""
    (total_a, hits_a, relaxed_a), (total_b, hits_b, relaxed_b) = a, b
    return (
        (total_a, relaxed_a) == (total_b, relaxed_b)
        and len(hits_a) == len(hits_b)
        and all(abs(x - y) < TIE for (_, x), (_, y) in zip(hits_a, hits_b, strict=True))
        and {i for i, _ in hits_a} == {i for i, _ in hits_b}
    )


if __name__ == "__main__":
    main()
