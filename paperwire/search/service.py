"""``search()``: the one entry point the CLI, the web pages and every API use."""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from string import ascii_lowercase
from typing import NamedTuple

import numpy as np
import tantivy
from markupsafe import Markup

from paperwire.config import get_settings
from paperwire.latex import readable
from paperwire.search.embeddings import DEFAULT_MODEL, Embedder, ModelUnavailable, get_embedder
from paperwire.search.english import is_english_word
from paperwire.search.highlight import Highlighter, Mark
from paperwire.search.identifiers import Identifier, identifiers_in
from paperwire.search.keyword import (
    BONUS,
    IDF_BAND,
    ONE_TYPO,
    PHRASE_BONUS,
    STOPWORDS,
    TIE_BREAK,
    WORD_BASE,
    Filters,
    KeywordIndex,
    QueryBuilder,
    Ranking,
    meaningful,
    plain_tokens,
    tokens_as_typed,
    with_filters,
)
from paperwire.search.query import And, Phrase, QueryError, Word, check_query, parse_query
from paperwire.search.vectors import VectorIndex, index_path
from paperwire.store import Store, StoredPaper, open_store

log = logging.getLogger(__name__)

MODES = ("hybrid", "keyword", "semantic")
SORTS = ("relevance", "date", "trending")  # what the pages offer
# What a search is when it does not say: every entry point, and the links that leave defaults out.
DEFAULT_MODE, DEFAULT_SORT = "hybrid", "relevance"
# Sorts by an indexed field ("updated": newest version first, arXiv's lastUpdatedDate; APIs only).
SORT_FIELDS = {"date": "published", "trending": "trending", "updated": "updated"}
MAX_PER_PAGE = 100
# Deep pages cost as much as all the pages before them; nobody reads past this.
MAX_RESULT_WINDOW = 10_000
# Candidates each ranker contributes to a semantic or hybrid ranking (more when paging deeper).
POOL, MAX_POOL = 100, 1000
# Hybrid fusion, tuned on bench/judgments.json (see docs/benchmarks.md): cosines are mapped from
# [COSINE_FLOOR, COSINE_CEIL] to 0..1 and weighed against the keyword score's 0..1.
MEANING_WEIGHT = 1.0
COSINE_FLOOR, COSINE_CEIL = 0.2, 0.7
KEYWORD_EXPONENT = 3.0
# In hybrid, a paper with at most this share of the best possible keyword score (about half the query's
# words or fewer) gets no keyword score, like a "minimum should match" of more than half: matching 4 of
# 8 words of a query that describes an idea is no evidence of a match, so closeness in meaning ranks it.
KEYWORD_MIN_SHARE = 0.5
# A lone word being typed ranks in two phases: the full keyword ranking orders this many papers from
# the cheap BM25 candidate query (and as many with the word in the title); pages beyond them use the
# full query directly. Several words rank in one query (QueryBuilder.ranking).
CANDIDATES = 100
# Several words rank in one query whose phrase bonus is the title's only: the abstract's phrase positions
# would cost as much again (docs/benchmarks.md). The first this many results are then re-ordered with the
# abstract's phrase bonus too, checked for them alone (as Elasticsearch's rescore window): "wave
# function" written so ranks above "wave" and "function" apart, among papers that match alike.
RESCORE_WINDOW = 50
# A query no paper matches by more than half its words (KEYWORD_MIN_SHARE) describes an idea, and
# there the embedding model's candidates are re-scored by a stronger one (PAPERWIRE_RESCORE_MODEL): their
# cosine becomes (1 - RESCORE_SHARE) x the first model's + RESCORE_SHARE x the second's. An even blend,
# not tuned: it took the semantic kind from 0.877 to 0.951 (docs/benchmarks.md), above either model alone.
# Other queries never pay for the second model (~15-25 ms a query on 2 CPU cores, int8 or bfloat16).
RESCORE_SHARE = 0.5
# Words a query needs (meaningful ones, stop words aside) before hybrid search takes it for a description:
# one or two words name things, and two that no paper has together (a typo fixed to a word the other one
# never meets) gained nothing from the second model on the judged set but paid its ~20 ms (at 1M, 31 of
# 200 synthetic typo queries: p95 37.7 -> 56.1 ms). The judged descriptions have 4 to 10 such words.
RESCORE_MIN_WORDS = 3
# Where relaxing may start at this many words or more (five meaningful words in the query; four where
# results are sorted by date, which skips the every-word ranking), it finds where to stop from one cheap
# walk of the words' union (_most_matched: constant scores, ~9 ms at 1M), not one walk per level: 6-9
# common words took 2-5 walks of 20-30 ms each at 1M. Shorter queries step down, where the levels the
# walk would skip are few.
RELAX_JUMP_FROM = 4
# Hits the counting walk reads: where the papers at the level it finds are all among them (a level is
# tens to hundreds of papers: 19-375 for 100 described queries at 3M, all within the first 1,000), only
# those are ranked (service._among), not the level's walk over the union of the words' postings: at 3M
# 26.3 / 60.0 ms p50 / p95 for 98.5 / 200.9, the same ranking and scores for 100 of 100 queries.
LEVEL_IDS = 1000
# Look up a query's nearest papers as soon as its vector is ready, beside the keyword side (False: after
# it, as before; for benchmarks that compare the two).
NEAREST_EARLY = True
# Start the second model on a description's vector as soon as the relaxing walk shows it is one (False:
# after the keyword side, as before; for benchmarks that compare the two).
RESCORE_EARLY = True
# Rank several words as disjoint queries where one of them matches several ways (Ranking.apart;
# False: one query, as before; for benchmarks and tests that compare the two).
RANK_APART = True
# Count a ranking's matches on a lookup thread while the title tier ranks (False: after it, on the
# searching thread; for benchmarks that compare the two).
COUNT_BESIDE = True
# Keyword hits read to correct typos and finish the last word before the query is embedded.
CORRECTION_HITS = 10
# Searches remembered per index generation (a new commit or new vectors start afresh), and for how long
# (votes change trending order and counts without a new index generation).
RESULT_CACHE_SIZE = 512
VECTOR_CACHE_SIZE = 4096  # query embeddings remembered (1.5 KB each)
RESULT_CACHE_SECONDS = 10.0


@dataclass
class Hit:
    id: str
    score: float
    paper: StoredPaper
    # What the matched words, title_html and abstract_html are made of. Each is made when first read: API
    # clients that show none of them (the Hugging Face API, digests' topic searches) pay neither for
    # finding the words in the text (~0.1 ms a hit) nor for escaping and LaTeX.
    highlighter: Highlighter = field(repr=False, compare=False)
    _marks: dict[str, list[Mark]] = field(default_factory=dict, repr=False, compare=False)
    _html: dict[str, Markup] = field(default_factory=dict, repr=False, compare=False)
    _matched: list[str] | None = field(default=None, repr=False, compare=False)

    def marks(self, what: str) -> list[Mark]:
        """Where the query's words are in ``what``: "title", "abstract" or "authors"."""
        marks = self._marks.get(what)
        if marks is None:
            paper = self.paper
            text = "; ".join(a.name for a in paper.authors) if what == "authors" else getattr(paper, what)
            marks = self._marks[what] = self.highlighter.marks(text)
        return marks

    @property
    def matched(self) -> list[str]:
        """Why it matched: the fields holding the words, and how ("title", "abstract (typo)", ...)."""
        if self._matched is None:
            self._matched = self.highlighter.why({f: self.marks(f) for f in ("title", "abstract", "authors")})
        return self._matched

    @property
    def title_html(self) -> Markup:
        """The title, escaped, its LaTeX as Unicode, matched words in <mark>."""
        html = self._html.get("title")
        if html is None:
            # What a reader sees has its LaTeX turned into Unicode; the marks (why it matched) are taken
            # on the text as stored, which is what the index matched.
            title = readable(self.paper.title)
            html = self.highlighter.html(title, self.marks("title") if title == self.paper.title else None)
            self._html["title"] = html
        return html

    @property
    def abstract_html(self) -> Markup:
        """A snippet around the matches (the whole abstract when short), escaped, LaTeX as Unicode."""
        html = self._html.get("abstract")
        if html is None:
            html = self.highlighter.snippet(
                self.paper.abstract, marks=self.marks("abstract"), display=readable
            )
            self._html["abstract"] = html
        return html

    @property
    def title(self) -> str:
        return self.paper.title

    @property
    def abstract(self) -> str:
        return self.paper.abstract


