"""A word being typed with two or three letters, in keyword search: matched through the words' first
letters indexed as terms (schema 7), against its completions asked as a set of terms, on the corpus
`bench/search.py` built (run that first, same --n).

    python bench/search.py --n 1000000
    python bench/prefix_postings.py --n 1000000

The search box searches at each pause in typing, so it asks for states like "recent in". Such a prefix
has dozens of completions ("in": 63 at 3M, 5.4M postings), which tantivy builds into a bitset over the
whole index in each query, for the ranking and again for the count. With the first letters indexed
(title_prefix, text_prefix), the word being typed is one posting list (keyword.PREFIX_POSTINGS). Timed on
`bench/search.py`'s keyword pairs with two and with three letters of the second word, and on its prefix
kind (three letters or more: only the three-letter ones change), in the same process, taking turns at
going first. The results are compared but need not be the same: the first letters match every word they
begin, where the completions are the PREFIX_COMPLETIONS commonest, so a paper with only a rarer one is
found by the first and not the second. Last, what the first letters add to making a paper's document
for the index (KeywordIndex._document, in Python, beside tantivy's indexing thread).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.search import in_turns, make_queries, open_corpus, print_turn_table, turn_rows  # noqa: E402
from bench.synthetic import CorpusModel  # noqa: E402
from paperwire.search import keyword  # noqa: E402

WAYS = {"first letters": True, "completions": False}


def main() -> None:
    engine, args = open_corpus(__doc__)
    queries = make_queries(CorpusModel(seed=1), args.queries)
    queries["typing, 3 letters"] = [f"{a} {b[:3]}" for a, b in map(str.split, queries["keyword"])]
    for text in queries["keyword"][:20]:  # warm tantivy's caches, as a running server would be
        engine.search(text, mode="keyword")
    rows = []
    for kind in ("typing", "typing, 3 letters", "prefix"):
        short = sum(len(q.split()[-1]) in keyword.INDEXED_PREFIXES for q in queries[kind])
        timings, same = in_turns(
            lambda text: engine.search(text, mode="keyword"),
            queries[kind],
            {way: lambda on=on: setattr(keyword, "PREFIX_POSTINGS", on) for way, on in WAYS.items()},
        )
        rows += turn_rows(kind, timings, "completions", {"first letters": short}, same)
    keyword.PREFIX_POSTINGS = True
    print_turn_table(rows, "completions", "last word of 2-3 letters", len(queries["keyword"]))
    print_document_cost(engine)


def print_document_cost(engine, n: int = 5000) -> None:  # noqa: ANN001
    """Microseconds to make a paper's document, with the first letters and without, in turns."""
    papers = engine.store.changes_since(0, limit=n)
    made = keyword.typed_prefixes
    spent = {"with": 0.0, "without": 0.0}
    for turn in range(6):
        way = "with" if turn % 2 == 0 else "without"
        keyword.typed_prefixes = made if way == "with" else (lambda _words: "")
        t = time.perf_counter()
        for paper in papers:
            keyword.KeywordIndex._document(paper)
        spent[way] += time.perf_counter() - t
    keyword.typed_prefixes = made
    per = {way: s / (3 * len(papers)) * 1e6 for way, s in spent.items()}
    print(
        f"\nA paper's document: {per['with']:.0f} us with the first letters, {per['without']:.0f} without "
        f"({per['with'] / per['without']:.2f}x), over {len(papers):,} papers"
    )


if __name__ == "__main__":
    main()
