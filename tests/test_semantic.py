"""Semantic and hybrid search through the one search() entry point, with the real local model."""

from __future__ import annotations

import gzip
import json
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from paperwire.ingest.jsonl import paper_from_mapping
from paperwire.models import Author, Paper
from paperwire.search import Filters, SearchEngine
from paperwire.search.embed_job import embed_backlog
from paperwire.search.embeddings import Embedder, ModelUnavailable, MPNetEmbedder, get_embedder
from paperwire.search.english import is_english_word
from paperwire.search.keyword import KeywordIndex
from paperwire.search.vectors import VectorIndex

SAMPLE = Path(__file__).resolve().parent.parent / "paperwire" / "sample" / "papers.jsonl.gz"
PAPERS = [
    Paper(
        id="2401.10001",
        title="Learning to manipulate elasto-plastic objects with differentiable physics",
        abstract="We study how a robot arm shapes deformable materials such as clay and dough using tools like "
        "rollers and cutters, planning with a differentiable simulator of elasto-plastic deformation.",
        authors=[Author("A. Roboticist")],
        categories=["cs.RO"],
        published=datetime(2024, 1, 3, tzinfo=UTC),
    ),
    Paper(
        id="2401.10002",
        title="Neutrino oscillation parameters from reactor experiments",
        abstract="Reactor antineutrino disappearance constrains the mixing angle theta13.",
        categories=["hep-ex"],
        published=datetime(2024, 1, 2, tzinfo=UTC),
    ),
    Paper(
        id="2401.10003",
        title="Mutation testing of deep learning systems",
        abstract="We inject faults into neural networks to evaluate the adequacy of test suites.",
        categories=["cs.SE"],
        published=datetime(2024, 1, 1, tzinfo=UTC),
    ),
    Paper(
        id="2401.10004",
        title="Flaky tests in continuous integration",
        abstract="Tests that pass and fail on the same code revision waste developer time; we study their causes.",
        categories=["cs.SE"],
        published=datetime(2023, 12, 30, tzinfo=UTC),
    ),
]


@pytest.fixture(scope="module")
def embedder():
    return get_embedder("minilm")


@pytest.fixture
def engine(tmp_path, sqlite_store, embedder) -> SearchEngine:
    sqlite_store.apply(PAPERS)
    keyword = KeywordIndex(tmp_path / "keyword")
    keyword.catch_up(sqlite_store)
    vectors = VectorIndex(tmp_path / "vectors", embedder.dim)
    embed_backlog(sqlite_store, vectors, embedder)
    return SearchEngine(sqlite_store, keyword, vectors, lambda: embedder)


def ids(result) -> list[str]:
    return [h.id for h in result.hits]


def test_query_sharing_no_word_finds_the_paper(engine):
    query = "machine kneading pastry via utensils"
    assert engine.search(query, mode="keyword").total == 0
    assert ids(engine.search(query, mode="semantic"))[0] == "2401.10001"
    hybrid = engine.search(query, mode="hybrid")
    assert ids(hybrid)[0] == "2401.10001"
    assert any("close in meaning" in m for m in hybrid.hits[0].matched)


def test_hybrid_keeps_exact_keyword_matches_first(engine):
    assert ids(engine.search("mutation testing", mode="hybrid"))[0] == "2401.10003"
    assert ids(engine.search("mutaton tetsing", mode="hybrid"))[0] == "2401.10003"
    assert ids(engine.search("neutrino osc", mode="hybrid"))[0] == "2401.10002"


def test_semantic_respects_filters(engine):
    r = engine.search("robot shaping clay", Filters(categories=("cs.SE",)), mode="semantic")
    assert set(ids(r)) == {"2401.10003", "2401.10004"}  # the close paper is cs.RO: filtered out
    assert ids(engine.search("robot shaping clay", mode="semantic"))[0] == "2401.10001"
    r = engine.search(
        "tests that fail randomly", Filters(published_from=datetime(2024, 1, 1).date()), mode="hybrid"
    )
    assert "2401.10004" not in ids(r)


