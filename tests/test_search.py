"""Search behaviour: ranking, typos, prefixes, syntax, filters, fallback, bad queries, index catch-up."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from paperwire.models import Author, Paper, Tombstone
from paperwire.search import Filters, QueryError, SearchEngine
from paperwire.search.keyword import IndexBusy, KeywordIndex
from paperwire.search.query import And, AndNot, DateRange, Or, Phrase, Word, parse_query


def p(
    pid: str,
    title: str,
    abstract: str = "",
    *,
    cats=("cs.CL",),
    authors=("Ada Lovelace",),
    day=1,
    month=1,
    year=2024,
) -> Paper:
    return Paper(
        id=pid,
        title=title,
        abstract=abstract,
        authors=[Author(a) for a in authors],
        categories=list(cats),
        published=datetime(year, month, day, tzinfo=UTC),
        source="test",
    )


def engine_over(tmp_path, store, papers) -> SearchEngine:
    """An engine over ``papers`` alone, indexed, with no result cache (each search runs)."""
    store.apply(papers)
    index = KeywordIndex(tmp_path / "ix")
    index.catch_up(store)
    engine = SearchEngine(store, index)
    engine.result_cache_size = 0
    return engine


CORPUS = [
    p(
        "2401.00001",
        "Speculative decoding for fast language model inference",
        "We draft tokens and verify them.",
    ),
    p(
        "2401.00002",
        "Fast inference with small draft models",
        "Speculative decoding accelerates generation.",
        day=2,
    ),
    p(
        "2401.00003",
        "Decoding strategies for machine translation",
        "Beam search and sampling compared.",
        day=3,
    ),
    p(
        "2401.00004",
        "Spanish trochaic verse and prosody",
        "A corpus study of Spanish poetry.",
        cats=("cs.CL", "cs.DL"),
        day=4,
    ),
    p(
        "2401.00005",
        "Reinforcement learning from human feedback",
        "Reward models trained on preferences.",
        cats=("cs.LG",),
        day=5,
    ),
    p(
        "2401.00006",
        "Neutrino oscillation in matter",
        "Oscillation probabilities of neutrinos.",
        cats=("hep-ph",),
        authors=("Adrian Del Maestro",),
        day=6,
        year=2023,
    ),
    p(
        "2401.00007",
        "Neutrino masses from cosmology",
        "Cosmological bounds on neutrino masses.",
        cats=("astro-ph.CO", "hep-ph"),
        day=7,
        month=2,
    ),
    p(
        "hep-th/9901001",
        "Strings and branes",
        "Old-style paper about D-branes.",
        cats=("hep-th",),
        authors=("Juan Maldacena",),
        year=1999,
    ),
]


@pytest.fixture
def engine(tmp_path, store) -> SearchEngine:
    store.apply(CORPUS)
    index = KeywordIndex(tmp_path / "index")
    index.catch_up(store)
    return SearchEngine(store, index)


def ids(result) -> list[str]:
    return [h.id for h in result.hits]


def test_title_match_ranks_above_abstract_match(engine):
    assert ids(engine.search("speculative decoding", mode="keyword"))[:2] == ["2401.00001", "2401.00002"]


def test_more_words_matched_ranks_higher(engine):
    r = engine.search("decoding inference fast", mode="keyword")
    # 00001 has all three words in its title; 00002 two of them; 00003 only "decoding".
    assert ids(r)[:3] == ["2401.00001", "2401.00002", "2401.00003"]


def test_typos_are_forgiven_and_rank_below_exact(engine):
    r = engine.search("speculatve decodng", mode="keyword")
    assert ids(r)[:2] == ["2401.00001", "2401.00002"]
    assert "typo" in " ".join(r.hits[0].matched)
    exact = engine.search("speculative decoding", mode="keyword").hits[0].score
    assert r.hits[0].score < exact


def test_typo_budget_depends_on_word_length(engine):
    assert ids(engine.search("neutrnio", mode="keyword"))  # 8 letters: 1 transposition allowed
    assert not ids(engine.search("nuetrnio", mode="keyword"))  # two edits in an 8-letter word
    assert ids(engine.search("reinforcment lerning", mode="keyword"))[0] == "2401.00005"
    assert ids(engine.search("reinfrocemnt", mode="keyword"))[0] == "2401.00005"  # 2 edits in 13 letters
    assert not ids(engine.search("bmae", mode="keyword"))  # short words must be exact ("beam")


def test_last_word_is_a_prefix(engine):
    r = engine.search("spanish troc", mode="keyword")
    assert ids(r)[0] == "2401.00004"
    assert "<mark>trochaic</mark>" in str(r.hits[0].title_html).lower()
    assert ids(engine.search("reinforcement lear", mode="keyword"))[0] == "2401.00005"


def test_authors_are_searchable(engine):
    assert ids(engine.search("maldacena", mode="keyword")) == ["hep-th/9901001"]
    assert ids(engine.search("au:del_maestro", mode="keyword")) == ["2401.00006"]
    assert ids(engine.search('au:"Del Maestro"', mode="keyword")) == ["2401.00006"]


def test_field_prefixes(engine):
    assert ids(engine.search("ti:inference", mode="keyword")) == ["2401.00001", "2401.00002"] or set(
        ids(engine.search("ti:inference", mode="keyword"))
    ) == {"2401.00001", "2401.00002"}
    assert ids(engine.search("abs:speculative", mode="keyword")) == ["2401.00002"]
    assert set(ids(engine.search("cat:hep-ph", mode="keyword"))) == {"2401.00006", "2401.00007"}
    assert set(ids(engine.search("cat:astro-ph.*", mode="keyword"))) == {"2401.00007"}
    assert set(ids(engine.search("all:neutrino", mode="keyword"))) == {"2401.00006", "2401.00007"}


def test_boolean_operators_and_phrases(engine):
    assert ids(engine.search("neutrino ANDNOT oscillation", mode="keyword")) == ["2401.00007"]
    assert set(ids(engine.search("branes OR rewards", mode="keyword"))) == {"hep-th/9901001", "2401.00005"}
    assert set(ids(engine.search("ti:neutrino AND cat:astro-ph.CO", mode="keyword"))) == {"2401.00007"}
    assert ids(engine.search('"draft models"', mode="keyword")) == ["2401.00002"]
    assert ids(engine.search('"models draft"', mode="keyword")) == []
    r = engine.search("(neutrino OR strings) ANDNOT cat:hep-ph", mode="keyword")
    assert ids(r) == ["hep-th/9901001"]


def test_wildcards_as_arxiv_writes_them(tmp_path, store):
    papers = [
        p(
            "2401.00011",
            "Transformers for protein folding",
            "Attention over residues.",
            authors=("Foutse Khomh",),
        ),
        p(
            "2401.00012",
            "Graph neural networks",
            "We transform graphs into sequences.",
            authors=("Ada Khor",),
        ),
        p("2401.00013", "Colour and color constancy", "Perception of hue.", authors=("Ann Kolar",)),
        p("2401.00014", "Schroedinger bridges", "Entropic transport.", authors=("Bo Li",)),
        p("2401.00015", "What is attention", "Attention in psychology.", authors=("Kim Chung",)),
    ]
    engine = engine_over(tmp_path, store, papers)
    # "*": any letters; in a title it ranks above the abstract, as a word typed whole does.
    r = engine.search("transform*", mode="keyword")
    assert ids(r) == ["2401.00011", "2401.00012"]
    assert "<mark>Transformers</mark>" in r.hits[0].title_html
    assert "<mark>transform</mark>" in r.hits[1].abstract_html
    # In a field: names by their beginning, every one (not only the commonest completions).
    r = engine.search("au:kho*", mode="keyword")
    assert set(ids(r)) == {"2401.00011", "2401.00012"}
    assert r.hits[0].marks("authors")[0].query_word == "kho*"
    assert ids(engine.search("ti:transform*", mode="keyword")) == ["2401.00011"]
    assert ids(engine.search("abs:transform*", mode="keyword")) == ["2401.00012"]
    # "?": one letter, inside a word; with other syntax; case and accents folded.
    assert ids(engine.search("colo?r", mode="keyword")) == ["2401.00013"]
    assert ids(engine.search("ti:colo?r AND au:kol*", mode="keyword")) == ["2401.00013"]
    assert ids(engine.search("SCHR*dinger", mode="keyword")) == ["2401.00014"]
    assert ids(engine.search("transform* ANDNOT ti:graph", mode="keyword")) == ["2401.00011"]
    # Hybrid and semantic modes search a wildcard by its words, as they do field syntax.
    assert set(ids(engine.search("transform*"))) == {"2401.00011", "2401.00012"}
    # A "?" that ends a word ends a question; a pattern needs two letters before its first wildcard.
    q = parse_query("what is attention?")
    assert q.plain and q.root.parts[-1] == Word("attention?", prefix=True)
    assert "2401.00015" in ids(engine.search("what is attention?", mode="keyword"))
    assert parse_query("A* search").plain
    assert not parse_query("transform* search").plain


def test_invalid_syntax_falls_back_to_plain_words(engine):
    for text in ['"speculative decoding', "(speculative decoding", "speculative AND", "OR decoding ti:"]:
        r = engine.search(text, mode="keyword")
        assert r.fallback, text
        assert "2401.00001" in ids(r), text


def test_filters(engine):
    f = Filters(categories=("hep-ph",))
    assert set(ids(engine.search("neutrino", f, mode="keyword"))) == {"2401.00006", "2401.00007"}
    f = Filters(categories=("astro-ph.*",))
    assert ids(engine.search("neutrino", f, mode="keyword")) == ["2401.00007"]
    f = Filters(published_from=date(2024, 1, 1))
    assert ids(engine.search("neutrino", f, mode="keyword")) == ["2401.00007"]
    f = Filters(published_to=date(2023, 12, 31))
    assert ids(engine.search("", f, mode="keyword")) == ["2401.00006", "hep-th/9901001"]
    f = Filters(authors=("Juan Maldacena",))
    assert ids(engine.search("", f, mode="keyword")) == ["hep-th/9901001"]
    r = engine.search("", Filters(categories=("cs.*",)), mode="keyword")
    assert r.total == 5


def test_empty_query_lists_newest_with_pagination(engine):
    first = engine.search("   ", per_page=3, mode="keyword")
    assert first.total == len(CORPUS)
    assert ids(first) == ["2401.00007", "2401.00005", "2401.00004"]
    second = engine.search("", page=2, per_page=3, mode="keyword")
    assert ids(second) == ["2401.00003", "2401.00002", "2401.00001"]
    assert first.pages == 3


def test_sort_by_date(engine):
    r = engine.search("neutrino", sort="date", mode="keyword")
    assert ids(r) == ["2401.00007", "2401.00006"]


def test_bad_queries_get_clear_errors(engine):
    with pytest.raises(QueryError, match="too long"):
        engine.search("x" * 501)
    with pytest.raises(QueryError, match="control characters"):
        engine.search("neutrino\x00")
    with pytest.raises(QueryError, match="mode"):
        engine.search("x", mode="magic")
    with pytest.raises(QueryError, match="not available"):
        engine.search("x", page=10_000, per_page=100)


def test_highlights_are_escaped(tmp_path, sqlite_store):
    sqlite_store.apply(
        [p("2401.00009", "<script>alert(1)</script> & attention", "Attention <b>is</b> all & more.")]
    )
    index = KeywordIndex(tmp_path / "ix")
    index.catch_up(sqlite_store)
    hit = SearchEngine(sqlite_store, index).search("attention", mode="keyword").hits[0]
    assert str(hit.title_html) == "&lt;script&gt;alert(1)&lt;/script&gt; &amp; <mark>attention</mark>"
    assert "<b>" not in str(hit.abstract_html) and "<mark>Attention</mark>" in str(hit.abstract_html)


def test_a_bulk_index_of_eight_commits_ends_as_one_segment(tmp_path, sqlite_store):
    """Every query pays per segment. A bulk index commits every COMMIT_EVERY papers, one segment each,
    and tantivy merges eight segments of a size into one: catch_up returns once that merge is done."""
    sqlite_store.apply([p(f"2401.{i:05d}", f"Paper {i} on decoding", "An abstract.") for i in range(8 * 40)])
    index = KeywordIndex(tmp_path / "kw")
    assert index.catch_up(sqlite_store, batch=40, commit_every=40) == 320
    searcher = index.searcher()
    assert searcher.num_docs == 320 and searcher.num_segments == 1


def test_index_catches_up_incrementally_and_idempotently(tmp_path, store):
    index = KeywordIndex(tmp_path / "ix")
    store.apply(CORPUS[:3])
    assert index.catch_up(store) == 3
    assert index.catch_up(store) == 0
    engine = SearchEngine(store, index)
    assert engine.search("neutrino", mode="keyword").total == 0
    store.apply(CORPUS[3:])
    assert index.catch_up(store) == len(CORPUS) - 3
    assert engine.search("neutrino", mode="keyword").total == 2
    # An update replaces the document; a deletion removes it.
    later = datetime(2025, 1, 1, tzinfo=UTC)
    store.apply([replace(CORPUS[5], version=2, title="Sterile neutrinos", updated=later)])
    store.apply(
        [
            replace(
                CORPUS[6],
                version=2,
                title="Tachyons everywhere",
                abstract="Faster than light.",
                updated=later,
            )
        ]
    )
    store.apply([Tombstone("hep-th/9901001")])
    assert index.catch_up(store) == 3
    assert ids(engine.search("neutrino", mode="keyword")) == ["2401.00006"]
    assert engine.search("oscillation", mode="keyword").hits[0].title == "Sterile neutrinos"
    assert ids(engine.search("tachyons", mode="keyword")) == ["2401.00007"]
    assert engine.search("branes", mode="keyword").total == 0
    assert index.change_seq == store.last_change_seq()
    rebuilt = index.catch_up(store, rebuild=True)
    assert rebuilt == len(CORPUS) and engine.search("", mode="keyword").total == len(CORPUS) - 1


def test_one_writer_at_a_time(tmp_path, sqlite_store):
    index = KeywordIndex(tmp_path / "ix")
    writer = index._writer()
    try:
        with pytest.raises(IndexBusy):
            KeywordIndex(tmp_path / "ix").catch_up(sqlite_store)
    finally:
        writer.rollback()
        del writer


def test_reader_process_sees_writers_commits(tmp_path, sqlite_store):
    """A long-lived reader (like a web worker) picks up another process's commits without restarting."""
    index = KeywordIndex(tmp_path / "ix")
    sqlite_store.apply(CORPUS[:2])
    index.catch_up(sqlite_store)
    reader = SearchEngine(sqlite_store, index)
    assert reader.search("neutrino", mode="keyword").total == 0
    sqlite_store.apply(CORPUS[2:])
    writer = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from paperwire.search.keyword import KeywordIndex; from paperwire.store import Store;"
            "print(KeywordIndex(sys.argv[1]).catch_up(Store.open(sys.argv[2])))",
            str(tmp_path / "ix"),
            str(sqlite_store.engine.url),
        ],
        capture_output=True,
        text=True,
        env=os.environ,
        check=True,
    )
    assert writer.stdout.strip() == str(len(CORPUS) - 2)
    assert reader.search("neutrino", mode="keyword").total == 2


