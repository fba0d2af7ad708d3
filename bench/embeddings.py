"""Embedding models and the vector index: speed, memory and quality, printed as tables.

    python bench/embeddings.py                       # every model, 1,024 papers each, 100k-vector recall
    python bench/embeddings.py --models wordllama --n 20000
    python bench/embeddings.py --scale 3000000       # also: a reader of a 3M-vector index (RSS, latency)
    python bench/embeddings.py --models minilm,mpnet --precisions float32,bfloat16   # torch models, each way

Per model (each in its own process, so load time and RSS are its own): load time, papers/s encoding the
bundled 341-paper sample (repeated to ``--n``) with batch 64, single-query latency p50/p95, RSS, and
nDCG@10 of pure vector search over the sample for bench/judgments.json (66 judged queries).
Then brute-force recall@10 of the int8 index against exact float32 search on ``--vectors`` vectors, and
HNSW (usearch) for comparison when it is installed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.machine import cores_and_memory  # noqa: E402
from bench.quality import load_judgments, ndcg_at_k  # noqa: E402
from paperwire.search.embeddings import MODELS, get_embedder  # noqa: E402
from paperwire.search.vectors import VectorIndex  # noqa: E402

SAMPLE = ROOT / "paperwire" / "sample" / "papers.jsonl.gz"


def runs_in_torch(name: str) -> bool:
    """Whether PAPERWIRE_EMBED_PRECISION applies to the model called ``name``."""
    model = MODELS.get(name)
    return bool(getattr(model, "runs_in_torch", False))


def rss_mb(pid: int | None = None) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def machine() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"{cores_and_memory()}, GPU: {gpu}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}"
    )


def sample_papers() -> list[dict]:
    with gzip.open(SAMPLE) as f:
        return [orjson.loads(line) for line in f]


# -- one model, in its own process ---------------------------------------------------------------------


def worker(name: str, n: int, device: str | None) -> dict:
    papers = sample_papers()
    pairs = [(p["title"], p.get("abstract", "")) for p in papers]
    started = time.perf_counter()
    embedder = get_embedder(name, device=device)
    load_s = time.perf_counter() - started

    embedder.encode_papers(pairs[:8])  # warm-up
    corpus = (pairs * (n // len(pairs) + 1))[:n]
    started = time.perf_counter()
    embedder.encode_papers(corpus, batch_size=64)  # as `paperwire index` does: title + abstract, title
    rate = n / (time.perf_counter() - started)

    judgments = load_judgments()
    queries = [j["query"] for j in judgments]
    latencies = []
    for i in range(max(100, len(queries))):
        started = time.perf_counter()
        embedder.encode_query(queries[i % len(queries)])
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()

    doc_vecs = embedder.encode_papers(pairs)
    ids = [p["id"] for p in papers]
    ndcg = []
    for j in judgments:
        scores = doc_vecs @ embedder.encode_query(j["query"])
        ranked = [ids[i] for i in np.argsort(-scores, kind="stable")[:10]]
        ndcg.append(ndcg_at_k(ranked, j["relevant"]))
    return {
        "model": f"{name} ({embedder.precision}, queries {embedder.query_precision})"
        if embedder.precision
        else name,
        "dim": embedder.dim,
        "load_s": load_s,
        "papers_per_s": rate,
        "p50_ms": latencies[len(latencies) // 2],
        "p95_ms": latencies[int(len(latencies) * 0.95)],
        "rss_mb": rss_mb(),
        "ndcg10": statistics.fmean(ndcg),
    }


def run_worker(name: str, n: int, device: str | None, precision: str | None = None) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", name, "--n", str(n)] + (
        ["--device", device] if device else []
    )
    env = dict(os.environ, **({"PAPERWIRE_EMBED_PRECISION": precision} if precision else {}))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"{name}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- vector search ---------------------------------------------------------------------------------------


def clustered(n: int, dim: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    """Topic-like data: each vector near one of ``centers`` (nearest neighbours are much closer than
    random pairs, as with real paper embeddings)."""
    v = centers[rng.integers(0, len(centers), n)] + 0.6 * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def isotropic(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """The hard case for quantisation: every pair nearly orthogonal, top scores close together."""
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def exact_top(matrix: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    scores = matrix @ query
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def vector_bench(n: int, dim: int, queries: int) -> list[dict]:
    rng = np.random.default_rng(0)
    centers = isotropic(2000, dim, rng)
    rows = []
    for label, make in (
        ("clustered", lambda m: clustered(m, dim, rng, centers)),
        ("isotropic", lambda m: isotropic(m, dim, rng)),
    ):
        data, qs = make(n), make(queries)
        names = [f"{i:07d}" for i in range(n)]
        with tempfile.TemporaryDirectory() as tmp:
            index = VectorIndex(Path(tmp) / "v", dim)
            started = time.perf_counter()
            for s in range(0, n, 10_000):
                index.add(names[s : s + 10_000], data[s : s + 10_000])
            add_rate = n / (time.perf_counter() - started)
            truth = [exact_top(data, q, 10) for q in qs]
            f32_ms = _time_ms(lambda q, data=data: exact_top(data, q, 10), qs)
            found = [index.search(q, 10)[0] for q in qs]
            i8_ms = _time_ms(lambda q, index=index: index.search(q, 10), qs)
            recall = statistics.fmean(
                len({int(x) for x in f} & set(t.tolist())) / 10 for f, t in zip(found, truth, strict=True)
            )
            rows.append(
                {
                    "data": label,
                    "method": "int8 brute force (VectorIndex)",
                    "recall10": recall,
                    "ms": i8_ms,
                    "build": f"{add_rate:,.0f} vectors/s added",
                }
            )
            rows.append(
                {"data": label, "method": "float32 brute force (numpy)", "recall10": 1.0, "ms": f32_ms}
            )
            hnsw = _hnsw(data, qs, truth)
            if hnsw:
                rows.append({"data": label, **hnsw})
    return rows


def _time_ms(fn, queries: np.ndarray) -> float:
    times = []
    for q in queries:
        started = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _hnsw(data: np.ndarray, qs: np.ndarray, truth: list[np.ndarray]) -> dict | None:
    try:
        from usearch.index import Index
    except ImportError:
        return None
    index = Index(ndim=data.shape[1], metric="cos", dtype="i8")
    started = time.perf_counter()
    index.add(np.arange(len(data)), data, threads=os.cpu_count() or 1)
    build_s = time.perf_counter() - started
    found = [index.search(q, 10).keys for q in qs]
    recall = statistics.fmean(
        len(set(f.tolist()) & set(t.tolist())) / 10 for f, t in zip(found, truth, strict=True)
    )
    return {
        "method": "HNSW int8 (usearch, M=16, ef=64)",
        "recall10": recall,
        "ms": _time_ms(lambda q: index.search(q, 10), qs),
        "build": f"{len(data) / build_s:,.0f} vectors/s built",
    }


def scale_bench(n: int, dim: int) -> str:
    """Build an ``n``-vector index, then measure a fresh reader process: load, first search, RSS."""
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        path = Path(tmp) / "v"
        index = VectorIndex(path, dim)
        rng = np.random.default_rng(1)
        started = time.perf_counter()
        for s in range(0, n, 100_000):
            m = min(100_000, n - s)
            ids = [f"{2000 + (s + i) // 100_000:04d}.{(s + i) % 100_000:05d}" for i in range(m)]
            index.add(ids, isotropic(m, dim, rng), tags=[f"{s + i} 0123456789abcdef" for i in range(m)])
        build_s = time.perf_counter() - started
        index.close()
        del index
        code = (
            "import sys, time, numpy as np, psutil\n"
            "from paperwire.search.vectors import VectorIndex\n"
            "t = time.perf_counter(); v = VectorIndex(sys.argv[1]); load = time.perf_counter() - t\n"
            "q = np.random.default_rng(2).standard_normal((21, v.dim))\n"
            "v.search(q[0], 10); ts = []\n"
            "for x in q[1:]:\n"
            "    t = time.perf_counter(); v.search(x, 10); ts.append(time.perf_counter() - t)\n"
            "m = psutil.Process().memory_full_info()  # before ids() below makes millions of strings\n"
            "some = set(v.ids()[::100])\n"
            "t = time.perf_counter(); v.search(q[0], 10, allowed=some); filt = time.perf_counter() - t\n"
            "print(f'{len(v):,} vectors: reader load {load:.1f} s, search p50 {sorted(ts)[10] * 1000:.0f} ms, '\n"
            "      f'1%-subset search {filt * 1000:.0f} ms; RSS {m.rss / 2**20:,.0f} MB '\n"
            "      f'(anonymous {(m.rss - m.shared) / 2**20:,.0f} MB, file-backed {m.shared / 2**20:,.0f} MB)')\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
        )
        size = sum(f.stat().st_size for f in path.iterdir()) / 2**20
        return f"built in {build_s:.0f} s, {size:,.0f} MB on disk; " + out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated model names")
    parser.add_argument("--n", type=int, default=1024, help="papers encoded per model for the throughput")
    parser.add_argument("--device", default=None, help="cpu or cuda (torch models); default: cuda if seen")
    parser.add_argument(
        "--precisions",
        default="",
        help="comma-separated (auto, float32, bfloat16, int8): each torch model once per precision; "
        "default: $PAPERWIRE_EMBED_PRECISION or auto",
    )
    parser.add_argument("--vectors", type=int, default=100_000, help="vectors in the recall test")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--scale", type=int, default=0, help="also measure a reader of an index this big")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.device)))
        return

    print(f"# machine: {machine()}")
    print(f"# command: python bench/embeddings.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}, load average {os.getloadavg()[0]:.1f}\n")
    print(
        f"Encoding {args.n:,} papers (sample, title + abstract), batch 64; query latency over judged queries"
    )
    print("| model | dim | load s | papers/s | query p50 ms | query p95 ms | RSS MB | nDCG@10 (66 queries) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    runs = [
        (name, precision)
        for name in args.models.split(",")
        for precision in (args.precisions.split(",") if args.precisions and runs_in_torch(name) else [None])
    ]
    for name, precision in runs:
        r = run_worker(name, args.n, args.device, precision)
        if r:
            print(
                f"| {r['model']} | {r['dim']} | {r['load_s']:.1f} | {r['papers_per_s']:,.0f} | "
                f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['rss_mb']:,.0f} | {r['ndcg10']:.3f} |",
                flush=True,
            )

    print(
        "(model2vec-minilm: load includes distilling it from MiniLM the first time; it is then cached under "
        "$PAPERWIRE_DATA_DIR/models/)"
    )
    print(f"\nSearch, {args.vectors:,} vectors x 384-d, {args.queries} queries, k=10")
    print("| data | method | recall@10 vs float32 | latency p50 ms | build |")
    print("|---|---|---:|---:|---|")
    for r in vector_bench(args.vectors, 384, args.queries):
        print(f"| {r['data']} | {r['method']} | {r['recall10']:.3f} | {r['ms']:.1f} | {r.get('build', '')} |")

    if args.scale:
        print(f"\nScale, {args.scale:,} vectors x 384-d int8: {scale_bench(args.scale, 384)}")


if __name__ == "__main__":
    main()