def test_similar_papers_exclude_the_paper_itself(engine):
    similar = engine.similar("2401.10003", limit=3)
    assert "2401.10003" not in [h.id for h in similar]
    assert similar[0].id == "2401.10004"  # the other software-testing paper


def test_papers_without_vectors_are_still_found_by_keywords(tmp_path, sqlite_store, embedder):
    sqlite_store.apply(PAPERS)
    keyword = KeywordIndex(tmp_path / "keyword")
    keyword.catch_up(sqlite_store)
    vectors = VectorIndex(tmp_path / "vectors", embedder.dim)
    summary = embed_backlog(sqlite_store, vectors, embedder, limit=1)  # only the newest paper
    assert summary.embedded == 1 and summary.pending == 3
    engine = SearchEngine(sqlite_store, keyword, vectors, lambda: embedder)
    assert ids(engine.search("flaky tests", mode="hybrid"))[0] == "2401.10004"
    assert engine.similar("2401.10004")  # falls back to its title's words


def test_hybrid_pages_never_repeat_a_paper(tmp_path, sqlite_store, embedder, monkeypatch):
    """A deeper page fuses a wider window, which reorders the top: later pages must still not show a
    paper an earlier page showed."""
    from paperwire.search import service

    topics = ["unit tests", "flaky tests", "mutation analysis", "fuzzing", "neutrino physics", "robot arms"]
    extra = [
        Paper(
            id=f"2402.{i:05d}",
            title=f"{topics[i % len(topics)].capitalize()} study {i}",
            abstract=f"We examine {topics[i % len(topics)]} and {topics[(i * 7) % len(topics)]} in software "
            f"and hardware systems, case {i}.",
            categories=["cs.SE"],
            published=datetime(2024, 1, 1 + i % 28, tzinfo=UTC),
        )
        for i in range(1, 41)
    ]
    sqlite_store.apply([*PAPERS, *extra])
    keyword = KeywordIndex(tmp_path / "keyword")
    keyword.catch_up(sqlite_store)
    vectors = VectorIndex(tmp_path / "vectors", embedder.dim)
    embed_backlog(sqlite_store, vectors, embedder)
    engine = SearchEngine(sqlite_store, keyword, vectors, lambda: embedder)
    monkeypatch.setattr(service, "POOL", 4)
    monkeypatch.setattr(service, "MAX_POOL", 40)
    seen = []
    for page in range(1, 15):
        seen += ids(engine.search("testing software", page=page, per_page=3, mode="hybrid"))
    assert len(seen) == len(set(seen)), seen
    assert len(seen) >= 30  # the pages went on past the first windows


def test_the_model_reads_the_query_as_typed_with_typos_fixed(engine, monkeypatch):
    """Hybrid and semantic search embed a query as a sentence (stop words and punctuation kept: the model
    was trained on sentences), hybrid with a misspelled word replaced by what it matched; of a query in
    field syntax, only the words (the syntax means nothing to the model)."""
    read: list[str] = []
    embed = engine._query_vector
    monkeypatch.setattr(engine, "_query_vector", lambda text: read.append(text) or embed(text))
    engine.search("tests that fail on the same revision", mode="hybrid")
    engine.search("mutaton testing of the networks", mode="hybrid")
    engine.search("ti:mutation AND abs:networks", mode="semantic")
    engine.search("tests, that fail!", mode="semantic")
    assert read == [
        "tests that fail on the same revision",
        "mutation testing of the networks",
        "mutation networks",
        "tests, that fail!",
    ]


