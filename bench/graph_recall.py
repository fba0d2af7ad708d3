"""Recall of the vector index's nearest-neighbour graph on real sentence embeddings, against its exact scan.

    python bench/graph_recall.py                 # ~29k texts; the first run embeds them (~20 min on 2 cores)
    python bench/graph_recall.py --texts 3000    # a quick look
    python bench/graph_recall.py --ef 64,128     # other search beams (default: EXPANSION_SEARCH and 256)

There is no public corpus of real abstracts on this machine big enough, so the texts are what is at hand:
English prose from the docstrings of the Python packages installed here (site-packages and
/usr/lib/python3*: the prose before the first section header, 20-200 words, mostly letters, deduplicated)
plus the title and abstract of every paper in tests/fixtures. They are shuffled (seeded); 300 are held
out as passage queries and 200 more give short queries (their first 3-6 words), and the rest go into a
VectorIndex (MiniLM vectors, cached in --workdir, so only the first run embeds). Rows are added in that
shuffled order; at each checkpoint the graph is extended to cover every row (``update_graph``, as the
index's writer does), and each query is searched through the graph (``search(q, k)``) and by the exact
scan (``search(q, k, exact=True)``, the baseline, same run, same int8 vectors): recall@k is the share of
the exact top k that the graph search returned. The same is measured on as many random unit vectors,
which have no neighbourhoods and are the graph's worst case (bench/hybrid.py uses those for latency).
"""

from __future__ import annotations

import argparse
import ast
import glob
import json
import os
import platform
import re
import statistics
import sys
import sysconfig
import tempfile
import time
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import cores_and_memory  # noqa: E402
from bench.search import percentile  # noqa: E402
from paperwire.search import graph  # noqa: E402
from paperwire.search.embeddings import get_embedder, paper_text  # noqa: E402
from paperwire.search.vectors import VectorIndex  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
ATOM = "{http://www.w3.org/2005/Atom}"
MIN_WORDS, MAX_WORDS = 20, 200
PASSAGE_QUERIES, SHORT_QUERIES = 300, 200
KS = (10, 100)
MODEL = "minilm"
# A docstring line that starts a section (numpy/Google/reST style) or a doctest: the prose ends there.
SECTION = re.compile(
    r"\s*(?:(?:parameters|params|args|arguments|keyword args|keyword arguments|other parameters|returns?|"
    r"yields?|raises|warns|examples?|notes?|see also|attributes|methods|references|todo|usage)\s*:{0,2}\s*$"
    r"|>>>|\.\. |:param|:type|:returns?:|:rtype|:raises)",
    re.IGNORECASE,
)


# -- texts ----------------------------------------------------------------------------------------------