def test_parser_shapes():
    assert parse_query("a b").root == And((Word("a"), Word("b", prefix=True)))
    assert parse_query('ti:"x y" OR au:z').root == Or((Phrase(("x", "y"), "title"), Word("z", "authors")))
    q = parse_query("a ANDNOT b")
    assert q.root == AndNot(Word("a"), Word("b")) and not q.plain
    q = parse_query("submittedDate:[202301010000 TO 202312312359]")
    assert isinstance(q.root, DateRange) and q.root.start.year == 2023 and q.root.end.month == 12
    assert parse_query("ti:(quantum gravity)").root == And(
        (Word("quantum", "title"), Word("gravity", "title"))
    )
    assert parse_query("").root is None
    # Parentheses inside a word are part of it (groups and theories), after a space they group.
    assert parse_query("f(R) gravity").root == And((Word("f(R)"), Word("gravity", prefix=True)))
    assert parse_query("(SU(3) OR f(R))").root == Or((Word("SU(3)"), Word("f(R)")))
    assert parse_query("test AND(flaky OR mutation)").root == And(
        (Word("test"), Or((Word("flaky"), Word("mutation"))))
    )


def test_two_phase_ranking_keeps_title_matches_when_candidates_are_cut(tmp_path, sqlite_store, monkeypatch):
    """The cheap BM25 candidate query prefers papers repeating the word in long abstracts; the title
    candidate set must still bring the paper with the word in its title to the top."""
    from paperwire.search import service

    heavy = [
        p(f"2402.0000{i}", f"Study number {i}", "decoding " * 30 + "and decoding again.", day=i)
        for i in range(1, 6)
    ]
    titled = p("2402.00009", "Decoding", "A short abstract about something else.", day=9)
    sqlite_store.apply([*heavy, titled])
    index = KeywordIndex(tmp_path / "ix")
    index.catch_up(sqlite_store)
    engine = SearchEngine(sqlite_store, index)
    monkeypatch.setattr(service, "CANDIDATES", 2)
    r = engine.search("decoding", per_page=2, mode="keyword")
    assert r.total == 6
    assert ids(r)[0] == "2402.00009"
    assert len(r.hits) == 2


def test_candidates_ids_come_from_the_key_column_and_from_stored_ids_without_one(
    tmp_path, sqlite_store, monkeypatch
):
    """Two-phase ranking reads its candidates' ids from the numeric "key" column; an id with no key
    (an old-style archive too long to pack) is read from the stored document instead."""
    import tantivy

    from paperwire.search import service

    papers = [
        p("2402.00001", "Decoding graphs", "decoding " * 5),
        p("hep-th/9901001", "Decoding strings", "decoding " * 4),
        p("verylongarchive/9901002", "Decoding everything", "decoding " * 3),
        p("0704.0001", "Decoding diphotons", "decoding " * 2),
    ]
    sqlite_store.apply(papers)
    index = KeywordIndex(tmp_path / "ix")
    index.catch_up(sqlite_store)
    searcher = index.searcher()
    hits = searcher.search(tantivy.Query.all_query(), limit=10).hits
    keys = searcher.fast_field_values("key", [a for _, a in hits])
    assert sum(k is None for k in keys) == 1
    assert sorted(index.ids(searcher, hits)) == sorted(x.id for x in papers)
    monkeypatch.setattr(service, "CANDIDATES", 2)  # the two-phase path, with title candidates
    r = SearchEngine(sqlite_store, index).search("decoding", mode="keyword")
    assert sorted(ids(r)) == sorted(x.id for x in papers)
    assert r.total == 4


def test_an_index_from_another_version_is_rebuilt_from_the_store(tmp_path, sqlite_store):
    import json

    from paperwire.models import Paper
    from paperwire.search.keyword import STATE_FILE, KeywordIndex

    sqlite_store.apply([Paper(id="2401.00001", title="Flaky tests in continuous integration")])
    old = tmp_path / "keyword"
    old.mkdir()
    (old / STATE_FILE).write_text(json.dumps({"schema": 1, "change_seq": 99, "docs": 1}))
    (old / "meta.json").write_text("{not an index of this version")
    index = KeywordIndex(old)
    assert index.change_seq == 0
    assert index.catch_up(sqlite_store) == 1
    assert index.searcher().num_docs == 1


def test_hits_without_highlights_for_clients_that_show_none(tmp_path, sqlite_store):
    sqlite_store.apply([p("2401.00009", "<script>x</script> & attention", "Attention is all & more.")])
    index = KeywordIndex(tmp_path / "index")
    index.catch_up(sqlite_store)
    engine = SearchEngine(sqlite_store, index)
    plain = engine.search("attention", mode="keyword", highlight=False).hits[0]
    assert str(plain.title_html) == "&lt;script&gt;x&lt;/script&gt; &amp; attention"  # escaped, unmarked
    assert "<mark>" not in str(plain.abstract_html) and plain.matched == []
    marked = engine.search("attention", mode="keyword").hits[0]  # not served from the other's cache entry
    assert "<mark>attention</mark>" in str(marked.title_html)


