"""Search speed at arXiv scale: build a synthetic corpus of N papers, index it, time queries.

    python bench/search.py --n 1000000
    python bench/search.py --n 3000000 --workdir /data/pwbench

The corpus follows the real records' word distribution (bench/synthetic.py: real words with their
frequencies plus a Zipfian tail of made-up words, real title/abstract lengths). For each query kind it
prints p50/p95 of the full `SearchEngine.search()` (parse, build, tantivy, relaxation, fetching the hits
from the store, highlighting) and, as the baseline in the same run, of raw tantivy executing the very
same query objects with no Python around them: the ratio is paperwire's overhead. The store and the
index are read into the page cache before the queries (``--cold`` leaves the cache as it is).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic import CorpusModel  # noqa: E402
from paperwire.ingest.snapshot import paper_from_snapshot  # noqa: E402
from paperwire.search.keyword import KeywordIndex  # noqa: E402
from paperwire.search.service import SearchEngine, SearchResult  # noqa: E402
from paperwire.store import Store  # noqa: E402


def build_store(db: Path, n: int) -> Store:
    store = Store.open(f"sqlite:///{db}")
    have = store.count()
    if have >= n:
        return store
    model = CorpusModel(seed=1)
    started = time.monotonic()
    batch = []
    for i in range(have, n):
        batch.append(paper_from_snapshot(model.record(i)))
        if len(batch) == 5000:
            store.apply(batch)
            batch = []
            if i % 100_000 < 5000:
                rate = (i - have) / (time.monotonic() - started)
                print(f"# store: {i:,}/{n:,} papers ({rate:,.0f}/s)", file=sys.stderr)
    if batch:
        store.apply(batch)
    return store


def read_into_page_cache(*paths: Path) -> tuple[int, float]:
    """Read every file under ``paths`` once, so that the timings are of a server whose RAM holds its
    store and index (6 GB at 3M) and not of whatever else last evicted them: a cold paper read from
    the store costs ~2 ms against ~0.2 ms warm. Returns (bytes, seconds)."""
    started, total = time.monotonic(), 0
    for path in paths:
        for f in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
            with open(f, "rb") as stream:
                while chunk := stream.read(1 << 24):
                    total += len(chunk)
    return total, time.monotonic() - started


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def make_queries(model: CorpusModel, count: int, seed: int = 7) -> dict[str, list[str]]:
    """Queries from the corpus vocabulary: words a researcher would type (not the commonest ones)."""
    rng = random.Random(seed)
    vocab = [w.strip(".,;:()[]$").lower() for w in model.population[50:4000]]
    vocab = [w for w in vocab if w.isalpha() and len(w) >= 5]

    def typo(word: str) -> str:
        i = rng.randrange(1, len(word) - 1)
        return (
            word[:i] + word[i + 1] + word[i] + word[i + 2 :]
            if rng.random() < 0.5
            else word[:i] + word[i + 1 :]
        )

    kinds: dict[str, list[str]] = {"keyword": [], "typo": [], "prefix": [], "phrase/field": []}
    for _ in range(count):
        a, b = rng.sample(vocab, 2)
        kinds["keyword"].append(f"{a} {b}")
        kinds["typo"].append(f"{typo(a)} {typo(b)}" if len(b) >= 5 else f"{typo(a)} {b}")
        kinds["prefix"].append(f"{a} {b[: max(3, len(b) // 2)]}")
        kinds["phrase/field"].append(rng.choice([f'"{a} {b}"', f"ti:{a} AND abs:{b}", f"{a} ANDNOT {b}"]))
    # The search box as it searches while the last word is typed (the page searches at each pause): two
    # letters of it. Made from the keyword pairs, so that the other kinds stay the queries of earlier runs.
    kinds["typing"] = [f"{pair.split()[0]} {pair.split()[1][:2]}" for pair in kinds["keyword"]]
    # Wildcards from their own generator, so that the other kinds stay the queries of earlier runs. The
    # shortest heads are the costliest: "co*" asks for every word beginning so.
    other = random.Random(seed + 1)
    kinds["wildcard"] = []
    for _ in range(count):
        a, b = other.sample(vocab, 2)
        kinds["wildcard"].append(
            other.choice([f"{a} {b[:4]}*", f"ti:{a[:4]}* AND {b}", f"{a[:2]}* {b}", f"{a[:3]}?{a[4:]}"])
        )
    return kinds


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def time_queries(engine: SearchEngine, queries: list[str]) -> tuple[list[float], list[float]]:
    """Each query through paperwire and through raw tantivy, taking turns at going first: the first
    search of a query pays for touching its postings (page faults, tantivy's caches), which at 3M
    raised the p95 of whichever side went first by half (docs/benchmarks.md)."""
    ours, raw = [], []
    searcher = engine.keyword.searcher()

    def time_ours(text: str) -> None:
        t = time.perf_counter()
        for hit in engine.search(text, mode="keyword").hits:
            # What a results page shows; hits make it only when read.
            hit.title_html, hit.abstract_html, hit.matched  # noqa: B018
        ours.append((time.perf_counter() - t) * 1000)

    def time_raw(text: str) -> None:
        q = engine.compile(text)
        t = time.perf_counter()
        searcher.search(q, limit=10, count=True)
        raw.append((time.perf_counter() - t) * 1000)

    for i, text in enumerate(queries):
        for run in (time_ours, time_raw) if i % 2 == 0 else (time_raw, time_ours):
            run(text)
    return ours, raw


def open_corpus(description: str) -> tuple[SearchEngine, argparse.Namespace]:
    """For a bench on the corpus bench/search.py built: the command line (corpus_options) and the keyword
    engine over that corpus, with no result cache (the searches are timed, not the cache), its store and
    index read into the page cache; prints the machine line first."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    corpus_options(parser)
    args = parser.parse_args()
    work = args.workdir / str(args.n)
    if not (work / "index" / "keyword").exists():
        raise SystemExit(f"no corpus in {work}: run python bench/search.py --n {args.n} first")
    store = Store.open(f"sqlite:///{work / 'paperwire.db'}")
    engine = SearchEngine(store, KeywordIndex(work / "index" / "keyword"))
    engine.result_cache_size = 0
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; N = {args.n:,}"
    )
    read_into_page_cache(work / "paperwire.db", work / "index" / "keyword")
    return engine, args


