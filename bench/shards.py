"""Would keyword-index shards searched side by side make long queries fast? On the corpus `bench/search.py`
built (run that first, same --n):

    python bench/search.py --n 3000000
    python bench/shards.py --n 3000000

paperwire keeps one keyword index per node. tantivy-py runs one search on one thread, and a search
cannot be split inside it, only across separate indexes, so a node could split its papers across
shards (by a hash of the id) and search them on a thread each. This bench builds that split once under
the corpus's folder (committed once, so each shard has as few segments as tantivy's writer leaves: 3 at
3M, as the whole index has; 1 at 1M, as it has too), then times the keyword side of
hybrid search (the relaxing walk of `SearchEngine._plain`, a pool of POOL results) on the whole index
against the same on the shards, one thread each, taking turns per query; each also with the query's
MiniLM embedding running at the same time on a thread of its own, as in hybrid search (the model's
thread; it takes one core of two). Only the keyword side and the embedding are timed: neither the
graph lookup nor the page, which shards would not change.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hybrid import described_queries  # noqa: E402
from bench.search import corpus_options, make_queries, percentile, read_into_page_cache  # noqa: E402
from bench.synthetic import CorpusModel  # noqa: E402
from paperwire.search.embeddings import get_embedder, serving_threads  # noqa: E402
from paperwire.search.keyword import Filters, KeywordIndex  # noqa: E402
from paperwire.search.query import parse_query  # noqa: E402
from paperwire.search.service import POOL, SearchEngine  # noqa: E402
from paperwire.store import Store, StoredPaper  # noqa: E402


class ShardOfStore:
    """The store's changes as one shard's index reads them: its papers (a hash of the id picks the
    shard), and the batch's last change however it falls, marked deleted where it is another shard's
    (catch_up takes its watermark from it, and deleting a paper the shard lacks does nothing)."""

    def __init__(self, store: Store, shard: int, shards: int):
        self.store, self.shard, self.shards = store, shard, shards

    def changes_since(self, seq: int, limit: int) -> list[StoredPaper]:
        while changes := self.store.changes_since(seq, limit=limit):
            mine = [p for p in changes if zlib.crc32(p.id.encode()) % self.shards == self.shard]
            if mine:
                if mine[-1] is not changes[-1]:
                    mine.append(dataclasses.replace(changes[-1], deleted=True))
                return mine
            seq = changes[-1].change_seq
        return []


def keyword_side(engine: SearchEngine, text: str) -> None:
    """What hybrid search asks of the keyword index for ``text``: its first POOL results, relaxed."""
    parsed = parse_query(text, as_you_type=True)
    searcher = engine.keyword.searcher()
    engine.builder.searcher = searcher
    engine._plain(searcher, parsed.root, engine.builder.filters(Filters()), "relevance", 0, POOL)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    corpus_options(parser)
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("PAPERWIRE_EMBED_THREADS", str(serving_threads(1)))
    work = args.workdir / str(args.n)
    if not (work / "index" / "keyword").exists():
        raise SystemExit(f"no corpus in {work}: run python bench/search.py --n {args.n} first")
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; N = {args.n:,}"
    )
    store = Store.open(f"sqlite:///{work / 'paperwire.db'}")
    shards = []
    for s in range(args.shards):
        index = KeywordIndex(work / f"shard-{s}-of-{args.shards}")
        if not index.read_state():
            started = time.monotonic()
            # One commit at the end: the fewest segments, as few as the whole index has (see above).
            index.catch_up(ShardOfStore(store, s, args.shards), commit_every=10**12)
            print(f"# shard {s} built in {time.monotonic() - started:.0f}s", file=sys.stderr)
        shards.append(index)
    whole = SearchEngine(store, KeywordIndex(work / "index" / "keyword"))
    parts = [SearchEngine(store, index) for index in shards]
    read_into_page_cache(work / "index" / "keyword", *[index.path for index in shards])
    print(
        f"# segments: whole index {whole.keyword.searcher().num_segments}, shards "
        f"{[p.keyword.searcher().num_segments for p in parts]} of "
        f"{[p.keyword.searcher().num_docs for p in parts]} papers"
    )
    model = get_embedder("minilm")
    model.encode_query("warm up")
    threads, model_thread = ThreadPoolExecutor(args.shards - 1), ThreadPoolExecutor(1)

    def search(text: str, sharded: bool, embedding: bool) -> float:
        started = time.perf_counter()
        embedded = model_thread.submit(model.encode_query, text) if embedding else None
        if sharded:  # the others on threads, the first on this one
            others = [threads.submit(keyword_side, p, text) for p in parts[1:]]
            keyword_side(parts[0], text)
            for f in others:
                f.result()
        else:
            keyword_side(whole, text)
        if embedded is not None:
            embedded.result()
        return (time.perf_counter() - started) * 1000

    model_queries = CorpusModel(seed=1)
    queries = make_queries(model_queries, args.queries)
    kinds = {
        "keyword": queries["keyword"],
        "typo": queries["typo"],
        "typing": queries["typing"],
        "described": described_queries(model_queries, args.queries),
    }
    ways = [(sharded, embedding) for embedding in (False, True) for sharded in (False, True)]
    print()
    print(
        "| query kind | keyword index | MiniLM embedding beside it | p50 ms | p95 ms | p95 against one index |"
    )
    print("|---|---|---|---:|---:|---:|")
    for kind, texts in kinds.items():
        for text in texts[:10]:  # warm both sides' caches
            search(text, False, False), search(text, True, False)
        timings: dict[tuple[bool, bool], list[float]] = {way: [] for way in ways}
        for i, text in enumerate(texts):
            for way in ways[:: 1 if i % 2 else -1]:  # taking turns at going first
                timings[way].append(search(text, *way))
        for sharded, embedding in ways:
            t, base = timings[(sharded, embedding)], timings[(False, embedding)]
            print(
                f"| {kind} | {f'{args.shards} shards' if sharded else 'one'} | {'yes' if embedding else 'no'} | "
                f"{statistics.median(t):.1f} | {percentile(t, 0.95):.1f} | "
                f"{percentile(t, 0.95) / percentile(base, 0.95):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