def test_several_words_rank_every_match_not_only_the_best_by_bm25(tmp_path, sqlite_store, monkeypatch):
    """A paper with one word in its title and the other once in its abstract outranks papers repeating
    both words in long abstracts, however few candidates BM25 would have picked."""
    from paperwire.search import service

    heavy = [
        p(f"2402.0000{i}", f"Study number {i}", "decoding speech " * 4 + "again.", day=i) for i in range(1, 6)
    ]
    filler = " ".join(f"filler{n}" for n in range(200))
    titled = p("2402.00009", "Decoding methods", f"A long abstract: {filler}, and speech once.", day=9)
    engine = engine_over(tmp_path, sqlite_store, [*heavy, titled])
    monkeypatch.setattr(service, "CANDIDATES", 2)
    for as_you_type in (True, False):
        r = engine.search("decoding speech", per_page=2, mode="keyword", as_you_type=as_you_type)
        assert r.total == 6
        assert ids(r)[0] == "2402.00009"


def test_one_ranking_query_scores_like_the_full_ranking_of_every_match(tmp_path, sqlite_store):
    """The ranking query's scores (plus its offset) are the full ranking query's plus the tie-break (the
    words' BM25 in title and abstract) and the abstract's phrase bonus (looked up for the first results
    alone), for every kind of word: exact, typo, prefix, author, in parts (each written both hyphenated
    and solid: "gpt-4" and "gpt4")."""
    from tantivy import Occur, Query

    from paperwire.search.keyword import PHRASE_BONUS, TIE_BREAK, plain_tokens, stem_of

    rng = random.Random(11)
    vocab = [
        "decoding",
        "speculative",
        "draft",
        "tokens",
        "verify",
        "neural",
        "transducer",
        "gpt-4",
        "beam",
        "gpt4",
    ]
    names = ["Ada Lovelace", "Grace Draft", "Alan Turing"]
    papers = [
        p(
            f"2405.{i:05d}",
            " ".join(rng.choices(vocab, k=rng.randint(2, 5))).capitalize(),
            " ".join(rng.choices(vocab + ["the", "of", "results"], k=rng.randint(5, 40))),
            authors=(rng.choice(names),),
            day=1 + i % 28,
        )
        for i in range(150)
    ]
    engine = engine_over(tmp_path, sqlite_store, papers)
    searcher = engine.keyword.searcher()
    builder = engine.builder
    checked = phrased_first = 0
    queries = (
        "decoding draft",
        "speculatve tokens",
        "neural transd",
        "draft gpt-4 beam",
        "verify draft",
        "gpt4 beam",
    )
    for text in queries:
        result = engine.search(text, per_page=10, mode="keyword")
        words, phrases = engine._plain_parts(parse_query(text).root)
        builder.searcher = searcher
        stems = [stem_of(t) for w in words for t in plain_tokens(w.text)]
        stems += [stem_of(solid[0]) for w in words if (solid := builder.joined(w)) is not None]
        assert ("gpt4" in stems) == ("gpt" in text), text
        terms = Query.boolean_query(
            [(Occur.Should, Query.term_query(engine.keyword.schema, "text", s)) for s in stems]
        )
        bm25 = {(a.segment_ord, a.doc): float(s) for s, a in searcher.search(terms, limit=1000).hits}
        full = searcher.search(builder.plain(words, phrases, len(words), light_bonus=True), limit=1000).hits
        typed = [stem_of(t) for w in words for t in plain_tokens(w.text)]
        in_a_row = Query.phrase_query(engine.keyword.schema, "abstract", typed)
        phrased = {(a.segment_ord, a.doc) for _, a in searcher.search(in_a_row, limit=1000).hits}
        scores = sorted(
            (
                float(s)
                + TIE_BREAK * bm25.get((a.segment_ord, a.doc), 0.0)
                + (PHRASE_BONUS["abstract"] if (a.segment_ord, a.doc) in phrased else 0.0),
                (a.segment_ord, a.doc) in phrased,
            )
            for s, a in full
        )[::-1][:10]
        expected = [score for score, _ in scores]
        phrased_first += sum(in_phrase for _, in_phrase in scores)
        assert len(full) >= 10 and not result.relaxed
        assert [h.score for h in result.hits] == pytest.approx(expected, abs=2e-3), text
        checked += 1
    assert checked == len(queries)
    assert phrased_first > 0  # the abstract's phrase bonus took part


def test_a_word_no_paper_has_is_dropped_first(engine):
    """Relaxing a query drops the words nothing matches (a short word no paper has): the results are
    those of the other words, flagged as relaxed; a word some paper has stays."""
    plain = engine.search("decoding", mode="keyword", as_you_type=False)
    dropped = engine.search("decoding qzx", mode="keyword", as_you_type=False)
    assert ids(dropped) == ids(plain) and dropped.relaxed and not plain.relaxed
    engine.builder.searcher = engine.keyword.searcher()
    assert engine.builder.matches_nothing(Word("qzx"))
    assert engine.builder.matches_nothing(Word("gpt-qzx"))  # every part must match
    assert not engine.builder.matches_nothing(Word("beam"))  # in an abstract
    assert not engine.builder.matches_nothing(Word("lovelace"))  # an author
    assert not engine.builder.matches_nothing(Word("decodes"))  # its stem
    assert not engine.builder.matches_nothing(Word("speculatve"))  # corrected for typos
    assert not engine.builder.matches_nothing(Word("qz", prefix=True))  # completed as typed
    assert engine.search("decoding qzx", mode="keyword", as_you_type=False, relax=False).hits == []


def test_hyphenated_words_are_also_indexed_written_solid():
    from paperwire.search.keyword import compounds_of

    text = "Non-linear pre-training of GPT-4 (see arXiv:hep-th/9901001): 2-3 I-V curves, non-linear again"
    assert compounds_of(text).split() == ["nonlinear", "pretraining", "gpt4", "hepth"]
    assert compounds_of("Spectral methods") == ""


HYPHENATED = [
    p("2403.00001", "Nonlinear dynamics of coupled oscillators", "We study chaos."),
    p("2403.00002", "Non-linear optics in fibres", "Solitons.", day=2),
    p("2403.00003", "Solitons in fibres", "A non-linear Schrodinger model of pulses.", day=3),
    p("2403.00004", "Fibre lasers", "Non-circular cores and a linear cavity.", day=4),
    p("2403.00005", "Spectral methods", "Chebyshev polynomials.", day=5),
]


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("nonlinear", {"2403.00001", "2403.00002", "2403.00003"}),
        ("non-linear", {"2403.00001", "2403.00002", "2403.00003"}),
        ("Non-Linear fibres", {"2403.00002", "2403.00003"}),
        ("nonlinaer", {"2403.00001", "2403.00002", "2403.00003"}),  # a typo of the solid word
        ("ti:nonlinear", {"2403.00001", "2403.00002"}),
        ("nonlin", {"2403.00001", "2403.00002", "2403.00003"}),  # being typed
        ("non-lin", {"2403.00001", "2403.00002", "2403.00003"}),
    ],
)
def test_a_word_written_hyphenated_or_solid_finds_both(tmp_path, sqlite_store, query, first):
    """ "nonlinear" finds the papers that write "non-linear" and the other way round, ranked alike; a
    paper with "non" and "linear" apart still matches the parts, below those."""
    engine = engine_over(tmp_path, sqlite_store, HYPHENATED)
    result = engine.search(query, mode="keyword")
    assert set(ids(result)[: len(first)]) == first, ids(result)
    assert "2403.00005" not in ids(result)
    if query == "non-linear":
        assert ids(result)[3:] == ["2403.00004"]


def test_a_word_written_the_other_way_is_marked_whole(tmp_path, sqlite_store):
    engine = engine_over(tmp_path, sqlite_store, HYPHENATED)
    hits = {h.id: h for h in engine.search("nonlinear", mode="keyword").hits}
    assert str(hits["2403.00002"].title_html) == "<mark>Non-linear</mark> optics in fibres"
    assert "A <mark>non-linear</mark> Schrodinger" in str(hits["2403.00003"].abstract_html)
    assert 'title: "nonlinear"' in hits["2403.00002"].matched
    hits = {h.id: h for h in engine.search("non-linear", mode="keyword").hits}
    assert str(hits["2403.00001"].title_html) == "<mark>Nonlinear</mark> dynamics of coupled oscillators"
    assert str(hits["2403.00002"].title_html) == "<mark>Non-linear</mark> optics in fibres"
    # Apart, the parts are marked as the words they are.
    assert "<mark>Non</mark>-circular" in str(hits["2403.00004"].abstract_html)
    hits = {h.id: h for h in engine.search("nonlin", mode="keyword").hits}
    assert str(hits["2403.00002"].title_html) == "<mark>Non-linear</mark> optics in fibres"


def test_two_words_often_written_as_one_find_it(tmp_path, sqlite_store):
    """ "fine tuning" finds "finetuning" and "fine-tuning" too, ranked with the papers that have both
    words, and marked whole; a pair that papers rarely write as one (here 1 in 60) is left as two words."""
    papers = [
        p("2404.00001", "Finetuning vision transformers", "Adapters."),
        p("2404.00002", "Fine-tuning language models", "Low-rank updates.", day=2),
        p("2404.00003", "Fine tuning of hyperparameters", "Grid search.", day=3),
        p("2404.00004", "Fine grids", "Tuning forks.", day=4),
        p("2404.00005", "Spectral methods", "Chebyshev polynomials.", day=5),
        p("2404.00006", "A language-model benchmark", "Tasks.", day=6),
    ] + [p(f"2404.{i:05d}", f"Language model study {i}", "Tasks.", day=7) for i in range(10, 70)]
    engine = engine_over(tmp_path, sqlite_store, papers)
    for query in ("fine tuning", "Fine Tuning", "fine tunin"):
        result = engine.search(query, mode="keyword")
        assert set(ids(result)[:3]) == {"2404.00001", "2404.00002", "2404.00003"}, (query, ids(result))
        assert ids(result)[3:] == ["2404.00004"], query
    hits = {h.id: h for h in engine.search("fine tuning", mode="keyword").hits}
    assert str(hits["2404.00001"].title_html) == "<mark>Finetuning</mark> vision transformers"
    assert str(hits["2404.00002"].title_html) == "<mark>Fine-tuning</mark> language models"
    engine.builder.searcher = engine.keyword.searcher()
    pair = engine.builder.with_solid_pairs([Word("fine"), Word("tuning")])
    assert pair == [Word("fine-tuning")]
    two = [Word("language"), Word("model")]
    assert engine.builder.with_solid_pairs(two) == two
    assert engine.builder.with_solid_pairs([Word("spectral"), Word("methods")]) == [
        Word("spectral"),
        Word("methods"),
    ]