@dataclass(slots=True)
class Found:
    """Hits and a total, like tantivy's SearchResult, when the total comes from another query.
    ``ranked`` is False when the matches were only counted: fewer than a page match every word."""

    hits: list
    count: int
    ranked: bool = True


@dataclass(slots=True)
class Ranked:
    id: str
    score: float
    cosine: float | None = None
    keyword: float | None = None


@dataclass
class SearchResult:
    query: str
    hits: list[Hit]
    total: int
    page: int
    per_page: int
    mode: str
    sort: str
    fallback: bool = False  # the query was not valid syntax and was searched as plain words
    relaxed: bool = False  # not every word matched: results match most of them
    # Hybrid search: no paper matches more than half the words (KEYWORD_MIN_SHARE), so closeness in
    # meaning alone ranks the results (a query that describes an idea, or words no paper has together).
    meaning_only: bool = False
    took_ms: float = 0.0
    cached: bool = False  # served from the result cache
    # Hybrid search: the query with its misspelled words as the search read them ("mutaton tetsing" ->
    # "mutation testing"); None when it read none (a word being completed is not a misspelling).
    corrected: str | None = None
    # The query named papers by identifier (an arXiv id or link, a DOI; see search/identifiers.py): the
    # hits are those papers, in the query's order, and ``not_found`` the identifiers of none here.
    lookup: bool = False
    not_found: list[Identifier] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-min(self.total, MAX_RESULT_WINDOW) // self.per_page))


class _Fused(NamedTuple):
    """A hybrid ranking (SearchEngine._hybrid): the fused results, the total, whether the keyword side
    relaxed, the query as corrected (or None) and whether meaning alone ranked it (SearchResult)."""

    ranked: list[Ranked]
    total: int
    relaxed: bool
    corrected: str | None
    meaning_only: bool


class _Unknown(NamedTuple):
    """A query token the index does not hold (SearchEngine._unknown_tokens)."""

    token: str
    prefix: bool  # the word being typed: may be completed
    typo: bool  # in no English dictionary either: may be read as a typo


_MODEL_THREAD_NAME = "embed-query"
_model_thread_pool: ThreadPoolExecutor | None = None
_model_thread_lock = threading.Lock()
_this_thread = threading.local()  # .embeds_queries is True on the model's thread only


_lookup_pool: ThreadPoolExecutor | None = None


def lookup_threads() -> ThreadPoolExecutor:
    """Threads that look up a query's nearest papers as soon as its vector is ready, while the keyword
    side still searches (not the model's thread, which the next query's embedding waits for), and count
    a ranking's matches while the ranking looks among the papers with every word in the title."""
    global _lookup_pool
    with _model_thread_lock:
        if _lookup_pool is None:
            _lookup_pool = ThreadPoolExecutor(
                max_workers=max(2, os.cpu_count() or 1), thread_name_prefix="paperwire-lookup"
            )
        return _lookup_pool


def _mark_model_thread() -> None:
    _this_thread.embeds_queries = True


def model_thread() -> ThreadPoolExecutor:
    """The one thread that embeds this process's queries, whichever thread searches: the model reads one
    text at a time anyway (its lock), and every thread that runs torch on the CPU keeps a team of OpenMP
    threads of its own, which would multiply with a web process's request threads."""
    global _model_thread_pool
    with _model_thread_lock:
        if _model_thread_pool is None:
            _model_thread_pool = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=_MODEL_THREAD_NAME, initializer=_mark_model_thread
            )
        return _model_thread_pool