class Passages:
    """Distinct passages of prose in the order found, with where each came from."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.sources: Counter[str] = Counter()
        self._seen: set[str] = set()

    def add(self, text: str, source: str) -> None:
        words = text.split()
        if len(words) < MIN_WORDS:
            return
        text = " ".join(words[:MAX_WORDS])
        if sum(c.isalpha() for c in text) < 0.6 * len(text):  # code, tables, formulas
            return
        key = re.sub(r"\W+", " ", text.lower()).strip()
        if key in self._seen:
            return
        self._seen.add(key)
        self.texts.append(text)
        self.sources[source] += 1


def fixture_papers() -> Iterator[tuple[str, str]]:
    """(title + abstract, fixture kind) of every paper in tests/fixtures."""
    with open(FIXTURES / "snapshot" / "arxiv-metadata-oai-snapshot.head200.jsonl", encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            yield paper_text(record["title"], record["abstract"]), "arXiv snapshot"
    for item in json.loads((FIXTURES / "hf" / "daily_papers.json").read_text(encoding="utf-8")):
        paper = item.get("paper", item)
        yield paper_text(paper.get("title", ""), paper.get("summary", "")), "HF daily papers"
    feeds = [p.read_text(encoding="utf-8") for p in sorted((FIXTURES / "arxiv-api").rglob("*.xml"))]
    feeds += [
        json.loads(p.read_text(encoding="utf-8")).get("body", "")
        for p in sorted((FIXTURES / "arxiv-api" / "recorded_json").glob("*.json"))
    ]
    for body in feeds:
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            continue
        for entry in root.iter(ATOM + "entry"):
            yield (
                paper_text(entry.findtext(ATOM + "title") or "", entry.findtext(ATOM + "summary") or ""),
                "arXiv API",
            )
    for path in sorted((FIXTURES / "arxiv-oai").glob("*.xml")):
        try:
            root = ET.fromstring(path.read_text(encoding="utf-8"))
        except ET.ParseError:
            continue
        for record in root.iter():
            if record.tag.split("}")[-1] != "record":
                continue
            fields: dict[str, str] = {}
            for el in record.iter():
                name = el.tag.split("}")[-1]
                name = "abstract" if name == "description" else name
                if el.text and name in ("title", "abstract"):
                    fields.setdefault(name, el.text)
            if fields.get("abstract"):
                yield paper_text(fields.get("title", ""), fields["abstract"]), "arXiv OAI"


def docstring_prose(path: str) -> Iterator[str]:
    """The prose of each docstring in a Python file: up to its first section header or doctest."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like in third-party code
            tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError, RecursionError):
        return
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        doc = ast.get_docstring(node, clean=True)
        if not doc or len(doc.split()) < 15:
            continue
        lines = []
        for line in doc.splitlines():
            if SECTION.match(line):
                break
            lines.append(line)
        yield " ".join(lines)


def python_roots() -> list[tuple[str, str]]:
    """Directories of Python sources to take docstrings from, with a label: this venv's site-packages,
    then the system's."""
    roots = [(sysconfig.get_paths()["purelib"], "site-packages")]
    roots += [(p, p) for p in sorted(glob.glob("/usr/lib/python3*") + glob.glob("/usr/local/lib/python3*"))]
    seen, out = set(), []
    for path, label in roots:
        real = os.path.realpath(path)
        if os.path.isdir(path) and real not in seen:
            seen.add(real)
            out.append((path, label))
    return out


def gather() -> Passages:
    passages = Passages()
    for text, source in fixture_papers():
        passages.add(text, f"papers ({source})")
    for root, label in python_roots():
        shown = time.monotonic()
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".py"):
                    for prose in docstring_prose(os.path.join(folder, name)):
                        passages.add(prose, f"docstrings ({label})")
            if time.monotonic() - shown > 1:
                shown = time.monotonic()
                print(f"  {len(passages.texts):,} passages", file=sys.stderr, end="\r")
        print(f"  {len(passages.texts):,} passages after {root}", file=sys.stderr)
    return passages


