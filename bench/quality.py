"""Search quality on the bundled sample: nDCG@10, MRR and recall@10 against judged queries.

    python bench/quality.py                          # every query, modes keyword, semantic, hybrid
    python bench/quality.py --modes keyword hybrid   # or --modes keyword,hybrid
    python bench/quality.py --kind typo              # one kind (keyword, typo, prefix, semantic)
    python bench/quality.py --json > quality.json    # machine-readable, per query and per kind
    python bench/quality.py --data-dir DIR           # reuse a data dir already imported and indexed

The judgments (bench/judgments.json) are graded by hand: for each query, the ids of the relevant
papers with grade 3 (exactly what was asked), 2 (clearly relevant) or 1 (partially relevant); every
other paper is 0. There are four kinds of query: keyword (the words a researcher who knows them types),
typo (misspellings of such queries), prefix (search-as-you-type, the last word cut short) and semantic
(the idea of a paper described in words that appear in none of its judged papers' title or abstract).

The script builds a fresh store in a temporary directory by running the real CLI
(`paperwire import sample -q`, then `paperwire index -q`) with PAPERWIRE_DATA_DIR pointing there, then
calls `paperwire.search.search(query, mode=mode, per_page=10)` in-process for every query and mode.

Metrics, per query, on the top 10 ids returned (duplicates count once):
  nDCG@10    sum over ranks i of (2^grade - 1) / log2(i + 1), divided by the same sum for the ideal
             ordering of the judged papers (so 1.0 means the best possible top 10);
  MRR        1 / rank of the first paper with grade >= 1 (0 when none is in the top 10);
  recall@10  judged papers (grade >= 1) found in the top 10 / number of judged papers (a query with
             more than 10 judged papers cannot reach 1.0).
Each is averaged over the queries of a kind; "all" averages over every query.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JUDGMENTS = Path(__file__).resolve().parent / "judgments.json"
KINDS = ("keyword", "typo", "prefix", "semantic")
MODES = ("keyword", "semantic", "hybrid")
K = 10


# -- metrics ----------------------------------------------------------------------------------------------


def _unique(ranked: Iterable[str]) -> list[str]:
    """The ranking with repeated ids dropped (a paper listed twice earns its gain once)."""
    seen: set[str] = set()
    out = []
    for pid in ranked:
        if pid not in seen:
            seen.add(pid)
            out.append(pid)
    return out


def dcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = K) -> float:
    """Discounted cumulative gain of the first k ids: gain 2^grade - 1, discount log2(rank + 1)."""
    return sum(
        (2 ** relevant.get(pid, 0) - 1) / math.log2(rank + 1)
        for rank, pid in enumerate(_unique(ranked)[:k], start=1)
    )


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = K) -> float:
    """nDCG@k with graded gains 2^grade - 1; the ideal ranking is the judged papers, best grade first.

    0.0 when nothing is judged relevant (no ideal to compare against)."""
    ideal_grades = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    ideal = sum((2**g - 1) / math.log2(rank + 1) for rank, g in enumerate(ideal_grades, start=1))
    if ideal <= 0:
        return 0.0
    return dcg_at_k(ranked, relevant, k) / ideal


def mrr(ranked: Sequence[str], relevant: Mapping[str, int], k: int = K, min_grade: int = 1) -> float:
    """Reciprocal rank of the first id in the top k with grade >= min_grade; 0.0 if there is none."""
    for rank, pid in enumerate(_unique(ranked)[:k], start=1):
        if relevant.get(pid, 0) >= min_grade:
            return 1.0 / rank
    return 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = K, min_grade: int = 1) -> float:
    """Share of the judged papers (grade >= min_grade) found in the top k; 0.0 if none is judged."""
    wanted = {pid for pid, g in relevant.items() if g >= min_grade}
    if not wanted:
        return 0.0
    return len(wanted.intersection(_unique(ranked)[:k])) / len(wanted)


# -- judgments --------------------------------------------------------------------------------------------


def load_judgments(path: Path = JUDGMENTS) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        judgments = json.load(f)
    for j in judgments:
        if j.get("kind") not in KINDS:
            raise SystemExit(f"{path}: query {j.get('query')!r} has unknown kind {j.get('kind')!r}")
        j["relevant"] = {pid: int(g) for pid, g in j["relevant"].items()}
    return judgments


# -- building the store and index -------------------------------------------------------------------------


def _env_for(data_dir: Path) -> dict[str, str]:
    """This process's environment with every store/index location derived from data_dir."""
    env = dict(os.environ)
    env["PAPERWIRE_DATA_DIR"] = str(data_dir)
    env.pop("PAPERWIRE_DATABASE_URL", None)  # a fresh SQLite store in data_dir, never a shared database
    env.pop("PAPERWIRE_INDEX_DIR", None)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _cli(args: list[str], env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "paperwire.cli", *args]
    shown = "paperwire " + " ".join(args)
    started = time.monotonic()
    proc = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()
        if "No such command" in output:
            raise SystemExit(
                f"bench/quality.py: `{shown}` is not available in this checkout ({output.splitlines()[-1]}).\n"
                "The benchmark needs `paperwire import sample` and `paperwire index` (the search index); "
                "build search first, or pass --data-dir with an already indexed data dir."
            )
        raise SystemExit(f"bench/quality.py: `{shown}` failed with exit status {proc.returncode}:\n{output}")
    print(f"  {shown}: {time.monotonic() - started:.1f}s", file=sys.stderr)