def test_words_in_a_row_in_the_abstract_rank_above_the_same_words_apart(tmp_path, sqlite_store, monkeypatch):
    """Among papers that match the same words the same way, those whose abstract has them in a row
    ("wave function") rank first, also in the first pages of a query ranked in one pass; pages past the
    re-ordered window neither repeat nor skip a paper."""
    from paperwire.search import service

    apart = [
        p(
            f"2406.{i:05d}",
            f"Ocean study {i}",
            "Wave height as a function of wave period and wave speed.",
            day=i,
        )
        for i in range(1, 9)
    ]
    in_a_row = [
        p(
            f"2406.{i:05d}",
            f"Atoms {i}",
            "We compute the wave function of trapped atoms in a harmonic potential over a long time.",
            day=i,
        )
        for i in range(9, 12)
    ]
    engine = engine_over(tmp_path, sqlite_store, apart + in_a_row)
    phrased = {"2406.00009", "2406.00010", "2406.00011"}
    result = engine.search("wave function", mode="keyword", as_you_type=False)
    assert set(ids(result)[:3]) == phrased, ids(result)
    assert result.total == 11 and not result.relaxed
    hits = {h.id: h for h in result.hits}
    assert hits["2406.00009"].score > hits["2406.00001"].score
    every = [p.id for p in apart + in_a_row]
    # A window that holds every match, and one that ends before the papers it would lift (they stay
    # where plain scores put them: last).
    for window, first in ((12, phrased), (4, {"2406.00001", "2406.00002", "2406.00003"})):
        monkeypatch.setattr(service, "RESCORE_WINDOW", window)
        for per_page in (1, 2, 3):
            pages = [
                ids(
                    engine.search(
                        "wave function", mode="keyword", as_you_type=False, page=n, per_page=per_page
                    )
                )
                for n in range(1, 11 // per_page + 2)
            ]
            seen = [pid for page in pages for pid in page]
            assert sorted(seen) == sorted(every), (window, per_page, pages)
            assert set(seen[:3]) == first, (window, per_page, pages)


def test_greek_letters_match_by_name_whichever_way_a_paper_or_a_query_writes_them(tmp_path, sqlite_store):
    """arXiv's sources mostly write "$\\Lambda$CDM" (to the tokenizer "lambda", "cdm"), some "ΛCDM"; a
    reader types what the page shows ("ΛCDM") or the name. Each form finds every paper, and a Greek
    word (not a symbol) stays as it is."""
    from paperwire.search.keyword import spelled_greek

    assert spelled_greek("ΛCDM and $ω$Test") == "Lambda-CDM and $omega$Test"
    assert spelled_greek("αβ-phase, 5 \u00b5m") == "alpha-beta-phase, 5 mu-m"
    assert spelled_greek("Μελέτη της ύλης") == "Μελέτη της ύλης"
    papers = [
        p("2407.00001", "Constraints on $\\Lambda$CDM from supernovae", "We test the $\\Lambda$CDM model."),
        p("2407.00002", "Beyond ΛCDM with lensing", "The ΛCDM model fits.", day=2),
        p("2407.00003", "Cold dark matter halos", "We test CDM halos.", day=3),
        p("2407.00004", "Bursts", "Short γ-ray bursts seen by Fermi.", day=4),
        p("2407.00005", "Bursts again", "Long $\\gamma$-ray bursts.", day=5),
        p("2407.00006", "$ω$Test: testing web views", "Android.", day=6),
        p("2407.00007", "Test generation", "We test tests.", day=7),
        p("2407.00008", "Μελέτη της ύλης", "A Greek title.", day=8),
        p("2407.00009", "Small $\\varepsilon$-nets", "Bounds for $\\varphi$.", day=9),
    ]
    engine = engine_over(tmp_path, sqlite_store, papers)
    for query in ("ΛCDM", "λcdm", "Lambda CDM", "lambda-CDM", "ΛCDM model", '"ΛCDM model"', "ti:ΛCDM"):
        assert set(ids(engine.search(query, mode="keyword"))) == {"2407.00001", "2407.00002"}, query
    for query in ("γ-ray bursts", "gamma-ray bursts", "γ-ray"):
        assert set(ids(engine.search(query, mode="keyword"))) == {"2407.00004", "2407.00005"}, query
    assert ids(engine.search("ωTest", mode="keyword")) == ["2407.00006"]
    assert ids(engine.search("omega test", mode="keyword"))[0] == "2407.00006"
    assert ids(engine.search("Μελέτη", mode="keyword")) == ["2407.00008"]
    for query in ("ε-nets", "epsilon nets", "$\\epsilon$-nets", "φ"):  # LaTeX's variant letters
        assert ids(engine.search(query, mode="keyword"))[0] == "2407.00009", query
    hits = {h.id: h for h in engine.search("ΛCDM", mode="keyword").hits}
    assert str(hits["2407.00001"].title_html) == "Constraints on <mark>ΛCDM</mark> from supernovae"
    assert str(hits["2407.00002"].title_html) == "Beyond <mark>ΛCDM</mark> with lensing"
    # Written solid, the name finds both forms and marks each whole, in title and abstract alike.
    hits = {h.id: h for h in engine.search("LambdaCDM", mode="keyword").hits}
    assert set(hits) == {"2407.00001", "2407.00002"}
    for paper in hits.values():
        assert "<mark>ΛCDM</mark>" in str(paper.title_html), paper.id
        assert "<mark>ΛCDM</mark>" in str(paper.abstract_html), paper.id
    # A Greek word is marked as the index matched it (folding to ASCII would lose every letter of it).
    hit = engine.search("Μελέτη", mode="keyword").hits[0]
    assert str(hit.title_html) == "<mark>Μελέτη</mark> της ύλης"
    assert hit.matched == ['title: "μελέτη"']


def test_groups_and_theories_written_with_parentheses_are_words(tmp_path, sqlite_store):
    """ "SU(3)" and "f(R)" are what physicists type; they were "SU" AND "3" (an author Su and any 3)."""
    papers = [
        p("2409.00001", "Lattice SU(3) gauge theory", "Confinement.", authors=("Wei Su",)),
        p("2409.00002", "Cosmology in f(R) gravity", "Modified gravity.", day=2),
        p("2409.00003", "Su and friends", "We count 3 things in gravity.", authors=("Wei Su",), day=3),
    ]
    engine = engine_over(tmp_path, sqlite_store, papers)
    # The parts in a row rank first (the paper by Su counting 3 things matches them apart).
    assert ids(engine.search("SU(3)", mode="keyword"))[0] == "2409.00001"
    assert ids(engine.search("f(R) gravity", mode="keyword"))[0] == "2409.00002"
    assert set(ids(engine.search("SU(3) OR f(R)", mode="keyword"))[:2]) == {"2409.00001", "2409.00002"}
    assert (
        str(engine.search("SU(3)", mode="keyword").hits[0].title_html)
        == "Lattice <mark>SU</mark>(<mark>3</mark>) gauge theory"
    )


def test_formulas_that_latex_splits_are_found_as_a_reader_types_them(tmp_path, sqlite_store):
    """ "MoS$_2$" is "mos", "2" to the tokenizer, and the page shows "MoS₂"; a reader types "MoS2". The
    index joins a formula's subscripts and an isotope's mass number ("$^{3}$He") to their letters, and
    marks the formula whole; maths ("$x_2$", "cm$^{-2}$") is left as it is."""
    from paperwire.search.keyword import joined_scripts

    assert joined_scripts("Bi$_2$Se$_3$, TiSe$_{2}$ and $^{13}$C") == "Bi2Se3, TiSe2 and 13C"
    assert joined_scripts("$x_2$ in cm$^{-2}$, fm$^3$") == "$x_2$ in cm$^{-2}$, fm$^3$"
    papers = [
        p("2408.00001", "Excitons in monolayer MoS$_2$", "We grow MoS$_{2}$ flakes on Bi$_2$Se$_3$."),
        p("2408.00002", "MoS₂ transistors", "Channels of MoS₂.", day=2),
        p("2408.00003", "Superfluid $^{3}$He films", "Films of $^3$He on graphite.", day=3),
        p("2408.00004", "Molybdenum", "The MoS 2 line.", day=4),
    ]
    engine = engine_over(tmp_path, sqlite_store, papers)
    for query in ("MoS2", "mos2", "MoS$_2$"):
        assert set(ids(engine.search(query, mode="keyword"))) == {"2408.00001", "2408.00002"}, query
    assert ids(engine.search("Bi2Se3", mode="keyword")) == ["2408.00001"]
    assert ids(engine.search("3He", mode="keyword")) == ["2408.00003"]
    hits = {h.id: h for h in engine.search("MoS2 flakes", mode="keyword").hits}
    assert str(hits["2408.00001"].title_html) == "Excitons in monolayer <mark>MoS₂</mark>"
    assert "We grow <mark>MoS₂</mark> <mark>flakes</mark> on Bi₂Se₃." in str(hits["2408.00001"].abstract_html)
    assert hits["2408.00001"].matched == ['title: "mos2"', 'abstract: "mos2", "flakes"']


def test_a_word_often_written_as_two_finds_them_in_a_row(tmp_path, sqlite_store):
    """ "wavefunction" also finds "wave function(s)" written as two words in a row, scored as the word
    (title matches first) and marked whole; not the two words apart. A split that papers rarely write
    ("net work" beside many "network"s) or one with a function word ("over all") is no such form."""
    papers = [
        p("2405.00001", "Wavefunction renormalization", "Scaling."),
        p("2405.00002", "The wave function of the universe", "Boundary conditions.", day=2),
        p("2405.00003", "Quantum collapse", "We compute the wave functions of trapped atoms.", day=3),
        p("2405.00004", "Wave packets", "A function of time.", day=4),
        p("2405.00005", "Spectral methods", "Chebyshev polynomials.", day=5),
        p("2405.00006", "Engines", "The net work extracted per cycle.", day=6),
        p("2405.00007", "Sums", "A sum over all states.", day=7),
        p("2405.00008", "Overall trends", "Surveys.", day=8),
    ] + [p(f"2405.{i:05d}", f"Network study {i}", "Graphs.", day=9) for i in range(10, 50)]
    engine = engine_over(tmp_path, sqlite_store, papers)
    for query in ("wavefunction", "Wavefunction", "wavefunctions"):
        result = engine.search(query, mode="keyword")
        assert set(ids(result)[:2]) == {"2405.00001", "2405.00002"}, (query, ids(result))
        assert ids(result)[2:] == ["2405.00003"], (query, ids(result))
    hits = {h.id: h for h in engine.search("wavefunction", mode="keyword").hits}
    assert str(hits["2405.00002"].title_html) == "The <mark>wave function</mark> of the universe"
    assert "<mark>wave functions</mark> of trapped" in str(hits["2405.00003"].abstract_html)
    assert hits["2405.00003"].matched == ['abstract: "wavefunction" (stem)']
    # With another word (matching both comes first), and as the last word being typed.
    assert ids(engine.search("collapse wavefunction", mode="keyword"))[0] == "2405.00003"
    assert ids(engine.search("quantum wavefunction", mode="keyword", relax=False)) == ["2405.00003"]
    engine.builder.searcher = engine.keyword.searcher()
    assert engine.builder.written_apart("wavefunction") == ("wave", "function")
    assert engine.builder.written_apart("network") is None  # 1 "net work" beside 40 "network"
    assert "2405.00006" not in ids(engine.search("network", mode="keyword", per_page=100))
    assert engine.builder.written_apart("overall") is None  # "over" is a function word
    assert ids(engine.search("overall", mode="keyword")) == ["2405.00008"]


def test_paging_past_the_two_phase_candidates_neither_repeats_nor_skips(tmp_path, sqlite_store, monkeypatch):
    """Pages within the first CANDIDATES results come from the two-phase ranking, later ones from the full
    ranking; walking every page must show each matching paper exactly once."""
    from paperwire.search import service

    rng = random.Random(5)
    papers = []
    for i in range(1, 31):
        title = (
            "Decoding " + rng.choice(["speech", "video", "codes", "proteins"]) if i % 4 == 0 else f"Study {i}"
        )
        abstract = " ".join(["decoding"] * rng.randint(1, 12) + ["filler words here"] * rng.randint(1, 20))
        papers.append(p(f"2402.{i:05d}", title, abstract, day=1 + i % 28))
    sqlite_store.apply(papers)
    index = KeywordIndex(tmp_path / "ix")
    index.catch_up(sqlite_store)
    engine = SearchEngine(sqlite_store, index)
    monkeypatch.setattr(service, "CANDIDATES", 7)
    seen = []
    for page in range(1, 12):
        r = engine.search("decoding", page=page, per_page=3, mode="keyword")
        assert r.total == 30
        seen += ids(r)
    assert len(seen) == len(set(seen)) == 30, seen
    assert sorted(seen) == sorted(paper.id for paper in papers)


def test_whole_word_queries_do_not_complete_the_last_word(engine):
    """APIs and saved searches send finished queries: the last word is matched as typed (and stemmed),
    not as the start of a longer word."""
    assert ids(engine.search("spanish troc", mode="keyword", as_you_type=False, relax=False)) == []
    assert ids(engine.search("spanish troc", mode="keyword", relax=False))[0] == "2401.00004"
    whole = engine.search("spanish trochaic", mode="keyword", as_you_type=False)
    assert ids(whole)[0] == "2401.00004" and "<mark>trochaic</mark>" in str(whole.hits[0].title_html).lower()


def test_a_last_word_typed_whole_completes_only_to_words_not_much_rarer(tmp_path, sqlite_store):
    """Search as you type completes the last word, but a common word typed to the end ("single") is not
    read as the start of a much rarer one ("singlet"); a word just as common ("fermions" after
    "fermi"), any word being typed ("singl") and a stop word ("for") still complete. (24 papers say "single": enough for the
    index to take it as typed, with no typos of it, such as "singlet", matched.)"""
    papers = [p(f"2404.{i:05d}", f"A single spin experiment {i}", "spin dynamics for all") for i in range(24)]
    papers += [
        p("2404.00100", "Singlet fission in spin systems", "spin dynamics of molecular crystals"),
        p("2404.00101", "Fermi surface of a spin liquid", "spin dynamics"),
        p("2404.00102", "Fermions in a spin chain", "spin dynamics"),
        p("2404.00103", "Heavy fermions and spin", "spin dynamics"),
        p("2404.00104", "Modular forms of spin type", "spin dynamics"),
    ]
    engine = engine_over(tmp_path, sqlite_store, papers)
    typed_whole = ids(engine.search("spin single", mode="keyword", relax=False, per_page=50))
    assert len(typed_whole) == 24 and "2404.00100" not in typed_whole
    assert "2404.00100" in ids(engine.search("spin singl", mode="keyword", relax=False, per_page=50))
    assert set(ids(engine.search("spin fermi", mode="keyword", relax=False))) == {
        "2404.00101",
        "2404.00102",
        "2404.00103",
    }
    # A stop word is no word to stop at: "spin for" is "spin forms" being typed.
    assert "2404.00104" in ids(engine.search("spin for", mode="keyword", relax=False, per_page=50))
    # Asked for whole (as_you_type=False), "fermi" is only itself.
    assert ids(engine.search("spin fermi", mode="keyword", relax=False, as_you_type=False)) == ["2404.00101"]


def test_uncounted_search_ranks_the_same_and_its_total_is_a_lower_bound(tmp_path, sqlite_store, monkeypatch):
    """count=False (the Hugging Face API, digests) skips counting matches beyond what the ranking reads:
    the same hits in the same order, whether every match is a candidate or the candidates are cut (a lone
    word being typed ranks in two phases; several words in one query, which reads only the page)."""
    from paperwire.search import service

    papers = [
        p(f"2403.{i:05d}", f"Decoding study {i}", "decoding " * (1 + i % 7) + f"model {i}", day=1 + i % 28)
        for i in range(40)
    ]
    sqlite_store.apply(papers)
    index = KeywordIndex(tmp_path / "ix")
    index.catch_up(sqlite_store)
    engine = SearchEngine(sqlite_store, index)
    engine.result_cache_size = 0
    for candidates in (100, 12):  # every match a candidate; candidates cut (ids and title candidates)
        monkeypatch.setattr(service, "CANDIDATES", candidates)
        for query in ("decoding", "decoding model", "decoding study"):
            counted = engine.search(query, per_page=10, mode="keyword")
            uncounted = engine.search(query, per_page=10, mode="keyword", count=False)
            assert ids(uncounted) == ids(counted)
            assert counted.total == 40
            assert len(uncounted.hits) <= uncounted.total <= counted.total
            if query == "decoding":  # two phases: the candidates seen
                assert uncounted.total == min(candidates, 40)


def test_a_name_being_typed_completes_to_authors(engine):
    """The last word being typed also completes to authors' names ("maldac": Maldacena), from three
    letters (two would be the start of half the names); typed whole, it is only a word."""
    for query in ("maldac", "Maldac", "strings maldac", "juan mald"):
        result = engine.search(query, mode="keyword")
        assert ids(result) == ["hep-th/9901001"], query
    assert engine.search("maldac", mode="keyword").hits[0].matched == ['authors: "maldac" (prefix)']
    assert ids(engine.search("maldac", mode="keyword", as_you_type=False)) == []
    assert ids(engine.search("neutrino mae", mode="keyword"))[0] == "2401.00006"  # Adrian Del Maestro
    assert engine.builder.searcher is not None
    assert engine.builder._author_prefix("ma") is None  # noqa: SLF001


def test_relaxing_that_finds_no_more_papers_is_no_partial_match(engine):
    """Fewer than a page match every word, so the search relaxes; where no paper matches fewer of the
    words either, every result has them all and the search is not flagged "not every word matched"."""
    for count in (True, False):
        whole = engine.search("Adrian Maestro", mode="keyword", count=count)
        assert ids(whole) == ["2401.00006"] and not whole.relaxed, count
        partial = engine.search("Maestro cosmology", mode="keyword", count=count)
        assert set(ids(partial)) == {"2401.00006", "2401.00007"} and partial.relaxed, count
        unknown = engine.search("Adrian Maestro qzx", mode="keyword", count=count)
        assert ids(unknown) == ["2401.00006"] and unknown.relaxed, count  # a word matched nothing


def test_uncounted_field_syntax_and_relaxed_searches_match_the_counted_ones(engine):
    for query in ("ti:decoding", "speculative ANDNOT draft", "decoding zebra", '"speculative decoding"'):
        counted = engine.search(query, mode="keyword")
        uncounted = engine.search(query, mode="keyword", count=False)
        assert ids(uncounted) == ids(counted) and uncounted.relaxed == counted.relaxed, query
        assert len(uncounted.hits) <= uncounted.total <= counted.total


def test_hits_find_the_words_in_their_text_only_when_asked(engine, monkeypatch):
    """Finding the query's words in each hit's text is for pages and highlights: a caller reading only
    ids and scores (the Hugging Face API) must not pay for it, and a reader pays once per field."""
    from paperwire.search.highlight import Highlighter

    calls = []
    marks = Highlighter.marks
    monkeypatch.setattr(Highlighter, "marks", lambda self, text: calls.append(text) or marks(self, text))
    hits = engine.search("speculatve decodng", mode="keyword", per_page=5).hits
    assert hits and calls == []
    assert "typo" in " ".join(hits[0].matched)  # title, abstract and authors looked at
    assert len(calls) == 3
    assert "<mark>" in str(hits[0].title_html) + str(hits[0].abstract_html)
    assert len(calls) == 3  # the HTML reuses the marks


@pytest.mark.parametrize("formula", ["", " of $\\alpha$-models"])
def test_snippet_marks_the_window_it_shows(formula):
    """The snippet reuses the marks found on the whole abstract when its window needs no conversion, and
    finds them again on the converted text when it holds LaTeX (offsets change)."""
    from paperwire.latex import readable
    from paperwire.search.highlight import Highlighter

    text = "Filler words come first here. " * 20 + f"We study speculative decoding{formula} and decoding."
    snippet = str(Highlighter(["decoding"]).snippet(text, display=readable))
    assert snippet.startswith("… ") and snippet.count("<mark>decoding</mark>") == 2
    assert ("α-models" in snippet) == bool(formula) and "$" not in snippet


def test_marks_whole_words_by_how_they_match_in_plain_and_accented_text():
    """Each occurrence, whole words only, by its best match (exact over stem over prefix over typo), at
    the offsets of the text as given, accented or not."""
    from paperwire.search.highlight import Highlighter

    highlighter = Highlighter(["decoding", "speculative", "dra"], last_is_prefix=True)

    def marked(text):
        return [(text[m.start : m.end], m.query_word, m.how) for m in highlighter.marks(text)]

    text = "Speculative decoders: DECODING with drafts; re-decoding, predecoding, speculatve decoding."
    assert marked(text) == [
        ("Speculative", "speculative", "exact"),
        ("decoders", "decoding", "stem"),
        ("DECODING", "decoding", "exact"),
        ("drafts", "dra", "prefix"),
        ("decoding", "decoding", "exact"),  # the word after the hyphen; not inside "predecoding"
        ("speculatve", "speculative", "typo"),
        ("decoding", "decoding", "exact"),
    ]
    assert marked("Décoding naïve speculative décodé") == [
        ("Décoding", "decoding", "exact"),
        ("speculative", "speculative", "exact"),
        ("décodé", "decoding", "stem"),
    ]


@pytest.mark.parametrize(
    "query",
    [["die", "tie"], ["dying", "lying"], ["generalization", "possibility"], ["r", "speculative"], ["mod"]],
)
def test_marks_agree_with_the_matching_rules_for_every_word_of_the_sample(query):
    """The highlighter tests only the words that begin as a query word or its stem does for exact, stem
    and prefix matches (a shortcut for speed): each distinct word of the bundled papers must still be
    classified as the rules say, exceptions of the stemmer (dying -> die) and words with "_" included."""
    import json
    import re
    from pathlib import Path

    from rapidfuzz.distance import OSA

    from paperwire.search.highlight import Highlighter, fold
    from paperwire.search.keyword import ONE_TYPO, TWO_TYPOS, stem_of

    snapshot = Path(__file__).parent / "fixtures" / "snapshot" / "arxiv-metadata-oai-snapshot.head200.jsonl"
    text = " ".join(
        " ".join((r["title"], r["abstract"], r["authors"])) for r in map(json.loads, snapshot.open())
    )
    words = sorted(
        {fold(w) for w in re.findall(r"\w+", text)} | {"dying", "lie", "ties", "r_1", "_r", "model"}
    )
    highlighter = Highlighter(query, last_is_prefix=True)

    def expected(word):
        if word in query:
            return (word, "exact")
        for token in query:
            if stem_of(word) == stem_of(token):
                return (token, "stem")
        if len(query[-1]) >= 2 and word.startswith(query[-1]):
            return (query[-1], "prefix")
        for token in query:
            allowed = 2 if len(token) >= TWO_TYPOS else 1
            if len(token) >= ONE_TYPO and OSA.distance(word, token) <= allowed:
                return (token, "typo")
        return None

    got = {}
    for word in words:
        marks = highlighter.marks(word)
        got[word] = (marks[0].query_word, marks[0].how) if marks else None
    assert got == {w: expected(w) for w in words}
    assert any(got.values())


def test_a_snippet_of_converted_latex_marks_only_what_the_stored_text_matched():
    """Marks are what the index matched, on the stored text: a window whose LaTeX is shown as Unicode is
    searched again only when the stored window held a match."""
    from paperwire.latex import readable
    from paperwire.search.highlight import Highlighter

    highlighter = Highlighter(["schrödinger"])
    stored = 'The Schr\\"odinger equation for $\\alpha$-particles. ' * 12
    assert highlighter.marks(stored) == []
    snippet = str(highlighter.snippet(stored, display=readable))
    assert "Schrödinger" in snippet and "<mark>" not in snippet
    shown = "The Schrödinger equation for α-particles."
    assert "<mark>Schrödinger</mark>" in str(highlighter.html(shown))


def test_no_typo_marks_for_words_the_index_takes_as_typed(tmp_path, sqlite_store):
    """A word many papers contain matches no typos in the index (TRUSTED_WORD_DF), so a near spelling of
    it in a hit is not marked; a rare word's typos are, as the index matched them."""
    from paperwire.search.keyword import TRUSTED_WORD_DF

    papers = [
        p(f"2401.{i:05d}", f"A neural model number {i}", "We train a modal logic model.")
        for i in range(TRUSTED_WORD_DF + 5)
    ]
    papers.append(p("2401.09999", "Transformers for cosmology", "We apply transfomers to galaxies."))
    sqlite_store.apply(papers)
    index = KeywordIndex(tmp_path / "kw")
    index.catch_up(sqlite_store)
    engine = SearchEngine(sqlite_store, index)

    hit = engine.search("model", mode="keyword").hits[0]
    assert "<mark>model</mark>" in str(hit.abstract_html) and "<mark>modal</mark>" not in str(
        hit.abstract_html
    )
    # "cosmologie" is in no paper: the index reads it as a typo, and so does the highlighter.
    hit = engine.search("transformers cosmologie", mode="keyword").hits[0]
    assert hit.id == "2401.09999" and "<mark>cosmology</mark>" in str(hit.title_html)
    assert hit.matched == ['title: "transformers", "cosmologie" (typo)', 'abstract: "transformers" (typo)']


# -- papers named by identifier --------------------------------------------------------------------------


@pytest.fixture
def named_engine(tmp_path, store) -> SearchEngine:
    papers = [
        *CORPUS,
        replace(
            p("2401.00010", "Metamorphic testing of pose estimators", day=10), doi="10.1109/ICST.2025.42"
        ),
        replace(
            p("2401.00011", "A second paper of the same proceedings", day=11), doi="10.1109/icst.2025.42"
        ),
    ]
    return engine_over(tmp_path, store, papers)


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "semantic"])
@pytest.mark.parametrize(
    "query",
    [
        "2401.00003",
        "arXiv:2401.00003v2",
        "https://arxiv.org/abs/2401.00003",
        "huggingface.co/papers/2401.00003",
    ],
)
def test_an_arxiv_id_or_link_finds_that_paper(named_engine, query, mode):
    r = named_engine.search(query, mode=mode)
    assert ids(r) == ["2401.00003"]
    assert r.lookup and r.total == 1 and r.not_found == []
    assert r.hits[0].matched == ["arXiv id"]
    assert r.mode == "keyword"  # nothing was ranked by meaning