class SearchEngine:
    """The store plus this node's derived indexes."""

    def __init__(
        self,
        store: Store,
        keyword: KeywordIndex,
        vectors: VectorIndex | None = None,
        embedder: Callable[[], Embedder] | None = None,
    ):
        self.store = store
        self.keyword = keyword
        self.builder = QueryBuilder(keyword.schema, keyword)
        self.vectors = vectors
        self.vectors_dir: Path | None = None  # where open_vectors() looks for vectors built later
        self.result_cache_size = RESULT_CACHE_SIZE  # 0 turns the cache off (benchmarks of the search itself)
        self._cache: OrderedDict[tuple, tuple[float, SearchResult]] = (
            OrderedDict()
        )  # key -> (expires, result)
        self._cache_lock = threading.Lock()
        # Query text -> its embedding. Unlike results, an embedding does not change when the index does,
        # so popular queries skip the model (~8 ms on a CPU) after every commit too.
        self.vector_cache_size = VECTOR_CACHE_SIZE
        self._vectors_cache: OrderedDict[tuple[bool, str], np.ndarray] = OrderedDict()
        # Loaded on first use: a process that only does keyword search never pays for the model.
        self.embedder = embedder or (lambda: get_embedder())
        # The re-scoring model and its vectors (see RESCORE_SHARE); None when off.
        self.rescorer: Callable[[], Embedder] | None = None
        self.rescore_vectors: VectorIndex | None = None
        self.rescore_dir: Path | None = None

    @classmethod
    def open(cls, store: Store | None = None, index_dir: Path | None = None) -> SearchEngine:
        settings = get_settings()
        index_dir = index_dir or settings.index_dir
        model = settings.embedding_model or DEFAULT_MODEL
        engine = cls(
            store or open_store(), KeywordIndex(index_dir / "keyword"), None, lambda: get_embedder(model)
        )
        engine.vectors_dir = index_path(model, index_dir)
        if settings.rescore_model:
            engine.rescore_with(settings.rescore_model, index_path(settings.rescore_model, index_dir))
        engine.open_vectors()
        return engine

    def rescore_with(
        self, model: str, vectors_dir: Path, embedder: Callable[[], Embedder] | None = None
    ) -> None:
        """Re-score the candidates of queries that describe an idea with ``model`` (see RESCORE_SHARE),
        whose vectors `paperwire index` writes to ``vectors_dir``."""
        self.rescorer = embedder or (lambda: get_embedder(model))
        self.rescore_dir = vectors_dir
        self.rescore_vectors = None
        self.open_vectors()

    def open_vectors(self) -> bool:
        """Open this node's vector index if it exists now (a long-running process may start before the
        first `paperwire index` builds it). True when vectors are open."""
        if self.vectors is None and self.vectors_dir is not None and self.vectors_dir.exists():
            self.vectors = VectorIndex(self.vectors_dir)
        if self.rescore_vectors is None and self.rescore_dir is not None and self.rescore_dir.exists():
            self.rescore_vectors = VectorIndex(self.rescore_dir)
        return self.vectors is not None

    def search(
        self,
        query: str = "",
        filters: Filters | None = None,
        sort: str = DEFAULT_SORT,
        page: int = 1,
        per_page: int = 10,
        mode: str = DEFAULT_MODE,
        ascending: bool = False,
        highlight: bool = True,
        relax: bool = True,
        as_you_type: bool = True,
        count: bool = True,
    ) -> SearchResult:
        """Ranked hits for ``query``. Results are cached per index generation for a few seconds: a
        popular query (or a list page) costs one search however many visitors ask for it.

        ``ascending`` reverses a sort by field (oldest first; arXiv's sortOrder=ascending); relevance
        has no ascending order here (the arXiv API reverses a relevance ranking itself). ``relax=False``:
        only papers that match every word (a saved search in a digest), never "most of them".
        ``as_you_type=False``: the last word is whole, not also a prefix (API clients send finished
        queries; completing the last word costs a third of a keyword search at a million papers).
        ``count=False``: for callers that show no total (the Hugging Face API, digests): a relevance search
        then leaves the matches beyond its candidates uncounted, and ``total`` is only a lower bound
        (counting every match of two common words costs more than ranking them)."""
        started = time.perf_counter()
        searcher = self.keyword.searcher()  # reloads when another process committed
        generation = (
            self.keyword._meta_mtime,
            len(self.vectors) if self.vectors is not None else 0,
            len(self.rescore_vectors) if self.rescore_vectors is not None else 0,
        )
        key = (
            query,
            repr(filters),
            sort,
            page,
            per_page,
            mode,
            ascending,
            highlight,
            relax,
            as_you_type,
            count,
            generation,
        )
        now = time.monotonic()
        with self._cache_lock:
            cached = self._cache.get(key) if self.result_cache_size else None
            if cached is not None and now < cached[0]:
                self._cache.move_to_end(key)
                return replace(cached[1], took_ms=(time.perf_counter() - started) * 1000, cached=True)
        result = self._search(
            searcher,
            query,
            filters,
            sort,
            page,
            per_page,
            mode,
            started,
            ascending,
            highlight,
            relax,
            as_you_type,
            count,
        )
        with self._cache_lock:
            # Expiry spread over 1-2x the lifetime: entries made in one burst do not all expire in one.
            self._cache[key] = (now + RESULT_CACHE_SECONDS * (1 + random.random()), result)
            while len(self._cache) > self.result_cache_size:
                self._cache.popitem(last=False)
        return result

    def _search(
        self,
        searcher: tantivy.Searcher,
        query: str,
        filters: Filters | None,
        sort: str,
        page: int,
        per_page: int,
        mode: str,
        started: float,
        ascending: bool = False,
        highlight: bool = True,
        relax: bool = True,
        as_you_type: bool = True,
        count: bool = True,
    ) -> SearchResult:
        if mode not in MODES:
            raise QueryError(f"mode must be one of {', '.join(MODES)}")
        if sort not in SORTS and sort not in SORT_FIELDS:
            raise QueryError(f"sort must be one of {', '.join(SORTS)}")
        if ascending and sort not in SORT_FIELDS:
            raise QueryError(f"only a sort by {', '.join(SORT_FIELDS)} can be ascending")
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        page = max(1, page)
        offset = (page - 1) * per_page
        if offset + per_page > MAX_RESULT_WINDOW:
            raise QueryError(
                f"results beyond the first {MAX_RESULT_WINDOW:,} are not available; refine the query"
            )
        filters = filters or Filters()
        named = identifiers_in(query)
        if named is not None:
            check_query(query)  # parse_query checks every other query
            return self._lookup(searcher, query, named, filters, sort, offset, per_page, started, ascending)
        parsed = parse_query(query, as_you_type=as_you_type)
        filter_queries = self.builder.filters(filters)
        self.builder.searcher = searcher
        relaxed = False
        # Meaning-based ranking applies to relevance-sorted queries made of words (not a date listing,
        # not arXiv's field syntax, whose users ask for exactly what they typed).
        by_meaning = (
            mode != "keyword"
            and sort == "relevance"
            and parsed.root is not None
            and self.vectors_ready()
            and (parsed.plain or mode == "semantic")
            and not (mode == "hybrid" and self._names_only(parsed.words))
        )
        if by_meaning:
            window = min(MAX_POOL, max(POOL, offset + per_page))
            corrected, meaning_only = None, False
            if mode == "semantic":
                # A plain query is read as typed; of field syntax, only the words mean something to the model.
                text = query if parsed.plain else re.sub(r"[*?]", "", " ".join(parsed.words)) or query
                ranked, total = self._semantic(searcher, text, filter_queries, window)
            else:
                fused = self._hybrid_pages(
                    searcher, parsed.root, query, filter_queries, offset + per_page, count
                )
                ranked, total, relaxed, corrected, meaning_only = fused
            marked = parsed.words if highlight else []
            hits = self._hydrate_ranked(
                ranked[offset : offset + per_page], marked, parsed.plain and as_you_type
            )
            return SearchResult(
                query=query,
                hits=hits,
                total=total,
                page=page,
                per_page=per_page,
                mode=mode,
                sort=sort,
                fallback=parsed.fallback,
                relaxed=relaxed,
                meaning_only=meaning_only,
                took_ms=(time.perf_counter() - started) * 1000,
                corrected=corrected,
            )
        if parsed.root is None:
            # No query: the newest papers (or the trending ones), filtered.
            q = with_filters(None, filter_queries)
            by = sort if sort in SORT_FIELDS else "date"
            result = self._run(searcher, q, by, offset, per_page, ascending)
        elif parsed.plain:
            result, relaxed = self._plain(
                searcher, parsed.root, filter_queries, sort, offset, per_page, ascending, relax, count
            )
        else:
            q = with_filters(self.builder.node(parsed.root) or tantivy.Query.empty_query(), filter_queries)
            result = self._run(searcher, q, sort, offset, per_page, ascending, count)
        # Without highlights (API clients that show none) the hits skip marking their text, a third of a
        # keyword search's time at a million papers.
        hits = self._hydrate(
            searcher, result.hits, parsed.words if highlight else [], parsed.plain and as_you_type
        )
        return SearchResult(
            query=query,
            hits=hits,
            # Uncounted: at least what this page reached.
            total=result.count if result.count is not None else offset + len(result.hits),
            page=page,
            per_page=per_page,
            mode="keyword",
            sort=sort,
            fallback=parsed.fallback,
            relaxed=relaxed,
            took_ms=(time.perf_counter() - started) * 1000,
        )

    def _lookup(
        self,
        searcher,
        query: str,
        named: list[Identifier],
        filters: Filters,
        sort: str,
        offset: int,
        per_page: int,
        started: float,
        ascending: bool,
    ) -> SearchResult:
        """The papers ``named`` (identifiers_in(query)) that this index holds and the filters keep: in the
        query's order when sorted by relevance, else by the sort. Whatever the mode asked for, none is
        ranked by meaning, so the result says "keyword"."""
        by_doi = self.store.ids_by_doi(i.value for i in named if i.kind == "doi")
        naming: dict[str, Identifier] = {}  # paper id -> what named it
        for identifier in named:
            ids = (
                [identifier.value] if identifier.kind == "arxiv" else by_doi.get(identifier.value.lower(), [])
            )
            for paper_id in ids:
                naming.setdefault(paper_id, identifier)
        if filters.ids:  # arXiv's id_list: only these
            naming = {i: n for i, n in naming.items() if i in filters.ids}

        def held(f: Filters) -> list:
            if not naming:
                return []
            q = with_filters(None, self.builder.filters(replace(f, ids=tuple(naming))))
            by = sort if sort in SORT_FIELDS else "date"
            return self._run(searcher, q, by, 0, len(naming), ascending).hits

        hits = self._hydrate(searcher, held(filters), [], plain=False)
        # Found at all, whatever the filters: a paper the filters leave out is not missing.
        found = (
            {h.id for h in hits} if filters.is_empty() else set(self.keyword.ids(searcher, held(Filters())))
        )
        # In the store but not yet in this node's index (imported by another process moments ago, the
        # index catching up): the store is the truth, so such a paper is shown, not reported missing.
        # Filters are the index's to apply, so under filters it only stops counting as missing.
        if unindexed := [pid for pid in naming if pid not in found]:
            stored = self.store.get_many(unindexed)
            found |= set(stored)
            if stored and filters.is_empty():
                highlighter = self._highlighter([], False)
                hits += [self._hit(paper, 0.0, highlighter) for paper in stored.values()]
                if sort != "relevance":
                    hits.sort(key=lambda h: _sort_value(h.paper, sort), reverse=not ascending)
        if sort == "relevance":
            order = {paper_id: n for n, paper_id in enumerate(naming)}
            hits.sort(key=lambda h: order[h.id])
        for hit in hits:
            hit._matched = ["arXiv id" if naming[hit.id].kind == "arxiv" else "DOI"]
        named_found = {naming[i] for i in found}
        return SearchResult(
            query=query,
            hits=hits[offset : offset + per_page],
            total=len(hits),
            page=offset // per_page + 1,
            per_page=per_page,
            mode="keyword",
            sort=sort,
            took_ms=(time.perf_counter() - started) * 1000,
            lookup=True,
            not_found=[i for i in named if i not in named_found],
        )

    # -- meaning ---------------------------------------------------------------------------------------

    def searchable(self) -> int:
        """Papers in this node's keyword index (what search and lists can show); a COUNT(*) on the store
        costs half a second at a million papers."""
        return self.keyword.searcher().num_docs

    def _names_only(self, words: list[str]) -> bool:
        """Whether every word of the query is a name: in some author's name and in no title or abstract
        ("Khomh", "Foutse Khomh"). The model knows nothing of a name, so closeness in meaning would only
        add the papers nearest to the name's vector after that author's papers; such a query is
        searched by its words alone."""
        tokens = [t for w in words for t in plain_tokens(w) if t not in STOPWORDS]
        return bool(tokens) and all(
            self.builder.doc_freq(t, "authors") and not self.builder.doc_freq(t) for t in tokens
        )

    def vectors_ready(self) -> bool:
        return self.vectors is not None and len(self.vectors) > 0

    def warm_up(self) -> None:
        """Load the models that hybrid search uses, on the model's thread, so that the first visitors'
        searches do not wait for them. The re-scoring model matters too: at 3M its first query took
        2.7 s here, against 20-25 ms after it."""
        if self.vectors_ready():
            self._query_vector("warm up")
        if self.rescoring_ready():
            try:
                self._query_vector("warm up", rescoring=True)
            except ModelUnavailable as exc:
                self._rescoring_off(exc)

    def _query_vector(self, text: str, rescoring: bool = False) -> np.ndarray:
        """The query's vector by the embedding model, or by the re-scoring model when ``rescoring``."""
        key = (rescoring, text)
        with self._cache_lock:
            vector = self._vectors_cache.get(key) if self.vector_cache_size else None
            if vector is not None:
                self._vectors_cache.move_to_end(key)
                return vector
        embedder = (self.rescorer if rescoring else self.embedder)()
        if getattr(_this_thread, "embeds_queries", False):
            vector = embedder.encode_query(text)
        else:
            vector = model_thread().submit(embedder.encode_query, text).result()
        vector.setflags(write=False)  # shared by every search of this text
        with self._cache_lock:
            self._vectors_cache[key] = vector
            while len(self._vectors_cache) > self.vector_cache_size:
                self._vectors_cache.popitem(last=False)
        return vector

    def _semantic(self, searcher, text: str, filter_queries, window: int) -> tuple[list[Ranked], int]:
        qvec = self._query_vector(text)
        rescoring = self._rescore_soon(text)  # while the nearest papers are looked up
        pairs = self._nearest(searcher, qvec, filter_queries, window)
        cosines = self._blended(dict(pairs), rescoring)
        ranked = sorted((Ranked(i, s, cosine=s) for i, s in cosines.items()), key=lambda r: -r.score)
        return ranked, len(ranked)

    def rescoring_ready(self) -> bool:
        return (
            self.rescorer is not None and self.rescore_vectors is not None and len(self.rescore_vectors) > 0
        )

    def _rescore_soon(self, text: str) -> Future | None:
        """The re-scoring model's vector of ``text``, being computed on the model's thread (after what
        it was given before, the embedding model's vector), or None when re-scoring is off."""
        if not self.rescoring_ready():
            return None
        return model_thread().submit(self._query_vector, text, True)

    def _rescoring_off(self, exc: ModelUnavailable) -> None:
        """Installed without the re-scoring model's packages: search goes on without it, and says so
        once."""
        log.warning("re-scoring is off: %s", exc)
        self.rescorer = None

    def _rescore_vector_early(self, text: str, early: Future) -> np.ndarray | None:
        """On the model's thread: the re-scoring model's vector of ``text`` with the fixes that ``early``
        (see _embed_soon) found, which ran before this on the same thread; None where it found none
        (the fixes then come from the keyword hits: _hybrid asks for the vector after them)."""
        fixed = early.result()
        return None if fixed is None else self._query_vector(_with_fixes(text, fixed[0]), rescoring=True)

    def _blended(self, cosines: dict[str, float | None], rescoring: Future | None) -> dict[str, float | None]:
        """``cosines`` (paper id -> the embedding model's cosine, None without a vector) blended with the
        re-scoring model's (see RESCORE_SHARE). A paper without a vector by the second model keeps its
        first cosine. Unchanged when ``rescoring`` is None or its model cannot be loaded."""
        if rescoring is None:
            return cosines
        try:
            qvec = rescoring.result()
        except ModelUnavailable as exc:
            self._rescoring_off(exc)
            return cosines
        second = self.rescore_vectors.similarities([i for i, c in cosines.items() if c is not None], qvec)
        return {
            pid: c
            if c is None or pid not in second
            else (1 - RESCORE_SHARE) * c + RESCORE_SHARE * second[pid]
            for pid, c in cosines.items()
        }

    def _hybrid_pages(
        self, searcher, root, text: str, filter_queries, wanted: int, count: bool = True
    ) -> _Fused:
        """The first ``wanted`` fused results, stable across pages: block b (POOL results) is the ranking
        of a window of b * POOL less what blocks 1..b-1 showed, so that a wider window (a deeper page),
        which reorders the top, never repeats a paper on a later page or skips one. The rest as the
        first window's (see _hybrid)."""
        first = fused = self._hybrid(searcher, root, text, filter_queries, POOL, count)
        # A window that came back full may have more behind it.
        shown, more, window = first.ranked[:POOL], len(first.ranked) >= POOL, POOL
        while len(shown) < wanted and more and window < MAX_POOL:
            window = min(MAX_POOL, window + POOL)
            seen = {r.id for r in shown}
            fused = self._hybrid(searcher, root, text, filter_queries, window, count)
            rest = [r for r in fused.ranked if r.id not in seen]
            shown.extend(rest[:POOL])
            more = len(rest) > POOL or len(fused.ranked) >= window
        return first._replace(ranked=shown, total=fused.total, relaxed=fused.relaxed)

    def _hybrid(self, searcher, root, text: str, filter_queries, window: int, count: bool = True) -> _Fused:
        """Keyword and meaning, fused by score, not by rank: a paper's keyword score says how much of the
        query it matches and where (normalised to 0..1 by the best possible score), its cosine how close
        it is in meaning. Papers matching every word in the title stay on top; when the words match
        poorly (a query that describes an idea), closeness in meaning decides. Also the query with its
        misspellings fixed as the model read them, or None when it had none."""
        words, _ = self._plain_parts(root)
        unknown = self._unknown_tokens(words)
        # The model reads the query as typed, its typos and unfinished last word fixed from the index's
        # words: on the other core, while the keyword side searches. A fix the index's words cannot
        # give (two typos in a word) is taken from the keyword hits, after the search.
        early, early_nearest = self._embed_soon(text, unknown, searcher, filter_queries, window)
        best = max(1, len(words)) * (WORD_BASE + IDF_BAND + max(BONUS.values())) + sum(PHRASE_BONUS.values())
        started_early: list[Future] = []

        def most_words(matched: int) -> None:
            # The relaxing walk's best paper matches ``matched`` words: where that makes the query
            # a description (see _likely_described), the second model starts on its vector now, on
            # the model's thread after the first, instead of after the keyword side has ranked.
            if (
                RESCORE_EARLY
                and not started_early
                and len(words) >= RESCORE_MIN_WORDS
                and _likely_described(matched, best)
                and self.rescoring_ready()
            ):
                started_early.append(model_thread().submit(self._rescore_vector_early, text, early))

        result, relaxed = self._plain(
            searcher,
            root,
            filter_queries,
            "relevance",
            0,
            window,
            relax=True,
            count=count,
            most_words=most_words,
        )
        keyword_ids = self.keyword.ids(searcher, result.hits)
        keyword_scores = {i: float(sc) for (sc, _), i in zip(result.hits, keyword_ids, strict=True)}
        fixed_early = early.result()
        pairs = None
        if fixed_early is not None:
            fixes, qvec = fixed_early
            pairs = early_nearest.result()
        else:
            fixes = self._fixes(unknown, keyword_ids[:CORRECTION_HITS])
            qvec = self._query_vector(_with_fixes(text, fixes))
        misspelt = {u.token for u in unknown if u.typo}
        spelling = {t: f for t, f in fixes.items() if t in misspelt and not f.startswith(t)}
        shares = {pid: min(1.0, score / best) for pid, score in keyword_scores.items()}
        # Whether any paper's words count in the fusion (see below): where none does, meaning alone ranks.
        words_count = any(share > KEYWORD_MIN_SHARE for share in shares.values())
        # No paper matches more than half the words of a query of RESCORE_MIN_WORDS or more: the query
        # describes an idea, and the stronger model embeds it while the nearest papers are looked up.
        described = len(words) >= RESCORE_MIN_WORDS and not words_count
        rescoring = None
        if described and started_early and fixed_early is not None:
            rescoring = started_early[0]  # the vector of the same text: the fixes it read are these
        elif described:
            rescoring = self._rescore_soon(_with_fixes(text, fixes))
        elif started_early:
            started_early[0].cancel()  # not begun yet: the model's thread skips it
        if pairs is None:
            pairs = self._nearest(searcher, qvec, filter_queries, window)
        cosines: dict[str, float | None] = {i: float(s) for i, s in pairs}
        unscored = [pid for pid in keyword_ids if pid not in cosines]
        cosines.update(dict.fromkeys(unscored))
        cosines.update(self.vectors.similarities(unscored, qvec))
        cosines = self._blended(cosines, rescoring)
        ranked = []
        for pid in dict.fromkeys([*keyword_ids, *cosines]):
            # The exponent keeps papers matching few words of a long descriptive query from outranking
            # papers close in meaning, while papers matching the whole query keep nearly their score;
            # papers matching half the words or fewer are left to the meaning side.
            share = shares.get(pid, 0.0)
            kw = share**KEYWORD_EXPONENT if share > KEYWORD_MIN_SHARE else 0.0
            cos = cosines.get(pid)
            meaning = (
                0.0
                if cos is None
                else min(1.0, max(0.0, (cos - COSINE_FLOOR) / (COSINE_CEIL - COSINE_FLOOR)))
            )
            ranked.append(Ranked(pid, kw + MEANING_WEIGHT * meaning, cosine=cos, keyword=kw))
        # Where no paper matches a word of the query, a paper not close in meaning either (below the
        # cosine floor) is no result: a name that no paper here has ("Maldacena") finds nothing, where
        # it listed the hundred papers nearest to the name's vector. Where words match, the papers
        # below the floor stay after the matches: for a short query MiniLM's cosines run low, and a
        # paper judged relevant to "smart contracts" (on Ethereum's signature libraries) is at 0.19.
        if not keyword_scores:
            ranked = [r for r in ranked if r.score > 0]
        # Among papers scoring 0, closeness in meaning orders them, then the keyword score.
        ranked.sort(
            key=lambda r: (r.score, -2.0 if r.cosine is None else r.cosine, keyword_scores.get(r.id, 0.0)),
            reverse=True,
        )
        total = (result.count or 0) + sum(1 for r in ranked if r.id not in keyword_scores)
        corrected = _with_fixes(text, spelling) if spelling else None
        return _Fused(ranked, total, relaxed, corrected, meaning_only=bool(ranked) and not words_count)

    def _embed_soon(
        self, text: str, unknown: list[_Unknown], searcher, filter_queries, window: int
    ) -> tuple[Future, Future]:
        """The fixes of the ``unknown`` tokens of ``text`` from the index's words (see _fixes_from_terms)
        and the query vector of the text so fixed, being computed on the model's thread (None from it
        when a token has no such fix); and the ``window`` papers nearest to that vector, looked up as
        soon as it is ready (None without it). Both while the keyword side searches: at 3M a prefix
        or a long query keeps it busy for longer than the embedding takes."""

        def embed() -> tuple[dict[str, str], np.ndarray] | None:
            fixes = self._fixes_from_terms(searcher, unknown)
            return None if fixes is None else (fixes, self._query_vector(_with_fixes(text, fixes)))

        embedded = model_thread().submit(embed)
        nearest: Future = Future()

        def look_up(qvec: np.ndarray) -> None:
            try:
                nearest.set_result(self._nearest(searcher, qvec, filter_queries, window))
            except BaseException as exc:  # noqa: BLE001 - raised again where the result is read
                nearest.set_exception(exc)

        def when_embedded(done: Future) -> None:
            if done.exception() is not None or done.result() is None:
                nearest.set_result(None)  # the caller reads the embedding's error, or embeds later
            else:
                lookup_threads().submit(look_up, done.result()[1])

        if NEAREST_EARLY:
            embedded.add_done_callback(when_embedded)
        else:
            nearest.set_result(None)
        return embedded, nearest

    @staticmethod
    def _fixes_from_terms(searcher, unknown: list[_Unknown]) -> dict[str, str] | None:
        """Unknown query token (see _unknown_tokens) -> the indexed word it stands for: the word being
        typed completed to the commonest indexed word it begins, a typo to the commonest indexed word one
        edit away (the same edit the keyword side allows). Tokens too short for either, and English words
        that complete to nothing, stay as typed.
        None when a token the keyword side would match as a typo has no word one edit away: the keyword
        hits show what it matched (two edits, in words of 9+ letters)."""
        fixes = {}
        for token, prefix, typo in unknown:
            if prefix:
                completions = searcher.terms_with_prefix("text_plain", token, limit=1)
                if completions:
                    fixes[token] = completions[0][0]
                    continue
            if not typo or len(token) < ONE_TYPO:
                continue
            near = [(searcher.doc_freq("text_plain", w), w) for w in _one_edit_away(token)]
            df, word = max(near, default=(0, ""))
            if not df:
                return None
            fixes[token] = word
        return fixes

    def _unknown_tokens(self, words: list[Word]) -> list[_Unknown]:
        """The query tokens the index does not hold, each with whether it is the word being typed and
        whether it may be a typo. A real word missing from the papers ("unequally") is meant as typed,
        and reading it as a typo of a word they do hold ("equally") would turn the query's meaning
        around; but while it is being typed it may be unfinished ("gamma-ray bur", "bur" being English),
        and completing it to a word it begins changes no meaning the user gave."""
        unknown = []
        for word in words:
            for token, prefix in tokens_as_typed(word):
                if not self.builder.doc_freq(token):
                    typo = not is_english_word(token)
                    if typo or prefix:
                        unknown.append(_Unknown(token, prefix, typo))
        return unknown

    def _fixes(self, unknown: list[_Unknown], top_ids: list[str]) -> dict[str, str]:
        """Unknown query token (see _unknown_tokens) -> the word it matched (as a typo, or as the prefix
        being typed) most often in the papers ``top_ids``. The model reads the query as typed (stop words
        included: it reads whole sentences) with these replaced: a misspelled word is noise to it
        ("mutaton" is not "mutation" to it), though not to the keyword engine."""
        if not top_ids or not unknown:
            return {}
        # Only the unknown tokens are looked for: marking every query word costs several times more.
        highlighter = Highlighter([u.token for u in unknown], last_is_prefix=unknown[-1].prefix)
        found: dict[tuple[str, str], Counter] = {}
        for paper in self.store.get_many(top_ids).values():
            paper_text = f"{paper.title} {paper.abstract}"
            for mark in highlighter.marks(paper_text):
                if mark.how in ("typo", "prefix"):
                    found.setdefault((mark.query_word, mark.how), Counter())[
                        paper_text[mark.start : mark.end].lower()
                    ] += 1
        fixes = {}
        for token, prefix, typo in unknown:
            # The word being typed is completed; an unknown word that is not English is read as a typo.
            for how in ("prefix",) * prefix + ("typo",) * typo:
                if (token, how) in found:
                    fixes[token] = found[(token, how)].most_common(1)[0][0]
                    break
        return fixes

    def _nearest(self, searcher, qvec, filter_queries, window: int) -> list[tuple[str, float]]:
        """The ``window`` papers nearest to ``qvec`` that pass the filters (over-fetching when filtering)."""
        ids, scores = self.vectors.search(qvec, k=window * (4 if filter_queries else 1))
        pairs = [(i, float(s)) for i, s in zip(ids, scores, strict=True)]
        if filter_queries:
            passing = self._passing(searcher, ids, filter_queries)
            pairs = [(i, s) for i, s in pairs if i in passing][:window]
        return pairs

    def _passing(self, searcher, ids: list[str], filter_queries) -> set[str]:
        """Which of ``ids`` pass the filters (one tantivy lookup instead of loading every paper)."""
        if not ids:
            return set()
        q = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, tantivy.Query.term_set_query(self.keyword.schema, "id", ids))]
            + [(tantivy.Occur.Must, f) for f in filter_queries]
        )
        result = searcher.search(q, limit=len(ids), count=False)
        return set(self.keyword.ids(searcher, result.hits))

    def _highlighter(self, words: list[str], plain: bool) -> Highlighter:
        """Marks what the index matches by: not the near spellings of words it takes as typed."""
        return Highlighter(
            words,
            last_is_prefix=plain,
            typed_as_meant=self.builder.typed_as_meant,
            written_apart=self.builder.written_apart,
        )

    def _hydrate_ranked(self, ranked: list[Ranked], words: list[str], plain: bool) -> list[Hit]:
        papers = self.store.get_many([r.id for r in ranked])
        highlighter = self._highlighter(words, plain)
        hits = []
        for r in ranked:
            paper = papers.get(r.id)
            if paper is None:
                continue
            hit = self._hit(paper, r.score, highlighter)
            if r.cosine is not None and (not hit.matched or (r.keyword or 0) < 0.5):
                hit.matched.append(f"close in meaning (similarity {r.cosine:.2f})")
            hits.append(hit)
        return hits

    def similar(self, paper_id: str, limit: int = 10) -> list[Hit]:
        """Papers nearest in meaning to ``paper_id`` (never itself). Without a vector for it yet, the
        papers that best match its title's words."""
        vector = self.vectors.vector(paper_id) if self.vectors is not None else None
        if vector is not None:
            ids, scores = self.vectors.search(vector, k=limit + 1)
            ranked = [
                Ranked(i, float(sc), cosine=float(sc))
                for i, sc in zip(ids, scores, strict=True)
                if i != paper_id
            ]
            return self._hydrate_ranked(ranked[:limit], [], plain=False)
        paper = self.store.get(paper_id)
        if paper is None:
            return []
        words = [w for w in plain_tokens(paper.title)][:12]
        result = self.search(" ".join(words), per_page=limit + 1, mode="keyword")
        return [h for h in result.hits if h.id != paper_id][:limit]

    def compile(self, query: str, filters: Filters | None = None) -> tantivy.Query:
        """The tantivy query a search for ``query`` runs first (every word required: the ranking query,
        or the full ranking of the two phases); for benchmarks."""
        parsed = parse_query(query)
        self.builder.searcher = self.keyword.searcher()
        filter_queries = self.builder.filters(filters or Filters())
        if parsed.root is None:
            return with_filters(None, filter_queries)
        if parsed.plain:
            words, phrases = self._plain_parts(parsed.root)
            words = self.builder.with_solid_pairs(words)
            ranking = self._one_query(words, phrases)
            q = ranking.query() if ranking is not None else self.builder.plain(words, phrases, len(words))
            return with_filters(q, filter_queries)
        return with_filters(self.builder.node(parsed.root) or tantivy.Query.empty_query(), filter_queries)

    @staticmethod
    def _plain_parts(root) -> tuple[list[Word], list[Phrase]]:  # noqa: ANN001
        parts = root.parts if isinstance(root, And) else (root,)
        return meaningful([p for p in parts if isinstance(p, Word)]), [
            p for p in parts if isinstance(p, Phrase)
        ]

    def _plain(
        self,
        searcher,
        root,
        filter_queries,
        sort,
        offset,
        per_page,
        ascending: bool = False,
        relax: bool = True,
        count: bool = True,
        most_words: Callable[[int], None] | None = None,
    ) -> tuple[tantivy.SearchResult, bool]:
        """All words first; when fewer papers than a page match them all, accept one word fewer, and so
        on (papers matching more words still rank first: each word adds to the score). ``most_words``
        is told the most words a paper matches, where the walk of _most_matched sees it."""
        words, phrases = self._plain_parts(root)
        words = self.builder.with_solid_pairs(words)
        dropped = False
        if relax and len(words) > 1:
            # A word no paper can match only empties the results: relaxing would drop it first.
            live = [w for w in words if not self.builder.matches_nothing(w)]
            if live and len(live) < len(words):
                words, dropped = live, True
        need = need_first = max(1, len(words))
        every_word = None  # how many papers match every word, where counted already
        if sort == "relevance" and words:
            found = self._ranked(
                searcher, words, phrases, filter_queries, offset, per_page, count, relax and need > 1
            )
            if found is not None and found.ranked:
                return found, dropped
            if found is not None and relax and need > 1:
                # Counted already: too few papers have every word, so asking for them all again (a walk
                # over the union of the words' postings) would only repeat that.
                need_first, every_word = need - 1, found.count
        result = None
        bar = min(per_page, 10)  # papers a level needs for relaxing to stop there
        level_ids: list[str] | None = None  # every paper of the first level, where the counting walk saw them
        if relax and need_first >= RELAX_JUMP_FROM and (count or offset == 0):
            need_first, level_ids = self._most_matched(
                searcher, words, phrases, filter_queries, need_first, bar, most_words
            )
        for at_least in range(need_first, 0, -1):
            # The level's papers ranked alone: any one word lets them through, as they all reach it.
            alone = bool(level_ids) and at_least == need_first
            q = self.builder.plain(words, phrases, 1 if alone else at_least)
            if alone and q is not None:
                q = self._among(level_ids, q)
            q = with_filters(q, filter_queries)
            result = self._run(searcher, q, sort, offset, per_page, ascending, count)
            matches = result.count if count else offset + len(result.hits)
            if (matches or 0) >= bar or at_least == 1 or not relax:
                # Relaxing that found no paper beyond those with every word did not relax the results:
                # "Foutse Khomh" with one such paper is no partial match.
                partial = at_least < need and not (every_word is not None and matches == every_word)
                return result, dropped or partial
        return result, dropped

    def _most_matched(
        self,
        searcher,
        words: list[Word],
        phrases: list[Phrase],
        filter_queries,
        most: int,
        bar: int,
        most_words: Callable[[int], None] | None = None,
    ) -> tuple[int, list[str] | None]:
        """Where relaxing may start, from one cheap walk of the words' union instead of one walk per
        level: the most words (up to ``most``) that ``bar`` papers match (the relaxing loop's bar: a
        page, at most 10): the ``bar``-th best count of QueryBuilder.words_matched. That is
        the level where stepping down from ``most`` stops, exactly. Words of other kinds (fields,
        wildcards) are not counted that way: ``most`` for them.

        With the level, the ids of every paper that reaches it, where the walk's first LEVEL_IDS hits
        hold them all (None otherwise): the same walk with a longer list of hits costs no more, and
        ranking only those papers is a fraction of ranking the level's walk over the whole union."""
        counting = self.builder.words_matched(words, phrases)
        if counting is None:
            return most, None
        limit = max(bar, LEVEL_IDS)
        hits = searcher.search(with_filters(counting, filter_queries), limit=limit, count=False).hits
        if most_words is not None and hits:
            most_words(round(float(hits[0][0])))
        # Fewer than ``bar`` papers: no level but the last passes the bar, where the loop would end.
        level = 1 if len(hits) < bar else max(1, min(most, round(float(hits[bar - 1][0]))))
        if len(hits) == limit and round(float(hits[-1][0])) >= level:
            return level, None  # papers at the level may lie beyond the hits read
        return level, self.keyword.ids(searcher, [h for h in hits if round(float(h[0])) >= level])

    def _among(self, ids: list[str], q: tantivy.Query) -> tantivy.Query:
        """``q`` for the papers ``ids`` only, scored as ``q`` scores them."""
        only = tantivy.Query.const_score_query(
            tantivy.Query.term_set_query(self.keyword.schema, "id", ids), 0.0
        )
        return with_filters(q, [only])

    def _ranked(
        self,
        searcher,
        words,
        phrases,
        filter_queries,
        offset: int,
        per_page: int,
        count: bool = True,
        may_relax: bool = True,
    ) -> Found | None:
        """Every word required, ranked. One query (QueryBuilder.ranking), except for a lone word being
        typed, whose completions can match most papers: there the two phases, whose first tantivy cuts
        short by BM25 bounds. When fewer papers than a page match and ``may_relax``, only their count
        (ranked=False: the caller relaxes instead)."""
        ranking = self._one_query(words, phrases)
        if ranking is None:
            phases = self._two_phase if offset + per_page <= CANDIDATES else self._past_two_phase
            return phases(searcher, words, phrases, filter_queries, offset, per_page, count)
        in_a_row = self.builder.words_in_a_row(words, "abstract")
        limit = offset + per_page if in_a_row is None else max(offset + per_page, RESCORE_WINDOW)
        # Built once for the title tier and for ranking every match, which both run it.
        parts = ranking.apart() if RANK_APART else None
        found, counting = self._title_first(
            searcher, words, phrases, ranking, parts, filter_queries, limit, count
        )
        if found is None:
            # Where the count is under way already, the ranking query need not count again.
            counts = count and counting is None
            found, total = _search_ranking(searcher, ranking, parts, filter_queries, limit, counts)
        else:
            total = len(found)
        if counting is not None:
            total = counting.result()
        if may_relax and offset == 0 and total < min(per_page, 10):
            return Found([], total, ranked=False)
        hits = [(float(score) + ranking.offset, address) for score, address in found]
        if in_a_row is not None and len(hits) > 1:
            hits = self._rescored(searcher, hits, in_a_row)
        return Found(hits[offset : offset + per_page], total)

    def _title_first(
        self, searcher, words, phrases, ranking: Ranking, parts, filter_queries, limit: int, count: bool
    ) -> tuple[list | None, Future | None]:
        """The first ``limit`` hits of the ranking query (``ranking``, or its ``parts`` where it runs
        apart: see _search_ranking), from the papers with every word in
        the title alone where that is sure to give the same hits (QueryBuilder.title_tier; None where it
        is not: the query ranks every match then), and the total: counted meanwhile on a lookup thread
        (COUNT_BESIDE; otherwise after the tier, where it gave the hits), by intersections that read no
        scores (QueryBuilder.counted_apart; None where not counted)."""
        tier = self.builder.title_tier(words, phrases, limit, ranking)
        if tier is None:
            return None, None

        def counted() -> int:
            parts = self.builder.counted_apart(words, phrases) or [self.builder.candidates(words, phrases)]
            return _count(
                searcher, [with_filters(part, filter_queries) for part in parts if part is not None]
            )

        counting = lookup_threads().submit(counted) if count and COUNT_BESIDE else None
        in_title = tantivy.Query.const_score_query(tier.query, 0.0)  # a filter: the scores stay the query's
        hits, _ = _search_ranking(searcher, ranking, parts, [in_title, *filter_queries], limit, False)
        if len(hits) < limit or float(hits[-1][0]) <= tier.above:
            return None, counting
        if count and counting is None:
            counting = Future()
            counting.set_result(counted())
        return hits, counting

    def _rescored(self, searcher, hits: list, in_a_row: tantivy.Query) -> list:
        """``hits`` with the first RESCORE_WINDOW re-ordered by the abstract's phrase bonus, looked up
        for them alone (by id: a handful of seeks, not the phrase's every position). The ids are a union
        of term queries: a term set query builds a bitset over the whole index (0.5 ms at 1M)."""
        window = hits[:RESCORE_WINDOW]
        schema = self.keyword.schema
        these = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Should, tantivy.Query.term_query(schema, "id", i))
                for i in self.keyword.ids(searcher, window)
            ]
        )
        q = tantivy.Query.boolean_query([(tantivy.Occur.Must, these), (tantivy.Occur.Must, in_a_row)])
        phrased = {(a.segment_ord, a.doc) for _, a in searcher.search(q, limit=len(window), count=False).hits}
        if not phrased:
            return hits
        bonus = PHRASE_BONUS["abstract"]
        window = [(s + bonus if (a.segment_ord, a.doc) in phrased else s, a) for s, a in window]
        window.sort(key=lambda hit: hit[0], reverse=True)  # stable: ties keep tantivy's order
        return window + hits[RESCORE_WINDOW:]

    def _one_query(self, words: list[Word], phrases: list[Phrase]) -> Ranking | None:
        """The ranking query's clauses and score offset (QueryBuilder.ranking), or None where the two phases
        rank: a lone word being typed, or field syntax."""
        if len(words) == 1 and words[0].prefix and len(plain_tokens(words[0].text)) == 1:
            return None
        return self.builder.ranking(words, phrases)

    def _two_phase(
        self, searcher, words, phrases, filter_queries, offset: int, per_page: int, count: bool = True
    ) -> Found | None:
        """Every word required, fast: the cheap candidate query counts the matches and picks the best
        CANDIDATES by BM25 (plus the best papers with every word in the title); the full ranking query
        then orders only those. When fewer papers match than a page, only their count (ranked=False: the
        caller relaxes instead); None when the words make no candidate query."""
        cheap = self.builder.candidates(words, phrases)
        if cheap is None:
            return None
        first = searcher.search(with_filters(cheap, filter_queries), limit=CANDIDATES, count=count)
        # Uncounted, the total is the matches seen: exact below CANDIDATES, a lower bound at it.
        total = (first.count or 0) if count else len(first.hits)
        if total < min(per_page, 10):
            return Found([], total, ranked=False)
        # BM25 from the candidate query breaks ties between papers the ranking scores alike. Keyed by
        # document address (same searcher), so the ranked hits need no id lookups.
        bm25 = {(a.segment_ord, a.doc): float(score) for score, a in first.hits}
        ids = self.keyword.ids(searcher, first.hits)
        if len(first.hits) == CANDIDATES:  # there may be more: add the best with every word in the title
            title_only = self.builder.candidates(words, phrases, in_title=True)
            if title_only is not None:
                more = searcher.search(
                    with_filters(title_only, filter_queries), limit=CANDIDATES, count=False
                )
                ids = list(dict.fromkeys([*self.keyword.ids(searcher, more.hits), *ids]))
        # Restricted to the candidates by id even when they are every match. Chosen (2026-12-01) when
        # "every word" was "at least n of n", which walks the union of the words' postings; measured again
        # with the intersection (2026-12-02, 1M): ranking every match with one query was no faster
        # (mean 6.4-7.0 ms with the BM25 tie-breaks, against 6.0-6.4 for the two phases).
        full = self.builder.plain(words, phrases, len(words), light_bonus=True)
        q = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Must, tantivy.Query.term_set_query(self.keyword.schema, "id", ids)),
                (tantivy.Occur.Must, full),
            ]
        )
        scored = searcher.search(q, limit=len(ids), count=False).hits
        order = sorted(
            scored,
            key=lambda hit: float(hit[0]) + TIE_BREAK * bm25.get((hit[1].segment_ord, hit[1].doc), 0.0),
            reverse=True,
        )
        return Found(order[offset : offset + per_page], total)

    def _past_two_phase(
        self, searcher, words, phrases, filter_queries, offset: int, per_page: int, count: bool = True
    ) -> Found | None:
        """A page past the first CANDIDATES results: the full ranking of every match, less the papers
        the two-phase ranking already showed on the first pages. Without this, the two orders disagree
        at the boundary and deep pages repeat papers (and skip others)."""
        served = CANDIDATES // per_page * per_page  # what the two-phase pages showed
        first = (
            self._two_phase(searcher, words, phrases, filter_queries, 0, served, count) if served else None
        )
        if first is None or not first.ranked:
            return None
        # Compared by document address (same searcher): no id lookups.
        shown = {(a.segment_ord, a.doc) for _, a in first.hits}
        q = with_filters(self.builder.plain(words, phrases, len(words)), filter_queries)
        # At most len(shown) of the first offset + per_page are left out.
        full = searcher.search(q, limit=offset + per_page, count=False).hits
        rest = [hit for hit in full if (hit[1].segment_ord, hit[1].doc) not in shown]
        start = offset - served
        return Found(rest[start : start + per_page], first.count)

    @staticmethod
    def _run(
        searcher,
        q: tantivy.Query,
        sort: str,
        offset: int,
        per_page: int,
        ascending: bool = False,
        count: bool = True,
    ) -> tantivy.SearchResult:
        if sort == "relevance":
            return searcher.search(q, limit=per_page, offset=offset, count=count)
        return searcher.search(
            q,
            limit=per_page,
            offset=offset,
            count=count,
            order_by_field=SORT_FIELDS[sort],
            order=tantivy.Order.Asc if ascending else tantivy.Order.Desc,
        )

    def _hydrate(self, searcher, raw_hits, words: list[str], plain: bool) -> list[Hit]:
        ids = self.keyword.ids(searcher, raw_hits)
        papers = self.store.get_many(ids)
        highlighter = self._highlighter(words, plain)
        hits = []
        for (score, _), pid in zip(raw_hits, ids, strict=True):
            paper = papers.get(pid)
            if paper is None:  # deleted in the store after the index saw it; the next catch-up drops it
                continue
            hits.append(self._hit(paper, float(score) if isinstance(score, float) else 0.0, highlighter))
        return hits

    @staticmethod
    def _hit(paper: StoredPaper, score: float, highlighter: Highlighter) -> Hit:
        return Hit(id=paper.id, score=score, paper=paper, highlighter=highlighter)


