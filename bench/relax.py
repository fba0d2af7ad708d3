"""Long queries in keyword search: relaxing by one walk of the words' union against stepping down a word at
a time, on the corpus `bench/search.py` built (run that first, same --n).

    python bench/search.py --n 1000000
    python bench/relax.py --n 1000000

A query of 6-9 common words (bench/hybrid.py's "described" kind) that no page of papers matches whole is
relaxed: paperwire looks for the most words a page of papers matches. Stepping down ("at least n-1 of n",
then n-2, ...) walks the union of the words' postings once per level; `_plain` now reads the level from
one walk of the union (RELAX_JUMP_FROM), a cheap one that only counts the words each paper matches
(QueryBuilder.words_matched). Both ways are timed on the same queries in the same process,
taking turns at going first, and their results (ids, totals, the relaxed flag) are compared: they must
be the same.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hybrid import described_queries  # noqa: E402
from bench.search import corpus_options, percentile, read_into_page_cache  # noqa: E402
from bench.synthetic import CorpusModel  # noqa: E402
from paperwire.search import service  # noqa: E402
from paperwire.search.keyword import KeywordIndex  # noqa: E402
from paperwire.search.service import SearchEngine  # noqa: E402
from paperwire.store import Store  # noqa: E402

WAYS = {"one walk of the union": service.RELAX_JUMP_FROM, "a word at a time": 10**9}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    corpus_options(parser)
    args = parser.parse_args()
    work = args.workdir / str(args.n)
    if not (work / "index" / "keyword").exists():
        raise SystemExit(f"no corpus in {work}: run python bench/search.py --n {args.n} first")
    store = Store.open(f"sqlite:///{work / 'paperwire.db'}")
    engine = SearchEngine(store, KeywordIndex(work / "index" / "keyword"))
    engine.result_cache_size = 0  # time the search, not the result cache
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; N = {args.n:,}"
    )
    read_into_page_cache(work / "paperwire.db", work / "index" / "keyword")
    queries = described_queries(CorpusModel(seed=1), args.queries)
    for text in queries[:20]:  # warm tantivy's caches, as a running server would be
        engine.search(text, mode="keyword")
    timings: dict[str, list[float]] = {way: [] for way in WAYS}
    same = 0
    for i, text in enumerate(queries):
        found = {}
        for way in list(WAYS)[:: 1 if i % 2 else -1]:
            service.RELAX_JUMP_FROM = WAYS[way]
            started = time.perf_counter()
            result = engine.search(text, mode="keyword")
            timings[way].append((time.perf_counter() - started) * 1000)
            found[way] = (result.total, [h.id for h in result.hits], result.relaxed)
        same += len(set(map(repr, found.values()))) == 1
    service.RELAX_JUMP_FROM = WAYS["one walk of the union"]
    base = percentile(timings["a word at a time"], 0.95)
    print()
    print("| relaxing | p50 ms | p95 ms | p95 against a word at a time |")
    print("|---|---:|---:|---:|")
    for way, t in timings.items():
        p95 = percentile(t, 0.95)
        print(f"| {way} | {statistics.median(t):.1f} | {p95:.1f} | {p95 / base:.2f} |")
    print()
    print(f"Same results (ids, total, relaxed) for {same} of {len(queries)} queries.")


if __name__ == "__main__":
    main()