def split(texts: list[str], n: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """A seeded random ``n`` of ``texts``: (indexed, passage queries, short queries). The short queries
    are the first 3-6 words of held-out passages other than the passage queries."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))[:n]
    held = PASSAGE_QUERIES + SHORT_QUERIES
    if len(order) <= held:
        raise SystemExit(f"--texts {n}: need more than {held} texts (the held-out queries)")
    passages = [texts[i] for i in order[:PASSAGE_QUERIES]]
    short = [" ".join(texts[i].split()[: int(rng.integers(3, 7))]) for i in order[PASSAGE_QUERIES:held]]
    return [texts[i] for i in order[held:]], passages, short


# -- embedding, cached by text ---------------------------------------------------------------------------


class EmbeddingCache:
    """MiniLM vectors by text, in ``<dir>/texts.jsonl`` (one JSON string a line) and ``<dir>/vectors.f32``
    (the rows, in the same order), both append-only, so an interrupted run keeps what it embedded."""

    def __init__(self, path: Path, dim: int = 384):
        self.path, self.dim = path, dim
        path.mkdir(parents=True, exist_ok=True)
        texts_file, vectors_file = path / "texts.jsonl", path / "vectors.f32"
        texts = []
        if texts_file.exists():
            for line in texts_file.read_text(encoding="utf-8").splitlines():
                try:
                    texts.append(json.loads(line))
                except ValueError:  # torn by an interrupted write: the rows from here on are redone
                    break
        raw = (
            np.fromfile(vectors_file, dtype=np.float32) if vectors_file.exists() else np.empty(0, np.float32)
        )
        rows = min(len(texts), raw.size // dim)
        self.vectors = raw[: rows * dim].reshape(rows, dim)
        self.row = {t: i for i, t in enumerate(texts[:rows])}
        # Keep the two files in step (after a torn write), so appending lines them up again.
        with open(vectors_file, "ab") as f:
            f.truncate(rows * dim * 4)
        with open(texts_file, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(t) + "\n" for t in texts[:rows])

    def get(self, texts: list[str], chunk: int = 4096) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.row))
        if missing:
            print(f"embedding {len(missing):,} texts ({len(self.row):,} cached)", file=sys.stderr)
            embedder = get_embedder(MODEL)
            started = time.monotonic()
            new = []
            for i in range(0, len(missing), chunk):
                part = missing[i : i + chunk]
                vectors = np.ascontiguousarray(embedder.encode(part, batch_size=64), dtype=np.float32)
                with open(self.path / "vectors.f32", "ab") as f:
                    f.write(vectors.tobytes())
                with open(self.path / "texts.jsonl", "a", encoding="utf-8") as f:
                    f.writelines(json.dumps(t) + "\n" for t in part)
                base = len(self.vectors) + sum(len(v) for v in new)
                self.row.update((t, base + j) for j, t in enumerate(part))
                new.append(vectors)
                done = i + len(part)
                rate = done / (time.monotonic() - started)
                print(
                    f"  {done:,} of {len(missing):,} ({rate:.0f}/s, {(len(missing) - done) / rate:.0f}s left)",
                    file=sys.stderr,
                    end="\r",
                )
            print(file=sys.stderr)
            self.vectors = np.concatenate([self.vectors, *new])
        return self.vectors[[self.row[t] for t in texts]]


# -- measuring -------------------------------------------------------------------------------------------


def unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def measure(
    name: str, data: np.ndarray, queries: dict[str, np.ndarray], checkpoints: list[int], efs: list[int]
) -> list[dict]:
    """Recall and latency of graph search against the exact scan of one VectorIndex, grown to each of
    ``checkpoints`` rows (``data`` in order) with its graph extended to cover them all."""
    rows, builds = [], []
    ids = [f"{i:07d}" for i in range(len(data))]
    default_ef = graph.EXPANSION_SEARCH
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors"
        with VectorIndex(path, data.shape[1], graph_min_rows=0) as writer:
            done = 0
            for n in checkpoints:
                for lo in range(done, n, 10_000):
                    hi = min(n, lo + 10_000)
                    writer.add(ids[lo:hi], data[lo:hi])
                started = time.monotonic()
                writer.update_graph(force=True)
                build_s = time.monotonic() - started
                builds.append(f"{n - done:,} rows in {build_s:.1f}s")
                print(f"[{name}] {n:,} rows: graph extended by {builds[-1]}", file=sys.stderr)
                done = n
                for ef in efs:
                    graph.EXPANSION_SEARCH = ef  # a fresh reader's GraphReader sets its beam from this
                    try:
                        reader = VectorIndex(path)
                    finally:
                        graph.EXPANSION_SEARCH = default_ef
                    assert reader._graph is not None and reader._graph.rows == n, "graph must cover every row"
                    for label, qs in queries.items():
                        rows.append({"data": name, "queries": label, "n": n, "ef": ef, **one_run(reader, qs)})
                        r = rows[-1]
                        print(
                            f"[{name}] {label}, ef {ef}: recall@10 {r['recall10']:.3f}, "
                            f"recall@100 {r['recall100']:.3f}",
                            file=sys.stderr,
                        )
    print(f"# {name}: graph built, then extended at each checkpoint: {'; '.join(builds)}")
    return rows


def one_run(index: VectorIndex, queries: np.ndarray) -> dict:
    for q in queries[:20]:  # warm up: page cache, numkong, the graph's memory map
        index.search(q, 100)
        index.search(q, 100, exact=True)
    out: dict = {}
    for k in KS:
        times: dict[str, list[float]] = {"graph": [], "exact": []}
        recall = []
        for q in queries:
            # Alternated per query, so that a noisy neighbour on the machine hits both alike.
            started = time.perf_counter()
            found, _ = index.search(q, k)
            times["graph"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            truth, _ = index.search(q, k, exact=True)
            times["exact"].append((time.perf_counter() - started) * 1000)
            recall.append(len(set(found) & set(truth)) / len(truth))
        out[f"recall{k}"] = statistics.fmean(recall)
        for method, values in times.items():
            out[f"{method}{k}"] = (statistics.fmean(values), percentile(values, 0.95))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=30_000, help="texts used, at most (queries included)")
    parser.add_argument(
        "--checkpoints", default="10000,20000", help="index sizes measured on the way (and always: all)"
    )
    parser.add_argument(
        "--ef",
        default=",".join(map(str, sorted({graph.EXPANSION_SEARCH, 256}))),
        help=f"comma-separated search beams (default: graph.EXPANSION_SEARCH = {graph.EXPANSION_SEARCH}, and 256)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("/tmp/pwbench-recall"), help="where the vectors are cached"
    )
    args = parser.parse_args()
    started = time.monotonic()

    print("gathering texts", file=sys.stderr)
    passages = gather()
    indexed, passage_qs, short_qs = split(passages.texts, args.texts)
    cache = EmbeddingCache(args.workdir / MODEL)
    vectors = cache.get(indexed + passage_qs + short_qs)
    data = unit(vectors[: len(indexed)])
    real_queries = {
        "held-out passage": unit(vectors[len(indexed) : len(indexed) + len(passage_qs)]),
        "3-6 word prefix": unit(vectors[len(indexed) + len(passage_qs) :]),
    }
    n = len(data)
    checkpoints = sorted({c for c in map(int, args.checkpoints.split(",")) if 0 < c < n} | {n})
    efs = [int(e) for e in args.ef.split(",")]

    import usearch

    sources = ", ".join(f"{count:,} {source}" for source, count in passages.sources.most_common())
    print(
        f"# machine: {cores_and_memory()}; Python {platform.python_version()}, numpy {np.__version__}, "
        f"usearch {usearch.__version__}"
    )
    print(f"# command: python bench/graph_recall.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}, load average {os.getloadavg()[0]:.1f}")
    print(
        f"# texts found: {len(passages.texts):,} ({sources}); used: {len(indexed) + len(passage_qs) + len(short_qs):,}"
    )
    print(
        f"# indexed: {n:,} MiniLM vectors (int8 VectorIndex); queries: {len(passage_qs)} held-out passages, "
        f"{len(short_qs)} 3-6 word prefixes of other held-out passages; random: {n:,} random unit vectors "
        f"and {len(passage_qs) + len(short_qs)} random queries"
    )
    print(
        f"# graph: connectivity {graph.CONNECTIVITY}, expansion_add {graph.EXPANSION_ADD}, "
        f"extended at each checkpoint by update_graph(); ef = expansion_search"
    )

    rng = np.random.default_rng(1)
    random_data = unit(rng.standard_normal((n, data.shape[1]), dtype=np.float32))
    count = len(passage_qs) + len(short_qs)
    random_queries = {"random": unit(rng.standard_normal((count, data.shape[1]), dtype=np.float32))}
    rows = measure("MiniLM", data, real_queries, checkpoints, efs)
    rows += measure("random", random_data, random_queries, checkpoints, efs)

    print()
    print(
        "| vectors | queries | rows | ef | recall@10 | recall@100 | graph k=10 ms mean / p95 | "
        "exact k=10 ms mean / p95 | graph k=100 ms mean / p95 | exact k=100 ms mean / p95 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ms = " | ".join(
            f"{r[key][0]:.2f} / {r[key][1]:.2f}" for key in ("graph10", "exact10", "graph100", "exact100")
        )
        print(
            f"| {r['data']} | {r['queries']} | {r['n']:,} | {r['ef']} | {r['recall10']:.3f} | "
            f"{r['recall100']:.3f} | {ms} |"
        )
    print(f"\n# took {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