def test_several_ids_come_in_the_query_order_and_missing_ones_are_named(named_engine):
    r = named_engine.search("hep-th/9901001 2401.00005, 2512.00001 2401.00001")
    assert ids(r) == ["hep-th/9901001", "2401.00005", "2401.00001"]
    assert [str(i) for i in r.not_found] == ["arXiv:2512.00001"]
    assert r.not_found[0].url == "https://arxiv.org/abs/2512.00001"
    # Pages and other sorts apply to the papers named.
    assert ids(named_engine.search("hep-th/9901001 2401.00005 2401.00001", per_page=2, page=2)) == [
        "2401.00001"
    ]
    assert ids(named_engine.search("hep-th/9901001 2401.00005 2401.00001", sort="date")) == [
        "2401.00005",
        "2401.00001",
        "hep-th/9901001",
    ]


def test_a_doi_finds_its_papers_in_any_case(named_engine):
    r = named_engine.search("https://doi.org/10.1109/ICST.2025.42")
    assert sorted(ids(r)) == ["2401.00010", "2401.00011"]
    assert r.hits[0].matched == ["DOI"]
    assert ids(named_engine.search("doi:10.1109/Icst.2025.42", sort="date")) == ["2401.00011", "2401.00010"]
    assert [str(i) for i in named_engine.search("10.1109/ICST.2025.43").not_found] == [
        "doi:10.1109/ICST.2025.43"
    ]


