"""The search-quality yardstick: metric functions of bench/quality.py and the judged queries in
bench/judgments.json (well-formed, ids in the sample, and each kind of query really is that kind)."""

from __future__ import annotations

import gzip
import json
import math
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from bench.quality import JUDGMENTS, KINDS, dcg_at_k, load_judgments, mrr, ndcg_at_k, recall_at_k

SAMPLE = Path(__file__).resolve().parent.parent / "paperwire" / "sample" / "papers.jsonl.gz"

# -- metrics ----------------------------------------------------------------------------------------------

REL = {"a": 3, "b": 2, "c": 1}


def test_perfect_ranking_scores_one():
    ranked = ["a", "b", "c", "x", "y"]
    assert ndcg_at_k(ranked, REL) == pytest.approx(1.0)
    assert mrr(ranked, REL) == 1.0
    assert recall_at_k(ranked, REL) == 1.0


def test_reversed_ranking_scores_lower_but_above_zero():
    perfect = ndcg_at_k(["a", "b", "c"], REL)
    reversed_ = ndcg_at_k(["c", "b", "a"], REL)
    assert 0.0 < reversed_ < perfect
    # every relevant paper is still found, and the first hit is still at rank 1
    assert recall_at_k(["c", "b", "a"], REL) == 1.0
    assert mrr(["c", "b", "a"], REL) == 1.0


def test_nothing_relevant_retrieved_scores_zero():
    ranked = ["x", "y", "z"]
    assert ndcg_at_k(ranked, REL) == 0.0
    assert mrr(ranked, REL) == 0.0
    assert recall_at_k(ranked, REL) == 0.0
    assert ndcg_at_k([], REL) == 0.0 and mrr([], REL) == 0.0 and recall_at_k([], REL) == 0.0


def test_no_judged_papers_scores_zero_not_an_error():
    assert ndcg_at_k(["a"], {}) == 0.0
    assert mrr(["a"], {}) == 0.0
    assert recall_at_k(["a"], {}) == 0.0


def test_exact_values_with_graded_gains_and_log_discount():
    # gains 2^g - 1 (3 -> 7, 2 -> 3, 1 -> 1), discount log2(rank + 1)
    assert dcg_at_k(["b", "a"], REL) == pytest.approx(3 + 7 / math.log2(3))
    ideal = 7 + 3 / math.log2(3) + 1 / 2
    assert ndcg_at_k(["b", "a"], REL) == pytest.approx((3 + 7 / math.log2(3)) / ideal)
    assert ndcg_at_k(["x", "a"], {"a": 3}) == pytest.approx(1 / math.log2(3))
    assert mrr(["x", "y", "c"], REL) == pytest.approx(1 / 3)


def test_higher_grades_count_more():
    # the same positions, a better paper first -> a higher score
    assert ndcg_at_k(["a", "x"], REL) > ndcg_at_k(["b", "x"], REL) > ndcg_at_k(["c", "x"], REL)
    # a grade-3 paper at rank 2 is worth more than a grade-1 paper at rank 1 (gain 7 vs 1)
    assert ndcg_at_k(["x", "a"], REL) > ndcg_at_k(["c", "x"], REL)
    # swapping two papers of different grades changes the score; of equal grades it does not
    assert ndcg_at_k(["a", "b"], REL) > ndcg_at_k(["b", "a"], REL)
    assert ndcg_at_k(["a", "b"], {"a": 2, "b": 2}) == pytest.approx(ndcg_at_k(["b", "a"], {"a": 2, "b": 2}))


def test_k_cut_off():
    ranked = [f"x{i}" for i in range(10)] + ["a"]  # the only relevant paper at rank 11
    assert ndcg_at_k(ranked, {"a": 3}) == 0.0
    assert mrr(ranked, {"a": 3}) == 0.0
    assert recall_at_k(ranked, {"a": 3}) == 0.0
    assert ndcg_at_k(ranked, {"a": 3}, k=11) == pytest.approx(1 / math.log2(12))
    assert mrr(ranked, {"a": 3}, k=11) == pytest.approx(1 / 11)
    assert recall_at_k(ranked, {"a": 3}, k=11) == 1.0
    # the ideal is cut at k too: with 12 grade-3 papers, ten of them in the top 10 is perfect
    many = {f"r{i}": 3 for i in range(12)}
    assert ndcg_at_k([f"r{i}" for i in range(10)], many) == pytest.approx(1.0)
    assert recall_at_k([f"r{i}" for i in range(10)], many) == pytest.approx(10 / 12)


def test_partial_recall_and_min_grade():
    assert recall_at_k(["a", "x"], REL) == pytest.approx(1 / 3)
    assert recall_at_k(["a", "x"], REL, min_grade=2) == pytest.approx(1 / 2)
    assert mrr(["c", "a"], REL, min_grade=3) == pytest.approx(1 / 2)


def test_duplicate_ids_earn_their_gain_once():
    rel = {"a": 3, "b": 3}
    assert ndcg_at_k(["a", "a", "a"], rel) == pytest.approx(7 / (7 + 7 / math.log2(3)))
    assert ndcg_at_k(["a", "a", "b"], rel) == pytest.approx(1.0)  # b is at rank 2 once duplicates are dropped
    assert recall_at_k(["a", "a"], rel) == pytest.approx(1 / 2)


# -- the judged queries -----------------------------------------------------------------------------------