def in_turns(
    search: Callable[[str], SearchResult],
    queries: list[str],
    ways: dict[str, Callable[[], None]],
    after: Callable[[str, float], None] | None = None,
) -> tuple[dict[str, list[float]], int]:
    """An A/B of ``ways`` (name -> what switches it on) in one process: each query searched once each
    way, the ways taking turns at going first, so that a noisy host slows them alike; ``after(way, ms)``
    follows each search. Returns each way's timings (ms, with what a results page reads of its hits)
    and how many queries gave the same results every way (totals, ids, scores and relaxed flags)."""
    timings: dict[str, list[float]] = {way: [] for way in ways}
    same = 0
    for i, text in enumerate(queries):
        found = set()
        for way in list(ways)[:: 1 if i % 2 else -1]:
            ways[way]()
            started = time.perf_counter()
            result = search(text)
            for hit in result.hits:
                hit.title_html, hit.abstract_html, hit.matched  # noqa: B018
            timings[way].append((time.perf_counter() - started) * 1000)
            if after is not None:
                after(way, timings[way][-1])
            found.add(repr((result.total, [(h.id, round(h.score, 4)) for h in result.hits], result.relaxed)))
        same += len(found) == 1
    return timings, same


def turn_rows(
    kind: str, timings: dict[str, list[float]], baseline: str, counted: dict[str, int], same: int
) -> list[str]:
    """in_turns' timings as table rows: kind, way, p50, p95, mean, p95 against the ``baseline`` way's,
    what the bench counted for the way ("-" where nothing), and the queries with the same results."""
    base = percentile(timings[baseline], 0.95)
    rows = []
    for way, t in timings.items():
        p95 = percentile(t, 0.95)
        rows.append(
            f"| {kind} | {way} | {statistics.median(t):.1f} | {p95:.1f} | {statistics.mean(t):.1f} | "
            f"{p95 / base:.2f} | {counted.get(way, '-')} | {same} |"
        )
    return rows