def test_filters_apply_to_papers_named_but_do_not_make_them_missing(named_engine):
    r = named_engine.search("2401.00006 2401.00005", Filters(categories=("hep-ph",)))
    assert ids(r) == ["2401.00006"]
    assert r.not_found == []
    assert ids(named_engine.search("2401.00005", Filters(ids=("2401.00006",)))) == []


def test_a_list_of_ids_is_held_to_the_query_limits(named_engine):
    with pytest.raises(QueryError, match="too long"):
        named_engine.search(" ".join(["2401.00001"] * 50))
    with pytest.raises(QueryError, match="control characters"):
        named_engine.search("2401.00001\x00")


def test_words_beside_an_id_are_a_search_of_words(named_engine):
    r = named_engine.search("2401.00001 neutrino", mode="keyword")
    assert not r.lookup
    assert "2401.00006" in ids(r)


def test_a_deleted_paper_is_not_found_by_its_id(tmp_path, store):
    engine = engine_over(tmp_path, store, CORPUS)
    store.apply([Tombstone("2401.00002", source="test")])
    engine.keyword.catch_up(store)
    r = engine.search("2401.00002")
    assert ids(r) == [] and [str(i) for i in r.not_found] == ["arXiv:2401.00002"]


def test_a_paper_in_the_store_but_not_yet_indexed_is_found_by_its_id(tmp_path, store):
    """Another process imported it and this node's index has not caught up: the store is the truth, so
    its id finds it (in the query's order, or the sort's); under filters it is at least not missing."""
    engine = engine_over(tmp_path, store, CORPUS)
    store.apply([p("2402.00001", "Imported a moment ago", day=20)])  # no catch_up
    r = engine.search("2401.00005 2402.00001 2512.00001")
    assert ids(r) == ["2401.00005", "2402.00001"]
    assert [str(i) for i in r.not_found] == ["arXiv:2512.00001"]
    assert r.total == 2 and r.hits[1].matched == ["arXiv id"]
    assert ids(engine.search("2401.00005 2402.00001", sort="date")) == ["2402.00001", "2401.00005"]
    assert ids(engine.search("2402.00001 2401.00005", sort="date", ascending=True)) == [
        "2401.00005",
        "2402.00001",
    ]
    filtered = engine.search("2402.00001", Filters(categories=("hep-ph",)))
    assert ids(filtered) == [] and filtered.not_found == []


SAMPLE = os.path.join(os.path.dirname(__file__), "..", "paperwire", "sample", "papers.jsonl.gz")


@pytest.fixture
def sample_engine(tmp_path, sqlite_store) -> SearchEngine:
    """The bundled sample's 341 real papers, keyword index only, no result cache."""
    from paperwire.ingest.jsonl import JsonlSource
    from paperwire.ingest.runner import run_import

    run_import(sqlite_store, JsonlSource(SAMPLE).items())
    index = KeywordIndex(tmp_path / "sample-index")
    index.catch_up(sqlite_store)
    engine = SearchEngine(sqlite_store, index)
    engine.result_cache_size = 0
    return engine