def test_hybrid_embeds_the_query_while_the_keyword_side_searches(engine, monkeypatch):
    """A query goes to the model at once, on another thread, overlapping the keyword search: as typed
    when the index knows its words, with a typo fixed to the indexed word one edit away, an unfinished
    last word completed; a word two edits from any indexed word waits for the keyword hits that fix it."""
    import threading

    embedding_started = threading.Event()
    overlapped: list[bool] = []
    read: list[tuple[str, str]] = []
    wait = {"seconds": 10.0}
    embed, plain = engine._query_vector, engine._plain

    def query_vector(text):
        read.append((text, threading.current_thread().name))
        embedding_started.set()
        return embed(text)

    def keyword_side(*args, **kwargs):
        # Had the model started reading the query before the keyword search ran?
        overlapped.append(embedding_started.wait(timeout=wait["seconds"]))
        return plain(*args, **kwargs)

    monkeypatch.setattr(engine, "_query_vector", query_vector)
    monkeypatch.setattr(engine, "_plain", keyword_side)
    first = engine.search("tests that fail on the same revision", mode="hybrid")
    assert overlapped == [True] and read[0][1].startswith("embed-query")
    assert ids(first)[0] == "2401.10004"
    for query, fixed in [
        ("mutaton testing of the networks", "mutation testing of the networks"),
        ("neutrino osc", "neutrino oscillation"),
    ]:
        embedding_started.clear()
        read.clear()
        engine.search(query, mode="hybrid")
        assert overlapped[-1] is True and read[0][1].startswith("embed-query")
        assert read == [(fixed, read[0][1])]
    embedding_started.clear()
    read.clear()
    wait["seconds"] = 0.5
    engine.search("neutrino oscilaton", mode="hybrid")  # "oscillation" less two letters
    assert overlapped[-1] is False
    assert read == [("neutrino oscillation", threading.current_thread().name)]


def test_hybrid_says_how_it_read_misspelled_words(engine):
    """The result names the query as corrected, for the page's "Including results for …": a typo fixed
    from the index's words or, two edits away, from the keyword hits; never a word being completed."""

    def corrected(query: str, mode: str = "hybrid") -> str | None:
        return engine.search(query, mode=mode).corrected

    assert corrected("mutaton testing of the networks") == "mutation testing of the networks"
    assert corrected("neutrino oscilaton") == "neutrino oscillation"  # from the keyword hits
    assert corrected("neutrino osc") is None  # being typed: completed, not corrected
    assert corrected("tests that fail on the same revision") is None
    assert corrected("programs that treat people unequally") is None  # English: meant as typed
    assert corrected("mutaton testing", mode="keyword") is None  # keyword search reads no correction


def test_real_words_missing_from_the_index_are_not_read_as_typos(engine, sqlite_store, embedder, monkeypatch):
    """ "unequally" is in no paper but is English: it is meant as typed, not as a typo of "equally" (which
    would turn the query around), even as the word being typed; "equaly" is neither, and is read as
    "equally"."""
    sqlite_store.apply(
        [
            Paper(
                id="2401.10005",
                title="Do programs treat people equally? Fairness testing of software",
                abstract="We test whether software gives people equally good outcomes across groups.",
                categories=["cs.SE"],
                published=datetime(2024, 1, 4, tzinfo=UTC),
            )
        ]
    )
    engine.keyword.catch_up(sqlite_store)
    embed_backlog(sqlite_store, engine.vectors, embedder)
    read: list[str] = []
    embed = engine._query_vector
    monkeypatch.setattr(engine, "_query_vector", lambda text: read.append(text) or embed(text))
    first = engine.search("programs that treat people unequally", mode="hybrid")
    engine.search("programs that treat people equaly", mode="hybrid")
    # An English word being typed may be unfinished: it is completed ("soft" is English, in no paper).
    engine.search("fairness testing of soft", mode="hybrid")
    assert read == [
        "programs that treat people unequally",
        "programs that treat people equally",
        "fairness testing of software",
    ]
    # Only the last token of a word being typed is unfinished, as the keyword side reads it.
    engine.search("fairness of soft-tes", mode="hybrid")
    assert read[-1].startswith("fairness of soft-tes")
    assert ids(first)[0] == "2401.10005"


def test_english_words():
    assert is_english_word("unequally") and is_english_word("Exam") and is_english_word("person")
    assert not is_english_word("speculatve") and not is_english_word("robotaxis")
    assert not is_english_word("two words") and not is_english_word("")