_default: SearchEngine | None = None


_NEVER = datetime.min.replace(tzinfo=UTC)


def _search_ranking(
    searcher, ranking: Ranking, parts: list[tantivy.Query] | None, filter_queries, limit: int, count: bool
) -> tuple[list, int]:
    """The first ``limit`` hits of ``ranking``'s query and how many papers it matches (where not
    ``count``: the hits given): as its disjoint ``parts`` (Ranking.apart) where it has some, else as
    one query."""
    if parts is not None:
        return _search_apart(searcher, parts, filter_queries, limit, count)
    result = searcher.search(with_filters(ranking.query(), filter_queries), limit=limit, count=count)
    return result.hits, result.count if count else len(result.hits)


def _search_apart(
    searcher, parts: list[tantivy.Query], filter_queries, limit: int, count: bool
) -> tuple[list, int]:
    """The first ``limit`` hits of the disjoint queries ``parts`` together (Ranking.apart),
    in tantivy's order (best first; a tie in document order), and how many papers they match (where
    not ``count``: the hits given)."""
    hits, total = [], 0
    for part in parts:
        result = searcher.search(with_filters(part, filter_queries), limit=limit, count=count)
        hits += result.hits
        total += (result.count or 0) if count else 0
    hits.sort(key=lambda hit: (-float(hit[0]), hit[1].segment_ord, hit[1].doc))
    return hits[:limit], total if count else min(limit, len(hits))