def long_queries(engine: SearchEngine, n: int = 40) -> list[str]:
    """Queries of 5 to 9 words taken from the titles of different papers: few or no papers have them all."""
    rng = random.Random(7)
    with engine.store.engine.connect() as conn:
        titles = [row[0] for row in conn.exec_driver_sql("SELECT title FROM papers ORDER BY id")]
    words = sorted({w.lower() for t in titles for w in t.split() if w.isalpha() and len(w) > 3})
    return [" ".join(rng.sample(words, rng.randint(5, 9))) for _ in range(n)]


def test_long_queries_relax_in_fewer_walks_to_the_same_results(sample_engine, monkeypatch):
    """A long query that no page of papers matches whole finds where relaxing stops from one walk of its
    words' union (_most_matched) rather than trying one word fewer at a time, and ranks only the papers
    that walk saw reach the level (_among) where it saw them all; the results, totals and the relaxed
    flag are those of stepping down, whatever the page size, count, filter or sort."""
    from paperwire.search import service

    walks = {"levels": 0, "among": 0}
    run = service.SearchEngine._run

    def counted(*args, **kwargs):
        walks["levels"] += 1
        return run(*args, **kwargs)

    monkeypatch.setattr(service.SearchEngine, "_run", staticmethod(counted))
    most_matched = service.SearchEngine._most_matched

    def counted_union(self, *args, **kwargs):  # its walk of the union counts too
        walks["levels"] += 1
        return most_matched(self, *args, **kwargs)

    monkeypatch.setattr(service.SearchEngine, "_most_matched", counted_union)
    among = service.SearchEngine._among

    def counted_among(self, *args, **kwargs):
        walks["among"] += 1
        return among(self, *args, **kwargs)

    monkeypatch.setattr(service.SearchEngine, "_among", counted_among)
    filters = Filters(categories=["cs.*"])
    queries = long_queries(sample_engine)
    cases = [
        {"per_page": 10},
        {"per_page": 5},
        {"per_page": 10, "count": False},
        {"per_page": 10, "page": 2},
        {"per_page": 10, "filters": filters},
        {"per_page": 10, "sort": "date"},
        {"per_page": 10, "as_you_type": True},  # the last word a prefix too
    ]
    runs = {}
    # Jumping with the level's papers ranked alone; jumping where the counting walk reads too few hits
    # to hold the level (10: the level's walk instead); stepping down one word at a time.
    for name, jump_from, level_ids in (("ids", 4, 1000), ("walk", 4, 10), ("step", 10**6, 1000)):
        monkeypatch.setattr(service, "RELAX_JUMP_FROM", jump_from)
        monkeypatch.setattr(service, "LEVEL_IDS", level_ids)
        walks.update(levels=0, among=0)
        results = [
            (r.total, [h.id for h in r.hits], r.relaxed)
            for q in queries
            for case in cases
            for r in [sample_engine.search(q, mode="keyword", **{"as_you_type": False, **case})]
        ]
        runs[name] = (results, dict(walks))
    stepping, step_walks = runs["step"]
    assert runs["ids"][0] == stepping
    assert runs["walk"][0] == stepping
    assert sum(relaxed for _, _, relaxed in stepping) > len(stepping) // 2  # most did relax
    assert runs["ids"][1]["levels"] < step_walks["levels"] * 0.6, (runs["ids"][1], step_walks)
    # The level's papers were ranked alone in most searches, and never where the walk read 10 hits.
    assert runs["ids"][1]["among"] > len(stepping) // 2, runs["ids"][1]
    assert runs["walk"][1]["among"] < runs["ids"][1]["among"] // 4, runs["walk"][1]


def test_counting_the_words_matched_agrees_with_every_relaxing_level(sample_engine):
    """QueryBuilder.words_matched scores each paper by how many of the query's words it matches (what
    _most_matched reads the level from): for every level k, the papers it counts k words or more for are
    exactly those ``plain(words, phrases, k)`` matches, with typo-tolerant words, a word being typed,
    words often written solid ("data set") and a phrase among them."""
    from paperwire.search.query import parse_query

    searcher = sample_engine.keyword.searcher()
    builder = sample_engine.builder
    builder.searcher = searcher
    queries = [*long_queries(sample_engine, 12), "languag modle data set fine tuning transfomer effic"]
    queries.append('"large language" reasoning benchmark agents evaluation planning')
    checked = 0
    for text in queries:
        parsed = parse_query(text, as_you_type=True)
        words, phrases = sample_engine._plain_parts(parsed.root)
        words = builder.with_solid_pairs(words)
        counted = searcher.search(builder.words_matched(words, phrases), limit=1000, count=False).hits
        counts = {(a.segment_ord, a.doc): round(float(s)) for s, a in counted}
        assert len(counts) < 1000
        for k in range(1, len(words) + 1):
            plain = searcher.search(builder.plain(words, phrases, k), limit=1000, count=False).hits
            assert {(a.segment_ord, a.doc) for _, a in plain} == {a for a, c in counts.items() if c >= k}, (
                text,
                k,
            )
            checked += bool(plain)
    assert checked > 30  # levels that matched papers, not only empty ones


def title_word_queries(engine: SearchEngine) -> list[str]:
    """Two and three of the sample's commonest title words, and an author's surname with one: queries
    that many papers have in their titles, some whole."""
    from collections import Counter

    from paperwire.search.keyword import STOPWORDS

    with engine.store.engine.connect() as conn:
        rows = list(conn.exec_driver_sql("SELECT title, authors FROM papers ORDER BY id"))
    counts = Counter(
        w
        for title, _ in rows
        for w in {w.lower() for w in title.split()}
        if w.isalpha() and w not in STOPWORDS
    )
    common = [w for w, _ in counts.most_common(12)]
    rng = random.Random(3)
    queries = [f"{a} {b}" for i, a in enumerate(common) for b in common[i + 1 :]]
    queries += [" ".join(rng.sample(common, 3)) for _ in range(15)]
    names = [a["name"].split() for _, authors in rows for a in json.loads(authors)[:1]]
    surnames = sorted({name[-1].lower() for name in names if name and name[-1].isalpha()})
    queries += [f"{rng.choice(surnames)} {rng.choice(common)}" for _ in range(10)]
    queries += ["languag models", "large langauge model", "models for"]  # typos, a stop word being typed
    return queries


def keyword_results(engine: SearchEngine, queries: list[str], cases: list[dict]) -> list[tuple]:
    """Each query searched (keyword, whole words unless a case says otherwise) with each case's arguments:
    its total, ids and scores, and relaxed flag, to compare two ways of ranking."""
    return [
        (r.total, [(h.id, round(h.score, 4)) for h in r.hits], r.relaxed)
        for q in queries
        for case in cases
        for r in [engine.search(q, mode="keyword", **{"as_you_type": False, **case})]
    ]


def test_title_tier_gives_the_results_of_ranking_every_match(sample_engine, monkeypatch):
    """Where many papers have every word in the title, the ranking looks among them alone
    (SearchEngine._title_first) and counts the matches beside it; the results, scores, totals and the
    relaxed flag are those of ranking every match, whatever the page, count, filter or the word being
    typed, whether the count runs beside the tier or after it, and whether the tier's ranking runs as one
    query or apart (Ranking.apart). The sample is small, so the tier is
    tried whatever the papers expected in it, for pages of a few hits (RESCORE_WINDOW 3)."""
    from paperwire.search import keyword, service

    monkeypatch.setattr(service, "RESCORE_WINDOW", 3)
    outcomes = {"tier": 0, "every match": 0}
    title_first = service.SearchEngine._title_first

    def watched(self, *args, **kwargs):
        hits, counting = title_first(self, *args, **kwargs)
        outcomes["tier" if hits is not None else "every match"] += 1
        return hits, counting

    monkeypatch.setattr(service.SearchEngine, "_title_first", watched)
    cases = [
        {"per_page": 3},
        {"per_page": 3, "as_you_type": True},
        {"per_page": 2, "page": 2},
        {"per_page": 3, "count": False},
        {"per_page": 3, "filters": Filters(categories=["cs.*"])},
    ]
    queries = title_word_queries(sample_engine)
    queries += [f"{q.rsplit(' ', 1)[0]} {q.rsplit(' ', 1)[1][:2]}" for q in queries[:20]]  # being typed
    runs = {}
    ways = (
        ("tier", 0.0, True, True),
        ("tier, counted after", 0.0, False, True),
        ("tier, one query", 0.0, True, False),  # not Ranking.apart
        ("every match", float("inf"), True, True),
    )
    for name, margin, count_beside, apart in ways:
        monkeypatch.setattr(keyword, "TITLE_TIER_MARGIN", margin)
        monkeypatch.setattr(service, "COUNT_BESIDE", count_beside)
        monkeypatch.setattr(service, "RANK_APART", apart)
        outcomes.update({"tier": 0, "every match": 0})
        runs[name] = (
            keyword_results(sample_engine, queries, cases),
            dict(outcomes),
        )
    assert runs["tier"][0] == runs["every match"][0]
    assert runs["tier, counted after"] == runs["tier"] == runs["tier, one query"]
    assert runs["every match"][1]["tier"] == 0
    # The tier gave the results in many searches and fell short (too few papers, or a paper outside it
    # could score as high) in others.
    assert runs["tier"][1]["tier"] > 40, runs["tier"][1]
    assert runs["tier"][1]["every match"] > 40, runs["tier"][1]