def build(data_dir: Path) -> None:
    env = _env_for(data_dir)
    print(f"Building a fresh store and index in {data_dir}", file=sys.stderr)
    _cli(["import", "sample", "-q"], env)
    _cli(["index", "-q"], env)


def _search_function():
    try:
        from paperwire.search import search
    except ImportError as exc:
        raise SystemExit(
            f"bench/quality.py: paperwire.search.search is not available in this checkout ({exc})."
        ) from None
    return search


# -- running ----------------------------------------------------------------------------------------------


def run(judgments: list[dict], modes: Sequence[str], data_dir: Path) -> dict:
    """Every query through every mode; returns per-query ids and metrics, per-kind means and timings."""
    # Settings are read from the environment when used, so pointing it at data_dir is enough.
    os.environ["PAPERWIRE_DATA_DIR"] = str(data_dir)
    os.environ.pop("PAPERWIRE_DATABASE_URL", None)
    os.environ.pop("PAPERWIRE_INDEX_DIR", None)
    search = _search_function()

    errors: dict[str, str] = {}
    served_as: dict[str, dict[str, int]] = {m: {} for m in modes}  # mode asked -> mode the result reports
    seconds: dict[str, list[float]] = {m: [] for m in modes}
    queries = []
    for j in judgments:
        row = {"query": j["query"], "kind": j["kind"], "relevant": j["relevant"], "results": {}}
        for mode in modes:
            if mode in errors:
                continue
            started = time.perf_counter()
            try:
                result = search(j["query"], mode=mode, per_page=K)
            except Exception as exc:  # one broken mode must not hide the others' numbers
                errors[mode] = f"{type(exc).__name__}: {exc}"
                print(f"mode {mode!r} failed on {j['query']!r}: {errors[mode]}", file=sys.stderr)
                continue
            seconds[mode].append(time.perf_counter() - started)
            served = str(getattr(result, "mode", mode))
            served_as[mode][served] = served_as[mode].get(served, 0) + 1
            ids = _unique(_hit_id(h) for h in result.hits)[:K]
            row["results"][mode] = {
                "ids": ids,
                "ndcg@10": ndcg_at_k(ids, j["relevant"]),
                "mrr": mrr(ids, j["relevant"]),
                "recall@10": recall_at_k(ids, j["relevant"]),
            }
        queries.append(row)

    ok_modes = [m for m in modes if m not in errors]
    summary: dict[str, dict] = {}
    for kind in (*KINDS, "all"):
        rows = [q for q in queries if kind == "all" or q["kind"] == kind]
        if not rows:
            continue
        summary[kind] = {"n": len(rows)}
        for mode in ok_modes:
            summary[kind][mode] = {
                metric: sum(q["results"][mode][metric] for q in rows) / len(rows)
                for metric in ("ndcg@10", "mrr", "recall@10")
            }
    latency = {
        m: {"mean_ms": 1000 * sum(s) / len(s), "max_ms": 1000 * max(s)} for m, s in seconds.items() if s
    }
    return {
        "k": K,
        "modes": list(modes),
        "errors": errors,
        "summary": summary,
        "latency": latency,
        "served_as": served_as,
        "queries": queries,
    }


_VERSION = re.compile(r"v\d+$")


def _hit_id(hit) -> str:
    """The hit's arXiv id without a version suffix (judgments use the store's version-less ids)."""
    return _VERSION.sub("", str(hit.id))


# -- reporting --------------------------------------------------------------------------------------------