def test_query_embeddings_are_remembered_across_index_changes(engine, sqlite_store, embedder, monkeypatch):
    """The model runs once per distinct query text, even after an index commit empties the result cache."""
    calls: list[str] = []
    encode = embedder.encode_query
    monkeypatch.setattr(embedder, "encode_query", lambda text: calls.append(text) or encode(text))
    first = engine.search("robot shaping clay", mode="semantic")
    sqlite_store.apply([replace(PAPERS[1], id="2401.10009")])
    engine.keyword.catch_up(sqlite_store)  # a new index generation: the result cache starts afresh
    again = engine.search("robot shaping clay", mode="semantic")
    assert not again.cached
    assert ids(again) == ids(first)
    engine.search("robots shaping clay", mode="semantic")
    assert calls == ["robot shaping clay", "robots shaping clay"]
    engine.vector_cache_size = engine.result_cache_size = 0
    engine.search("robot shaping clay", mode="semantic")
    assert calls[-1] == "robot shaping clay" and len(calls) == 3


def test_hybrid_looks_up_the_nearest_papers_while_the_keyword_side_searches(engine, monkeypatch):
    """The query's nearest papers are looked up as soon as its vector is ready, not after the keyword
    side: here the keyword side waits until the lookup has run, and the results are those it gives."""
    looked_up = threading.Event()
    nearest = engine._nearest

    def noting(*args):
        looked_up.set()
        return nearest(*args)

    plain = engine._plain
    waited = []

    def waiting(*args, **kwargs):
        waited.append(looked_up.wait(timeout=10))
        return plain(*args, **kwargs)

    monkeypatch.setattr(engine, "_nearest", noting)
    monkeypatch.setattr(engine, "_plain", waiting)
    result = engine.search("neutrino reactor", mode="hybrid")
    assert waited == [True]
    assert result.mode == "hybrid" and "2401.10002" in ids(result)


def with_cosines(engine, monkeypatch, cosines: dict[str, float]) -> None:
    """Every query's cosine to each paper set by hand, so that only the fusion is under test."""

    def nearest(searcher, qvec, filter_queries, window):
        return sorted(cosines.items(), key=lambda kv: -kv[1])[:window]

    monkeypatch.setattr(engine, "_nearest", nearest)
    monkeypatch.setattr(engine.vectors, "similarities", lambda ids, q: {i: cosines[i] for i in ids})


def test_matching_half_the_words_of_a_long_query_counts_for_nothing_in_hybrid(engine, monkeypatch):
    """A minimum-should-match: a paper sharing two of a four-word query's words is no evidence of a match,
    so closeness in meaning ranks it; a paper matching more than half keeps its keyword score. (Cosines
    are set by hand so only the fusion is under test.)"""
    cosines = {"2401.10001": 0.50, "2401.10002": 0.49, "2401.10003": 0.30, "2401.10004": 0.30}
    with_cosines(engine, monkeypatch, cosines)
    # 2401.10002 (neutrinos, reactors) matches 2 of the 4 words; 2401.10001 none, but is closer.
    assert ids(engine.search("neutrino reactor kneading pastry", mode="hybrid"))[:2] == [
        "2401.10001",
        "2401.10002",
    ]
    # 3 of 4 words: the keyword match counts again and wins over the slightly closer paper.
    assert ids(engine.search("neutrino reactor mixing pastry", mode="hybrid"))[0] == "2401.10002"


