"""Several words where one matches several ways, in keyword search: the ranking as disjoint queries, one
per way, against one query, on the corpus `bench/search.py` built (run that first, same --n).

    python bench/search.py --n 1000000
    python bench/rank_apart.py --n 1000000

A word may match by its stem, as an author's name, as a typo, by a completion (being typed), or written
apart ("space time" for "spacetime"). In the ranking query such a word is a union inside the
intersection of the words, and tantivy's buffered union reads 4,096 documents ahead of each seek, from
every way: about what the union costs over the whole index. Ranking.apart splits the word
with the most ways into one query per way, each without the papers of the ways before it
(service.RANK_APART). Both are timed on `bench/search.py`'s queries and `bench/hybrid.py`'s described
ones in the same process, taking turns at going first, and their results (ids, scores, totals) are
compared: they must be the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hybrid import described_queries  # noqa: E402
from bench.search import in_turns, make_queries, open_corpus, print_turn_table, turn_rows  # noqa: E402
from bench.synthetic import CorpusModel  # noqa: E402
from paperwire.search import service  # noqa: E402
from paperwire.search.keyword import Ranking  # noqa: E402

WAYS = {"apart": True, "one query": False}


def main() -> None:
    engine, args = open_corpus(__doc__)
    queries = make_queries(CorpusModel(seed=1), args.queries)
    queries["described"] = described_queries(CorpusModel(seed=1), args.queries)
    for text in queries["keyword"][:20]:  # warm tantivy's caches, as a running server would be
        engine.search(text, mode="keyword")
    split, split_ways = [], Ranking.apart

    def watched(self: Ranking) -> list | None:  # whether the ranking was split
        parts = split_ways(self)
        split.append(parts is not None)
        return parts

    Ranking.apart = watched
    rows = []
    for kind in ("keyword", "typo", "prefix", "described"):
        apart = 0

        def counted(way: str, _ms: float) -> None:
            nonlocal apart
            apart += way == "apart" and any(split)
            split.clear()

        timings, same = in_turns(
            lambda text: engine.search(text, mode="keyword"),
            queries[kind],
            {way: lambda on=on: setattr(service, "RANK_APART", on) for way, on in WAYS.items()},
            counted,
        )
        rows += turn_rows(kind, timings, "one query", {"apart": apart}, same)
    service.RANK_APART = True
    print_turn_table(rows, "one query", "split", len(queries["keyword"]))


if __name__ == "__main__":
    main()