def print_turn_table(rows: list[str], against: str, counted: str, n: int) -> None:
    """turn_rows' rows under their header: ``against`` names the baseline way, ``counted`` what the bench
    counted, ``n`` the queries of a kind."""
    print()
    print(
        f"| kind | ranking | p50 ms | p95 ms | mean ms | p95 against {against} | {counted} (of {n}) | "
        f"same results (of {n}) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


def corpus_options(parser: argparse.ArgumentParser) -> None:
    """The options naming a synthetic corpus and its queries (shared with bench/hybrid.py)."""
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="queries per kind")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pwbench-search"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    corpus_options(parser)
    parser.add_argument("--rebuild-index", action="store_true")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="leave the page cache as it is (default: read store and index first)",
    )
    args = parser.parse_args()
    work = args.workdir / str(args.n)
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; N = {args.n:,}"
    )
    started = time.monotonic()
    store = build_store(work / "paperwire.db", args.n)
    print(f"# store ready in {time.monotonic() - started:.0f}s ({store.count():,} papers)", file=sys.stderr)
    index_dir = work / "index" / "keyword"  # where `paperwire serve` looks (bench/web.py serves this corpus)
    if args.rebuild_index and index_dir.exists():
        shutil.rmtree(index_dir)
    index = KeywordIndex(index_dir)
    started = time.monotonic()
    indexed = index.catch_up(store)
    build_seconds = time.monotonic() - started
    engine = SearchEngine(store, index)
    engine.result_cache_size = 0  # time the search, not the result cache
    model = CorpusModel(seed=1)
    queries = make_queries(model, args.queries)
    if not args.cold:
        size, seconds = read_into_page_cache(work / "paperwire.db", index_dir)
        print(
            f"# read store and index into the page cache: {size / 1e9:.2f} GB in {seconds:.0f}s",
            file=sys.stderr,
        )
    for text in queries["keyword"][:20]:  # and warm tantivy's own caches, as a running server would be
        engine.search(text, mode="keyword")
    print()
    print(
        f"Index build: {indexed:,} papers in {build_seconds:,.0f}s"
        + (" (already built)" if not indexed else "")
    )
    print(
        f"Index size on disk: {dir_size(index_dir) / 1e9:.2f} GB in {index.searcher().num_segments} segments; "
        f"store: {(work / 'paperwire.db').stat().st_size / 1e9:.2f} GB"
    )
    print()
    print(
        "| query kind | paperwire p50 ms | paperwire p95 ms | raw tantivy p50 ms | raw tantivy p95 ms | overhead (p95 ratio) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for kind, texts in queries.items():
        ours, raw = time_queries(engine, texts)
        print(
            f"| {kind} | {statistics.median(ours):.1f} | {percentile(ours, 0.95):.1f} | "
            f"{statistics.median(raw):.1f} | {percentile(raw, 0.95):.1f} | {percentile(ours, 0.95) / percentile(raw, 0.95):.2f} |"
        )
    print()
    memory = psutil.Process().memory_info()
    print(
        f"Process RSS after the queries: {memory.rss / 1e6:,.0f} MB, of it mapped files {memory.shared / 1e6:,.0f} MB "
        f"(the index's pages read: page cache, reclaimable) and private {(memory.rss - memory.shared) / 1e6:,.0f} MB"
    )


if __name__ == "__main__":
    main()
