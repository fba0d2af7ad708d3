"""Grid search of the hybrid fusion parameters on the judged queries (bench/judgments.json).

    python bench/tune_hybrid.py --data-dir DIR   # DIR: a data dir with the sample imported and indexed

Prints nDCG@10 per query kind for the 15 best settings, best overall first (432 settings: about ten
minutes on 2 cores). The chosen values are the constants
in paperwire/search/service.py; docs/benchmarks.md records the run.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    os.environ["PAPERWIRE_DATA_DIR"] = str(args.data_dir)
    from bench.quality import load_judgments, ndcg_at_k
    from paperwire.search import service

    engine = service.SearchEngine.open()
    # The result cache would answer every setting with the first one's ranking.
    engine.result_cache_size = 0
    judgments = load_judgments()
    kinds = sorted({j["kind"] for j in judgments})
    rows = []
    grid = itertools.product(
        [1.0, 1.5, 2.0, 3.0], [0.1, 0.2, 0.3], [0.6, 0.7, 0.8], [2.0, 3.0, 4.0], [0.0, 0.4, 0.5, 0.6]
    )
    for weight, floor, ceil, exponent, min_share in grid:
        service.MEANING_WEIGHT, service.COSINE_FLOOR, service.COSINE_CEIL = weight, floor, ceil
        service.KEYWORD_EXPONENT, service.KEYWORD_MIN_SHARE = exponent, min_share
        scores: dict[str, list[float]] = {k: [] for k in kinds}
        for j in judgments:
            hits = engine.search(j["query"], mode="hybrid", per_page=10).hits
            scores[j["kind"]].append(ndcg_at_k([h.id for h in hits], j["relevant"]))
        by_kind = {k: sum(v) / len(v) for k, v in scores.items()}
        overall = sum(sum(v) for v in scores.values()) / len(judgments)
        rows.append((overall, min(by_kind.values()), (weight, floor, ceil, exponent, min_share), by_kind))
    rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
    print("| weight | floor | ceil | exponent | min share | " + " | ".join(kinds) + " | all | worst kind |")
    print("|---:|---:|---:|---:|---:|" + "---:|" * (len(kinds) + 2))
    for overall, worst, setting, by_kind in rows[:15]:
        cells = " | ".join(f"{by_kind[k]:.3f}" for k in kinds)
        print("| " + " | ".join(map(str, setting)) + f" | {cells} | {overall:.3f} | {worst:.3f} |")


if __name__ == "__main__":
    main()