def test_hybrid_says_when_meaning_alone_ranked_the_results(engine, monkeypatch):
    """Where no paper matches more than half the words, every keyword score is left out and closeness in
    meaning alone ranks the results: the result says so (the page then says that, not that the papers
    matching most words come first). Two of four words: meaning alone; three: the words count again."""
    cosines = {"2401.10001": 0.50, "2401.10002": 0.49, "2401.10003": 0.30, "2401.10004": 0.30}
    with_cosines(engine, monkeypatch, cosines)
    described = engine.search("neutrino reactor kneading pastry", mode="hybrid")
    assert described.meaning_only and described.relaxed
    assert all(h.score == pytest.approx(min(1.0, (cosines[h.id] - 0.2) / 0.5)) for h in described.hits)
    matched = engine.search("neutrino reactor mixing pastry", mode="hybrid")
    assert not matched.meaning_only and matched.relaxed
    assert not engine.search("mutation testing", mode="hybrid").meaning_only
    # Keyword and semantic searches never fall back to meaning: the flag is hybrid's.
    assert not engine.search("neutrino reactor kneading pastry", mode="keyword").meaning_only
    assert not engine.search("neutrino reactor kneading pastry", mode="semantic").meaning_only


def test_papers_that_score_nothing_in_hybrid_are_ordered_by_meaning(engine, monkeypatch):
    """Below the cosine floor and matching too few words, papers all fuse to 0; they still come in order
    of closeness in meaning, not in the keyword side's order."""
    cosines = {"2401.10001": 0.15, "2401.10002": 0.05, "2401.10003": 0.19, "2401.10004": 0.10}
    with_cosines(engine, monkeypatch, cosines)
    # Each paper matches one of the six words: no keyword score counts, no cosine reaches the floor.
    result = engine.search("neutrino mutation flaky elasto kneading pastry", mode="hybrid")
    assert [h.score for h in result.hits] == [0.0] * 4
    assert ids(result) == ["2401.10003", "2401.10001", "2401.10004", "2401.10002"]


def test_hybrid_without_a_matching_word_leaves_out_papers_not_close_in_meaning(engine, monkeypatch):
    """A name no paper has found the hundred papers nearest to the name's vector: pages of results
    that share nothing with the query. Where no word matches, a paper needs a cosine above the floor."""
    cosines = {"2401.10001": 0.45, "2401.10002": 0.15, "2401.10003": 0.19, "2401.10004": 0.10}
    with_cosines(engine, monkeypatch, cosines)
    # No word matches: only the paper close in meaning is a result.
    result = engine.search("kneading pastry", mode="hybrid")
    assert ids(result) == ["2401.10001"] and result.total == 1
    # Where a word matches (however little it counts), the papers below the floor stay, ordered by
    # closeness in meaning: a short query's cosines run low.
    result = engine.search("kneading pastry flaky", mode="hybrid")
    assert ids(result) == ["2401.10001", "2401.10003", "2401.10002", "2401.10004"]
    assert result.total == 4
    monkeypatch.setattr(engine, "_nearest", lambda *a: [])
    assert engine.search("Maldacena", mode="hybrid").total == 0


def test_a_name_no_paper_has_finds_nothing_with_the_real_model(engine):
    result = engine.search("Maldacena")
    assert result.mode == "hybrid" and result.hits == [] and result.total == 0
    # A name some author has and no text uses is searched by its words: that author's papers, not
    # theirs followed by the papers nearest to the name's vector.
    result = engine.search("Roboticist")
    assert ids(result) == ["2401.10001"] and result.total == 1 and result.mode == "keyword"
    assert ids(engine.search("Roboticist", mode="semantic"))[0] == "2401.10001"  # asked for: by meaning
    # A word that texts use too keeps the meaning side ("robot" is in an abstract).
    assert len(ids(engine.search("Roboticist robot"))) > 1


# -- re-scoring by a second model ---------------------------------------------------------------------


class FixedQuery(Embedder):
    """A second model whose every query is one fixed vector, counting the queries it embeds: with paper
    vectors set by hand, its cosines are known exactly."""

    name, dim = "fixed", 4

    def __init__(self, vector):
        self.vector = np.asarray(vector, dtype=np.float32)
        self.queries: list[str] = []

    def encode(self, texts, batch_size=64):
        self.queries.extend(texts)
        return np.tile(self.vector / np.linalg.norm(self.vector), (len(texts), 1))