@cache
def sample() -> dict[str, str]:
    """id -> title + abstract of every paper in the bundled sample."""
    papers = {}
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            papers[p["id"]] = p["title"] + " " + (p.get("abstract") or "")
    return papers


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


@cache
def vocabulary() -> frozenset[str]:
    return frozenset(w for text in sample().values() for w in words(text))


_SUFFIX_WORDS = (
    "ational ization isation ations ation ities ness ments ment ings ingly ing edly ed ies es s ly ers er "
    "ity ives ive als al ous ically ical ics ic ions ion ists ist ism able ably"
)
_SUFFIXES = sorted(_SUFFIX_WORDS.split(), key=len, reverse=True)


def stem(word: str) -> str:
    """A crude suffix stripper: enough to catch 'pooling'/'pooled', 'tests'/'testing', 'optics'/'optical'."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


def osa_distance(a: str, b: str) -> int:
    """Edit distance with insertions, deletions, substitutions and adjacent transpositions (1 each)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def allowed_edits(word_length: int) -> int:
    """Typos allowed in a word: none below 5 letters, 1 in words of 5-8 letters, 2 from 9 letters."""
    return 0 if word_length < 5 else 1 if word_length <= 8 else 2


def intended_word(typo: str) -> str | None:
    """The sample word this misspelling is within its allowed edits of (closest first), if any."""
    best = None
    for word in vocabulary():
        if abs(len(word) - len(typo)) > 2:
            continue
        distance = osa_distance(typo, word)
        if 1 <= distance <= allowed_edits(len(word)) and (best is None or distance < best[0]):
            best = (distance, word)
    return best and best[1]


@cache
def judgments() -> list[dict]:
    return load_judgments(JUDGMENTS)


def of_kind(kind: str) -> list[dict]:
    return [j for j in judgments() if j["kind"] == kind]


def test_judgments_file_is_well_formed():
    raw = json.loads(JUDGMENTS.read_text(encoding="utf-8"))
    assert isinstance(raw, list)
    for j in raw:
        assert set(j) == {"query", "kind", "relevant", "note"}, j
        assert isinstance(j["query"], str) and j["query"].strip() == j["query"] and j["query"], j
        assert j["kind"] in KINDS, j
        assert isinstance(j["note"], str) and j["note"].strip(), j
        assert isinstance(j["relevant"], dict) and j["relevant"], j
        for pid, grade in j["relevant"].items():
            assert type(grade) is int and grade in (1, 2, 3), (j["query"], pid, grade)
    queries = [j["query"].lower() for j in raw]
    assert len(queries) == len(set(queries)), [q for q, n in Counter(queries).items() if n > 1]


def test_enough_queries_of_every_kind():
    counts = Counter(j["kind"] for j in judgments())
    assert len(judgments()) >= 48
    for kind in KINDS:
        assert counts[kind] >= 12, counts


def test_every_judged_id_is_in_the_sample():
    missing = [(j["query"], pid) for j in judgments() for pid in j["relevant"] if pid not in sample()]
    assert not missing


def test_every_query_has_a_clearly_relevant_paper():
    assert all(max(j["relevant"].values()) >= 2 for j in judgments())


def test_keyword_queries_use_words_of_the_sample():
    for j in of_kind("keyword"):
        unknown = [w for w in words(j["query"]) if w not in vocabulary()]
        assert not unknown, (j["query"], unknown)


def test_typo_queries_are_realistic_misspellings():
    for j in of_kind("typo"):
        misspelled = [w for w in words(j["query"]) if w not in vocabulary()]
        assert misspelled, f"{j['query']!r} has no misspelled word"
        for w in misspelled:
            assert len(w) >= 5, f"{j['query']!r}: no typos in words shorter than 5 letters ({w!r})"
            assert intended_word(w), f"{j['query']!r}: {w!r} is not 1-2 edits from any word of the sample"


def test_prefix_queries_end_in_a_cut_word():
    for j in of_kind("prefix"):
        *head, last = words(j["query"])
        assert len(last) >= 3, j["query"]
        assert any(w.startswith(last) and len(w) > len(last) for w in vocabulary()), j["query"]
        assert all(w in vocabulary() for w in head), j["query"]
        # and it is really cut short in the papers it should find
        best = [pid for pid, g in j["relevant"].items() if g == 3]
        assert any(w.startswith(last) and len(w) > len(last) for pid in best for w in words(sample()[pid])), (
            j["query"]
        )


def test_semantic_queries_share_no_word_with_their_papers():
    for j in of_kind("semantic"):
        query_words = {w for w in words(j["query"]) if len(w) >= 4}
        for pid in j["relevant"]:  # grade 3 as required, and the lower grades as well
            paper_words = set(words(sample()[pid]))
            paper_stems = {stem(w) for w in paper_words}
            shared = sorted(w for w in query_words if w in paper_words or stem(w) in paper_stems)
            assert not shared, f"{j['query']!r} shares {shared} with {pid} (grade {j['relevant'][pid]})"


def test_stem_and_edit_distance_helpers():
    assert stem("pooling") == stem("pooled") == "pool"
    assert stem("tests") == stem("testing") == "test"
    assert osa_distance("tetsing", "testing") == 1  # one transposition
    assert osa_distance("liqiud", "liquid") == 1
    assert osa_distance("metamorfic", "metamorphic") == 2
    assert allowed_edits(4) == 0 and allowed_edits(8) == 1 and allowed_edits(9) == 2