def _f(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def markdown(report: dict, worst: int = 10) -> str:
    modes = [m for m in report["modes"] if m not in report["errors"]]
    summary = report["summary"]
    out = []
    header = "| kind | n | " + " | ".join(f"{m} nDCG@10" for m in modes) + " |"
    out += [
        f"nDCG@{report['k']} by query kind and search mode",
        "",
        header,
        "|---|---:|" + "---:|" * len(modes),
    ]
    for kind, s in summary.items():
        name = f"**{kind}**" if kind == "all" else kind
        out.append(f"| {name} | {s['n']} | " + " | ".join(_f(s[m]["ndcg@10"]) for m in modes) + " |")

    out += ["", "MRR and recall@10 (grade >= 1 counts as relevant)", ""]
    out.append("| kind | " + " | ".join(f"{m} MRR | {m} R@10" for m in modes) + " |")
    out.append("|---|" + "---:|---:|" * len(modes))
    for kind, s in summary.items():
        cells = " | ".join(f"{_f(s[m]['mrr'])} | {_f(s[m]['recall@10'])}" for m in modes)
        out.append(f"| {kind} | {cells} |")

    if report["latency"]:
        out += ["", "| mode | mean ms/query | max ms |", "|---|---:|---:|"]
        for m, t in report["latency"].items():
            out.append(f"| {m} | {t['mean_ms']:.1f} | {t['max_ms']:.1f} |")

    if modes:
        focus = "hybrid" if "hybrid" in modes else modes[-1]
        rows = sorted(report["queries"], key=lambda q: (q["results"][focus]["ndcg@10"], q["query"]))[:worst]
        others = [m for m in modes if m != focus]
        out += ["", f"The {len(rows)} worst queries by {focus} nDCG@{report['k']}", ""]
        out.append(
            f"| query | kind | {focus} nDCG@10 | "
            + "".join(f"{m} | " for m in others)
            + f"{focus} MRR | best papers missing from the {focus} top 10 |"
        )
        out.append("|---|---|---:|" + "---:|" * len(others) + "---:|---|")
        for q in rows:
            r = q["results"][focus]
            missing = [
                f"{pid} ({g})"
                for pid, g in sorted(q["relevant"].items(), key=lambda x: -x[1])
                if g >= 2 and pid not in r["ids"]
            ][:3]
            out.append(
                f"| {q['query']} | {q['kind']} | {_f(r['ndcg@10'])} | "
                + "".join(f"{_f(q['results'][m]['ndcg@10'])} | " for m in others)
                + f"{_f(r['mrr'])} | {', '.join(missing) or '—'} |"
            )

    for mode, served in report.get("served_as", {}).items():
        other = {m: n for m, n in served.items() if m != mode}
        if other:
            total = sum(served.values())
            said = ", ".join(f"{m} for {n}/{total} queries" for m, n in other.items())
            out.append(f"\nNote: mode {mode} was answered as {said} (the result's own mode).")
    for mode, error in report["errors"].items():
        out.append(f"\n**mode {mode} failed:** {error}")
    return "\n".join(out)


def _split(values: Sequence[str] | None, allowed: Sequence[str], what: str) -> list[str]:
    items = [v for value in values or () for v in value.split(",") if v]
    for v in items:
        if v not in allowed:
            raise SystemExit(f"unknown {what} {v!r}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--modes", nargs="+", metavar="MODE", help="search modes (default: keyword semantic hybrid)"
    )
    parser.add_argument(
        "--kind", nargs="+", metavar="KIND", help="only these query kinds: keyword typo prefix semantic"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the full report as JSON instead of markdown"
    )
    parser.add_argument(
        "--judgments", type=Path, default=JUDGMENTS, help="judgments file (default: %(default)s)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="use this data dir, already imported and indexed, instead of building a fresh one in a temp dir",
    )
    parser.add_argument("--worst", type=int, default=10, help="rows in the worst-queries table (default: 10)")
    args = parser.parse_args(argv)

    modes = _split(args.modes, MODES, "mode") or list(MODES)
    kinds = _split(args.kind, KINDS, "kind") or list(KINDS)
    judgments = [j for j in load_judgments(args.judgments) if j["kind"] in kinds]
    if not judgments:
        raise SystemExit("no judged queries of the requested kind")

    sys.path.insert(0, str(ROOT))
    temp_dir = None
    if args.data_dir is None:
        temp_dir = Path(tempfile.mkdtemp(prefix="paperwire-quality-"))
        data_dir = temp_dir
    else:
        data_dir = args.data_dir.resolve()
        if not (data_dir / "index" / "keyword").is_dir():
            raise SystemExit(
                f"{data_dir} has no search index: import and index it first, or leave out --data-dir"
            )
    try:
        if temp_dir is not None:
            build(data_dir)
        report = run(judgments, modes, data_dir)
    finally:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)

    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(markdown(report, args.worst))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