def rescored_by(engine, tmp_path, second_vectors: dict[str, list[float]], query) -> FixedQuery:
    """``engine`` re-scoring with a FixedQuery model whose paper vectors are ``second_vectors``."""
    model = FixedQuery(query)
    index = VectorIndex(tmp_path / "second", model.dim)
    index.add(list(second_vectors), np.asarray(list(second_vectors.values()), dtype=np.float32))
    engine.rescore_with(model.name, tmp_path / "second", lambda: model)
    return model


def test_a_described_idea_is_rescored_by_the_second_model(engine, tmp_path):
    """Where no paper matches more than half the query's words, each candidate's cosine is the even blend
    of both models'; a paper the second model has no vector for keeps the first model's cosine."""
    query = "machine kneading pastry via utensils"
    first = engine.vectors.similarities([p.id for p in PAPERS], engine.embedder().encode_query(query))
    # The second model finds the flaky-tests paper exactly (cosine 1), the neutrino paper not at all (0);
    # it has no vector for the other two.
    model = rescored_by(
        engine, tmp_path, {"2401.10004": [1, 0, 0, 0], "2401.10002": [0, 1, 0, 0]}, [1, 0, 0, 0]
    )
    blended = {**first, "2401.10004": (first["2401.10004"] + 1) / 2, "2401.10002": first["2401.10002"] / 2}
    expected = sorted(blended, key=lambda pid: -blended[pid])
    assert expected[0] == "2401.10004" and expected != sorted(first, key=lambda pid: -first[pid])
    assert ids(engine.search(query, mode="semantic")) == expected
    hybrid = engine.search(query, mode="hybrid")
    assert ids(hybrid)[0] == "2401.10004"
    assert f"close in meaning (similarity {blended['2401.10004']:.2f})" in hybrid.hits[0].matched
    assert model.queries == [query]  # once: its vector is remembered like the first model's


def test_queries_that_match_their_words_never_reach_the_second_model(engine, tmp_path):
    model = rescored_by(engine, tmp_path, {"2401.10004": [1, 0, 0, 0]}, [1, 0, 0, 0])
    assert ids(engine.search("mutation testing", mode="hybrid"))[0] == "2401.10003"
    assert ids(engine.search("neutrino oscillation reactor", mode="hybrid"))[0] == "2401.10002"
    assert model.queries == []
    # One or two words name things: two that no paper has together are no description.
    engine.search("neutrino kneading", mode="hybrid")
    assert model.queries == []
    # From three words (RESCORE_MIN_WORDS), half of them matched or fewer is no match (KEYWORD_MIN_SHARE):
    # the query describes an idea.
    engine.search("neutrino kneading pastry", mode="hybrid")
    assert model.queries == ["neutrino kneading pastry"]


def second_model_started(engine, monkeypatch, wait: float) -> list[bool]:
    """For each keyword side of a hybrid search from now on: whether the second model was asked for
    the query's vector before that side returned (each waits up to ``wait`` seconds for it)."""
    asked = threading.Event()
    model = engine.rescorer()
    real_encode, real_plain = model.encode, engine._plain

    def encode(texts, batch_size=64):
        asked.set()
        return real_encode(texts, batch_size)

    started = []

    def plain(*args, **kwargs):
        out = real_plain(*args, **kwargs)
        started.append(asked.wait(wait))
        asked.clear()
        return out

    monkeypatch.setattr(model, "encode", encode)
    monkeypatch.setattr(engine, "_plain", plain)
    return started


def test_a_description_starts_the_second_model_while_the_keyword_side_ranks(engine, tmp_path, monkeypatch):
    """Where the walk that finds how many words the best papers match shows no paper matching more than
    half of them, the second model embeds the query before the keyword side has ranked, beside it; the
    results are the same as when it starts after."""
    query = "robot neutrino mutation flaky clay reactor"  # six words, no paper with more than two
    model = rescored_by(
        engine, tmp_path, {"2401.10004": [1, 0, 0, 0], "2401.10002": [0, 1, 0, 0]}, [1, 0, 0, 0]
    )
    engine.result_cache_size = engine.vector_cache_size = 0
    started = second_model_started(engine, monkeypatch, wait=5)
    early = engine.search(query, mode="hybrid")
    assert started == [True] and model.queries == [query]
    # Started after the keyword side (the guess says no), it gives the same results.
    monkeypatch.setattr("paperwire.search.service._likely_described", lambda matched, best: False)
    late = engine.search(query, mode="hybrid")
    assert started == [True, False] and model.queries == [query, query]
    assert [(h.id, h.score) for h in late.hits] == [(h.id, h.score) for h in early.hits]
    assert ids(early)[0] == "2401.10004"  # the second model's pick: its cosine was blended in


