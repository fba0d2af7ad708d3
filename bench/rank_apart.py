"""Several words where one matches several ways, in keyword search: the ranking as disjoint queries, one
per way, against one query, on the corpus `bench/search.py` built (run that first, same --n).

    python bench/search.py --n 1000000
    python bench/rank_apart.py --n 1000000

A word may match by its stem, as an author's name, as a typo, by a completion (being typed), or written
apart ("space time" for "spacetime"). In the ranking query such a word is a union inside the
intersection of the words, and tantivy's buffered union reads 4,096 documents ahead of each seek, from
every way: about what the union costs over the whole index. Ranking.apart splits the word
with the most ways into one query per way, each without the papers of the ways before it
(service.RANK_APART), or the two with the most ways into one query per pair of their ways
(keyword.SPLIT_TOKENS). All three are timed on `bench/search.py`'s queries and `bench/hybrid.py`'s described
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
from paperwire.search import keyword, service  # noqa: E402
from paperwire.search.keyword import Ranking  # noqa: E402

# Each way: whether the ranking runs apart, and how many tokens it may split (keyword.SPLIT_TOKENS).
WAYS = {"apart": (True, keyword.SPLIT_TOKENS), "apart, one token": (True, 1), "one query": (False, 1)}


def switch(apart: bool, tokens: int) -> None:
    service.RANK_APART = apart
    keyword.SPLIT_TOKENS = tokens


def main() -> None:
    engine, args = open_corpus(__doc__)
    queries = make_queries(CorpusModel(seed=1), args.queries)
    queries["described"] = described_queries(CorpusModel(seed=1), args.queries)
    for text in queries["keyword"][:20]:  # warm tantivy's caches, as a running server would be
        engine.search(text, mode="keyword")
    split, split_ways = [], Ranking.apart

    def watched(self: Ranking) -> list | None:  # whether the ranking was split, and by two tokens
        parts = split_ways(self)
        most_ways = max((len(token.ways) for _, token in self.splittable), default=0)
        split.append((parts is not None, parts is not None and len(parts) > most_ways))
        return parts

    Ranking.apart = watched
    rows = []
    for kind in ("keyword", "typo", "prefix", "typing", "described"):
        apart = by_two = 0

        def counted(way: str, _ms: float) -> None:
            nonlocal apart, by_two
            apart += way == "apart" and any(one for one, _ in split)
            by_two += way == "apart" and any(two for _, two in split)
            split.clear()

        timings, same = in_turns(
            lambda text: engine.search(text, mode="keyword"),
            queries[kind],
            {way: lambda on=on: switch(*on) for way, on in WAYS.items()},
            counted,
        )
        rows += turn_rows(kind, timings, "one query", {"apart": f"{apart} ({by_two})"}, same)
    switch(*WAYS["apart"])
    print_turn_table(rows, "one query", "split (by two tokens)", len(queries["keyword"]))


if __name__ == "__main__":
    main()
