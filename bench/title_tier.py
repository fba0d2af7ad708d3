"""Queries of a few common words in keyword search: the title tier against ranking every match, on the
corpus `bench/search.py` built (run that first, same --n).

    python bench/search.py --n 1000000
    python bench/title_tier.py --n 1000000

Several words rank in one query (QueryBuilder.ranking), which scores every paper with all the words:
179k papers for "models single" at 3M. Where many papers are expected to have every word in the title
(TITLE_TIER_MARGIN), the ranking looks among those alone first (QueryBuilder.title_tier), keeps the
result where a score bound proves that no other paper can be among the hits, and counts the matches
meanwhile on a lookup thread (QueryBuilder.counted_apart). Both ways are timed on `bench/search.py`'s
keyword and prefix queries (the last word being typed, as the search box sends them) in the same
process, taking turns at going first, and their results (ids, scores, totals) are compared: they must
be the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.search import in_turns, make_queries, open_corpus, print_turn_table, turn_rows  # noqa: E402
from bench.synthetic import CorpusModel  # noqa: E402
from paperwire.search import keyword  # noqa: E402

WAYS = {"title tier first": keyword.TITLE_TIER_MARGIN, "every match ranked": float("inf")}


def main() -> None:
    engine, args = open_corpus(__doc__)
    queries = make_queries(CorpusModel(seed=1), args.queries)
    for text in queries["keyword"][:20]:  # warm tantivy's caches, as a running server would be
        engine.search(text, mode="keyword")
    tried, outcome = engine._title_first, []

    def watched(*args, **kwargs):  # whether the tier gave the hits
        hits, counting = tried(*args, **kwargs)
        outcome.append(hits is not None)
        return hits, counting

    engine._title_first = watched
    rows = []
    for kind in ("keyword", "prefix"):
        from_tier = 0

        def counted(way: str, _ms: float) -> None:
            nonlocal from_tier
            from_tier += way == "title tier first" and any(outcome)
            outcome.clear()

        timings, same = in_turns(
            lambda text: engine.search(text, mode="keyword"),
            queries[kind],
            {
                way: lambda margin=margin: setattr(keyword, "TITLE_TIER_MARGIN", margin)
                for way, margin in WAYS.items()
            },
            counted,
        )
        rows += turn_rows(kind, timings, "every match ranked", {"title tier first": from_tier}, same)
    keyword.TITLE_TIER_MARGIN = WAYS["title tier first"]
    print_turn_table(rows, "every match", "hits from the tier", len(queries["keyword"]))


if __name__ == "__main__":
    main()