def _count(searcher, queries: list[tantivy.Query]) -> int:
    """How many papers match ``queries`` (disjoint), without scoring them."""
    return sum(
        searcher.search(tantivy.Query.const_score_query(q, 0.0), limit=1, count=True).count or 0
        for q in queries
    )


def _likely_described(matched: int, best: float) -> bool:
    """Whether no paper will score above KEYWORD_MIN_SHARE of ``best`` (a description: see _hybrid)
    where the best paper matches ``matched`` words, each taken at WORD_BASE: the middle of a word's
    band, where the bonuses of the commonest match (the abstract) and the lower base of common words
    about cancel out. A guess, only for when to start the second model: on 200 described queries at 3M
    it started it for 16, 12 of them re-scored, all 12 of the re-scored."""
    return matched * WORD_BASE <= KEYWORD_MIN_SHARE * best


def _sort_value(paper: StoredPaper, sort: str) -> float | datetime:
    """What a sort by field (SORT_FIELDS) orders ``paper`` by, read from the store's copy."""
    if sort == "trending":
        return paper.trending_score
    when = paper.updated or paper.published if sort == "updated" else paper.published
    return when or _NEVER


def _with_fixes(text: str, fixes: dict[str, str]) -> str:
    """``text`` with each whole-word token of ``fixes`` (any case) replaced by its fix."""
    for token, fixed in fixes.items():
        text = re.sub(rf"(?<!\w){re.escape(token)}(?!\w)", lambda _m, f=fixed: f, text, flags=re.IGNORECASE)
    return text


def _one_edit_away(word: str) -> set[str]:
    """Every string one deletion, transposition, substitution or insertion (of a letter) from ``word``."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return (
        {a + b[1:] for a, b in splits if b}
        | {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
        | {a + c + b[1:] for a, b in splits if b for c in ascii_lowercase}
        | {a + c + b for a, b in splits for c in ascii_lowercase}
    ) - {word}


def default_engine() -> SearchEngine:
    global _default
    if _default is None:
        _default = SearchEngine.open()
    return _default


def reset_default_engine() -> None:
    global _default
    if _default is not None:
        _default.store.close()
    _default = None


def search(
    query: str = "",
    filters: Filters | None = None,
    sort: str = DEFAULT_SORT,
    page: int = 1,
    per_page: int = 10,
    mode: str = DEFAULT_MODE,
) -> SearchResult:
    """Search the catalogue (see :meth:`SearchEngine.search`) with this process's default engine."""
    return default_engine().search(query, filters, sort, page, per_page, mode)