def test_the_second_model_is_not_started_where_a_paper_matches_most_words(engine, tmp_path, monkeypatch):
    model = rescored_by(engine, tmp_path, {"2401.10004": [1, 0, 0, 0]}, [1, 0, 0, 0])
    started = second_model_started(engine, monkeypatch, wait=0.5)
    # Five of the six words are in one paper: no description, and nothing for the second model to do.
    assert (
        ids(engine.search("mutation testing deep learning systems flaky", mode="hybrid"))[0] == "2401.10003"
    )
    assert started == [False] and model.queries == []


def test_warming_up_loads_both_models(engine, tmp_path):
    model = rescored_by(engine, tmp_path, {"2401.10004": [1, 0, 0, 0]}, [1, 0, 0, 0])
    engine.warm_up()
    assert model.queries == ["warm up"]
    assert (False, "warm up") in engine._vectors_cache  # the first model's, too

    def missing():
        raise ModelUnavailable("the packages are not installed")

    engine.rescorer = missing
    engine._vectors_cache.clear()
    engine.warm_up()  # says so in the log, and search goes on without it
    assert engine.rescorer is None


def test_search_goes_on_when_the_second_model_cannot_be_loaded(engine, tmp_path):
    query = "machine kneading pastry via utensils"
    alone = ids(engine.search(query, mode="semantic"))
    rescored_by(engine, tmp_path, {"2401.10004": [1, 0, 0, 0]}, [1, 0, 0, 0])

    def missing():
        raise ModelUnavailable("the packages are not installed")

    engine.rescorer = missing
    engine.result_cache_size = 0
    assert ids(engine.search(query, mode="semantic")) == alone
    assert engine.rescorer is None  # tried once, not on every query
    assert ids(engine.search(query, mode="hybrid"))[0] == "2401.10001"


@pytest.mark.slow
def test_mpnet_re_scoring_puts_the_described_paper_first(tmp_path, sqlite_store, embedder):
    """The shipped pair, on five sample papers: MiniLM alone ranks a paper on tungsten nanotubes above
    the one on how heat softens carbon nanotubes (grade 3 in bench/judgments.json); mpnet's re-scoring
    puts that one first."""
    wanted = {"0704.0183", "0704.0027", "0704.0055", "0704.0113", "0704.0008"}
    with gzip.open(SAMPLE, "rt") as f:
        papers = [paper_from_mapping(r, "sample") for r in map(json.loads, f) if r["id"] in wanted]
    sqlite_store.apply(papers)
    keyword = KeywordIndex(tmp_path / "keyword")
    keyword.catch_up(sqlite_store)
    vectors = VectorIndex(tmp_path / "minilm", embedder.dim)
    embed_backlog(sqlite_store, vectors, embedder)
    engine = SearchEngine(sqlite_store, keyword, vectors, lambda: embedder)
    query = "how heating weakens stiffness of rolled graphene cylinders"
    assert ids(engine.search(query, mode="hybrid"))[0] != "0704.0183"
    mpnet = MPNetEmbedder(cache_dir=tmp_path / "models")
    second = VectorIndex(tmp_path / "mpnet", mpnet.dim)
    embed_backlog(sqlite_store, second, mpnet)
    engine.rescore_with("mpnet", tmp_path / "mpnet", lambda: mpnet)
    assert ids(engine.search(query, mode="hybrid"))[0] == "0704.0183"
    assert ids(engine.search(query, mode="semantic"))[0] == "0704.0183"