def test_ranking_apart_gives_the_results_of_one_query(sample_engine, monkeypatch):
    """Several words where one or two match several ways (an author's name, a typo, a word being typed
    or also written apart) rank as disjoint queries, one per way or pair of ways (Ranking.apart): the same
    results, scores, totals and relaxed flags as the one ranking query, whatever the page, count or
    filter."""
    from paperwire.search import keyword, service

    monkeypatch.setattr(keyword, "TITLE_TIER_MARGIN", float("inf"))  # every match ranked
    split = {"apart": 0, "by two tokens": 0}
    split_ways = keyword.Ranking.apart

    def watched(self):
        parts = split_ways(self)
        split["apart"] += parts is not None
        most_ways = max((len(token.ways) for _, token in self.splittable), default=0)
        split["by two tokens"] += parts is not None and len(parts) > most_ways
        return parts

    monkeypatch.setattr(keyword.Ranking, "apart", watched)
    cases = [
        {"per_page": 3},
        {"per_page": 3, "as_you_type": True},
        {"per_page": 2, "page": 2},
        {"per_page": 5, "count": False},
        {"per_page": 3, "filters": Filters(categories=["hep-*"])},
        {"per_page": 3, "page": 2, "as_you_type": True},
    ]
    queries = title_word_queries(sample_engine) + [
        "space time curvature",
        "spacetime curvature",
        "non linear equations",
        "nonlinear equation",
        "data set galaxies",
        "dark energy equation of stat",
        "quantum gravty corrections",
        # Two tokens of several ways each, a typo and a word being typed, whose papers match the
        # second by two of its ways ("mode": its stem, or a completion) as well.
        "thoery meta",
        "aprpoach mode",
        "qunatum mode",
        "galaxeis form",
    ]
    # An author's name and a word being typed: both split.
    queries += [f"{q.split()[0]} {q.split()[1][:2]}" for q in title_word_queries(sample_engine)[-13:-3]]
    runs = {}
    for apart in (True, False):
        monkeypatch.setattr(service, "RANK_APART", apart)
        split.update({"apart": 0, "by two tokens": 0})
        runs[apart] = keyword_results(sample_engine, queries, cases)
        if apart:
            assert split["apart"] > 40 and split["by two tokens"] > 10, split
    assert runs[True] == runs[False]
    assert sum(1 for total, _, _ in runs[True] if total > 3) > 40  # pages of results, not empty ones


def test_no_paper_outside_the_title_tier_scores_above_its_bound(sample_engine):
    """QueryBuilder.title_tier's ``above``: the best a paper lacking some word in its title scores in the
    ranking query, with words that are also authors' names, typo-tolerant words and a word being typed;
    and the papers with a title bonus for every word are all in the tier."""
    from tantivy import Occur, Query

    from paperwire.search.query import parse_query

    searcher = sample_engine.keyword.searcher()
    builder = sample_engine.builder
    builder.searcher = searcher
    margins = []
    for text in title_word_queries(sample_engine):
        for typed in (False, True):
            words, phrases = sample_engine._plain_parts(parse_query(text, as_you_type=typed).root)
            words = builder.with_solid_pairs(words)
            tier = builder.title_tier(words, phrases, 0)
            if tier is None:
                continue
            q = builder.ranking(words, phrases).query()
            outside = Query.boolean_query([(Occur.Must, q), (Occur.MustNot, tier.query)])
            best = searcher.search(outside, limit=1, count=False).hits
            if best:
                assert float(best[0][0]) <= tier.above, text
                margins.append(tier.above - float(best[0][0]))
    assert len(margins) > 50
    assert min(margins) < 1.0  # a bound some paper comes near, not one too high to ever hold


def test_counting_apart_adds_up_to_the_matches(sample_engine):
    """QueryBuilder.counted_apart splits the matches of candidates() by the ways one word matches:
    the parts are disjoint and together are every match, for words being typed, typos, authors' names
    and words also written solid."""
    from tantivy import Occur, Query

    from paperwire.search.query import parse_query

    searcher = sample_engine.keyword.searcher()
    builder = sample_engine.builder
    builder.searcher = searcher

    def count(q) -> int:
        return searcher.search(Query.const_score_query(q, 0.0), limit=1, count=True).count

    split = tried = 0
    queries = [*title_word_queries(sample_engine), "data set lang", "fine tuning transfomer mod"]
    queries += ["graph neural net", "data", "deep learning imag", "language agent", "vision transf"]
    queries += [f"model {typed}" for typed in ("graph", "data", "large", "singl", "star", "wave", "under")]
    for text in queries:
        words, phrases = sample_engine._plain_parts(parse_query(text, as_you_type=True).root)
        words = builder.with_solid_pairs(words)
        parts = builder.counted_apart(words, phrases)
        if parts is None:
            continue
        every = builder.candidates(words, phrases)
        assert sum(count(p) for p in parts) == count(every), text
        for p in parts:
            assert count(Query.boolean_query([(Occur.Must, p), (Occur.Must, every)])) == count(p), text
        tried += 1
        split += sum(1 for p in parts if count(p)) > 1
    assert tried >= 20
    assert split >= 7, split  # where two ways both matched papers


def test_a_word_being_typed_never_completes_to_a_stop_word(sample_engine):
    """Typing "quantum th" is "quantum theory" or "thermal" being typed, not "the": a stop word typed whole
    leaves the query, and as the commonest words it was most of what a short prefix cost. Its results
    mark no stop word as the prefix's match either."""
    from paperwire.search.keyword import STOPWORDS

    builder = sample_engine.builder
    builder.searcher = sample_engine.keyword.searcher()
    every = [t for t, _ in builder.searcher.terms_with_prefix("text_plain", "th", limit=64)]
    assert {"the", "that", "this"} <= set(every)  # the sample has them: the test can fail
    completions = [t for t, _ in builder._completions("text_plain", "th")]
    assert completions and not set(completions) & STOPWORDS
    assert "theory" in completions
    result = sample_engine.search("quantum th", mode="keyword")
    marks = [
        (hit.abstract[m.start : m.end].lower(), m.how)
        for hit in result.hits
        for m in hit.marks("abstract")
        if m.how == "prefix"
    ]
    assert marks and not any(word in STOPWORDS for word, _ in marks)


def test_title_tier_expects_a_word_being_typed_in_titles_by_its_completions(sample_engine):
    """A prefix's own stem is in no title ("qua"), its completions in many ("quantum"): the papers
    expected in the tier count the completions, or a word being typed would never look there first."""
    from paperwire.search.query import parse_query

    builder = sample_engine.builder
    builder.searcher = sample_engine.keyword.searcher()
    words, phrases = sample_engine._plain_parts(parse_query("test qua", as_you_type=True).root)
    tier = builder.title_tier(words, phrases, 1)
    assert tier is not None and tier.expected >= 2
    whole, _ = sample_engine._plain_parts(parse_query("test qua", as_you_type=False).root)
    assert builder.title_tier(whole, [], 1) is None  # "qua" typed whole: in no title


def test_the_words_first_letters_are_indexed_without_stop_words_or_the_whole_word():
    """What a word being typed with two or three letters matches (typed_prefixes): each word's first two
    and three letters, hyphenated words also solid, as the index reads them (accents folded); no stop
    word's, and not a word as its own prefix (its stem matches it)."""
    from paperwire.search.keyword import PLAIN_ANALYZER, typed_prefixes

    def first_letters(text: str) -> set[str]:
        return set(typed_prefixes(set(PLAIN_ANALYZER.analyze(text))).split())

    assert first_letters("The Café of k-means kmeans qa QCD") == {"ca", "caf", "km", "kme", "me", "mea", "qc"}
    assert first_letters("the of and") == set()


def test_a_short_word_being_typed_matches_every_word_it_begins(sample_engine, monkeypatch):
    """Two or three letters of a word being typed match through the words' first letters, indexed
    (INDEXED_PREFIXES): every word they begin, the rarest too, as the highlighter marks it, with the
    scores of the completions asked one by one. Three completions asked at most, as a stand-in for
    the 64 of a large index: the rare ones are found only through the first letters."""
    from paperwire.search import keyword

    builder = sample_engine.builder
    builder.searcher = sample_engine.keyword.searcher()
    assert (
        builder.by_first_letters("pr") and builder.by_first_letters("the") and builder.by_first_letters("gas")
    )
    assert not builder.by_first_letters("prob")  # its completions, the common ones where it is a word
    monkeypatch.setattr(keyword, "PREFIX_COMPLETIONS", 3)
    found = {}
    for indexed in (True, False):
        monkeypatch.setattr(keyword, "PREFIX_POSTINGS", indexed)
        pages = [sample_engine.search("pr", mode="keyword", per_page=100, page=p) for p in (1, 2, 3, 4)]
        found[indexed] = {h.id: h for page in pages for h in page.hits}
        assert len(found[indexed]) == pages[0].total < 400
    assert set(found[False]) < set(found[True])
    rare = [found[True][i] for i in set(found[True]) - set(found[False])]
    assert all(any(m.how == "prefix" for f in ("title", "abstract") for m in h.marks(f)) for h in rare)

    # Every completion asked one by one: the same results and scores as the first letters indexed.
    monkeypatch.setattr(keyword, "PREFIX_COMPLETIONS", 100_000)
    monkeypatch.setattr(keyword, "COMPLETION_SHARE", 0.0)
    queries = [
        f"{q.rsplit(' ', 1)[0]} {q.rsplit(' ', 1)[1][:n]}"
        for q in title_word_queries(sample_engine)
        for n in (2, 3)
    ]
    queries += ["pr", "quantum th", "dark energy equation of st", "black ho", "xr", "rpa", "neural net"]
    cases = [{"per_page": 5, "as_you_type": True}, {"per_page": 2, "page": 2, "as_you_type": True}]
    runs = {}
    for indexed in (True, False):
        monkeypatch.setattr(keyword, "PREFIX_POSTINGS", indexed)
        runs[indexed] = keyword_results(sample_engine, queries, cases)
    assert runs[True] == runs[False]
    assert sum(1 for total, hits, _ in runs[True] if hits) > 40


def test_a_stop_word_being_typed_matches_the_words_it_begins_not_itself(sample_engine, monkeypatch):
    """ "quantum in" being typed is "quantum information" or "quantum interference": a paper with only
    "in" (every paper has it) does not match, nor rank above one with "invariant" for being exact.
    Typed whole, the stop word leaves the query ("quantum in" is "quantum")."""
    import re

    from paperwire.search import keyword

    def begins_a_word(hit) -> bool:
        words = re.findall(r"\w+", f"{hit.title} {hit.abstract}".lower())
        return any(w.startswith("in") and w != "in" for w in words)

    typed = sample_engine.search("quantum in", mode="keyword", per_page=100)
    assert typed.hits and not typed.relaxed
    assert all(begins_a_word(h) for h in typed.hits)
    monkeypatch.setattr(keyword, "STOP_WORDS_COMPLETE_ONLY", False)
    itself = sample_engine.search("quantum in", mode="keyword", per_page=100)
    assert not all(begins_a_word(h) for h in itself.hits)  # the sample has such papers: the test can fail
    whole = sample_engine.search("quantum in", mode="keyword", per_page=100, as_you_type=False)
    assert whole.total == sample_engine.search("quantum", mode="keyword").total > typed.total
