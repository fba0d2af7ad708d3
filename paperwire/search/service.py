"""``search()``: the one entry point the CLI, the web pages and every API use."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import tantivy
from markupsafe import Markup

from paperwire.config import get_settings
from paperwire.search.highlight import Highlighter
from paperwire.search.keyword import Filters, KeywordIndex, QueryBuilder, meaningful, with_filters
from paperwire.search.query import And, Phrase, QueryError, Word, parse_query
from paperwire.store import Store, StoredPaper, open_store

MODES = ("hybrid", "keyword", "semantic")
SORTS = ("relevance", "date", "trending")
MAX_PER_PAGE = 100
# Deep pages cost as much as all the pages before them; nobody reads past this.
MAX_RESULT_WINDOW = 10_000


@dataclass
class Hit:
    id: str
    score: float
    paper: StoredPaper
    title_html: Markup
    abstract_html: Markup  # a snippet around the matches (the whole abstract when short)
    matched: list[str] = field(default_factory=list)  # why it matched

    @property
    def title(self) -> str:
        return self.paper.title

    @property
    def abstract(self) -> str:
        return self.paper.abstract


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
    took_ms: float = 0.0

    @property
    def pages(self) -> int:
        return max(1, -(-min(self.total, MAX_RESULT_WINDOW) // self.per_page))


class SearchEngine:
    """The store plus this node's derived indexes."""

    def __init__(self, store: Store, keyword: KeywordIndex):
        self.store = store
        self.keyword = keyword
        self.builder = QueryBuilder(keyword.schema)

    @classmethod
    def open(cls, store: Store | None = None, index_dir: Path | None = None) -> SearchEngine:
        settings = get_settings()
        return cls(store or open_store(), KeywordIndex(index_dir or settings.index_dir / "keyword"))

    def search(
        self,
        query: str = "",
        filters: Filters | None = None,
        sort: str = "relevance",
        page: int = 1,
        per_page: int = 10,
        mode: str = "hybrid",
    ) -> SearchResult:
        started = time.perf_counter()
        if mode not in MODES:
            raise QueryError(f"mode must be one of {', '.join(MODES)}")
        if sort not in SORTS:
            raise QueryError(f"sort must be one of {', '.join(SORTS)}")
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        page = max(1, page)
        offset = (page - 1) * per_page
        if offset + per_page > MAX_RESULT_WINDOW:
            raise QueryError(
                f"results beyond the first {MAX_RESULT_WINDOW:,} are not available; refine the query"
            )
        parsed = parse_query(query)
        filters = filters or Filters()
        filter_queries = self.builder.filters(filters)
        searcher = self.keyword.searcher()
        self.builder.searcher = searcher
        relaxed = False
        if parsed.root is None:
            # No query: the newest papers (or the trending ones), filtered.
            q = with_filters(None, filter_queries)
            result = self._run(searcher, q, "trending" if sort == "trending" else "date", offset, per_page)
        elif parsed.plain:
            result, relaxed = self._plain(searcher, parsed.root, filter_queries, sort, offset, per_page)
        else:
            q = with_filters(self.builder.node(parsed.root) or tantivy.Query.empty_query(), filter_queries)
            result = self._run(searcher, q, sort, offset, per_page)
        hits = self._hydrate(searcher, result.hits, parsed.words, parsed.plain)
        return SearchResult(
            query=query,
            hits=hits,
            total=result.count or 0,
            page=page,
            per_page=per_page,
            mode="keyword",
            sort=sort,
            fallback=parsed.fallback,
            relaxed=relaxed,
            took_ms=(time.perf_counter() - started) * 1000,
        )

    def compile(self, query: str, filters: Filters | None = None) -> tantivy.Query:
        """The tantivy query a search for ``query`` runs first (every word required); for benchmarks."""
        parsed = parse_query(query)
        self.builder.searcher = self.keyword.searcher()
        filter_queries = self.builder.filters(filters or Filters())
        if parsed.root is None:
            return with_filters(None, filter_queries)
        if parsed.plain:
            words, phrases = self._plain_parts(parsed.root)
            return with_filters(self.builder.plain(words, phrases, len(words)), filter_queries)
        return with_filters(self.builder.node(parsed.root) or tantivy.Query.empty_query(), filter_queries)

    @staticmethod
    def _plain_parts(root) -> tuple[list[Word], list[Phrase]]:  # noqa: ANN001
        parts = root.parts if isinstance(root, And) else (root,)
        return meaningful([p for p in parts if isinstance(p, Word)]), [
            p for p in parts if isinstance(p, Phrase)
        ]

    def _plain(
        self, searcher, root, filter_queries, sort, offset, per_page
    ) -> tuple[tantivy.SearchResult, bool]:
        """All words first; when fewer papers than a page match them all, accept one word fewer, and so
        on (papers matching more words still rank first: each word adds to the score)."""
        words, phrases = self._plain_parts(root)
        need = max(1, len(words))
        result = None
        for at_least in range(need, 0, -1):
            q = with_filters(self.builder.plain(words, phrases, at_least), filter_queries)
            result = self._run(searcher, q, sort, offset, per_page)
            if (result.count or 0) >= min(per_page, 10) or at_least == 1:
                return result, at_least < need
        return result, False

    @staticmethod
    def _run(searcher, q: tantivy.Query, sort: str, offset: int, per_page: int) -> tantivy.SearchResult:
        if sort == "relevance":
            return searcher.search(q, limit=per_page, offset=offset, count=True)
        return searcher.search(
            q,
            limit=per_page,
            offset=offset,
            count=True,
            order_by_field="published" if sort == "date" else "trending",
        )

    def _hydrate(self, searcher, raw_hits, words: list[str], plain: bool) -> list[Hit]:
        ids = self.keyword.ids(searcher, raw_hits)
        papers = self.store.get_many(ids)
        highlighter = Highlighter(words, last_is_prefix=plain)
        hits = []
        for (score, _), pid in zip(raw_hits, ids, strict=True):
            paper = papers.get(pid)
            if paper is None:  # deleted in the store after the index saw it; the next catch-up drops it
                continue
            title_marks = highlighter.marks(paper.title)
            abstract_marks = highlighter.marks(paper.abstract)
            authors_text = "; ".join(a.name for a in paper.authors)
            hits.append(
                Hit(
                    id=pid,
                    score=float(score) if isinstance(score, float) else 0.0,
                    paper=paper,
                    title_html=highlighter.html(paper.title, title_marks),
                    abstract_html=highlighter.snippet(paper.abstract, marks=abstract_marks),
                    matched=highlighter.why(
                        {
                            "title": title_marks,
                            "abstract": abstract_marks,
                            "authors": highlighter.marks(authors_text),
                        }
                    ),
                )
            )
        return hits


_default: SearchEngine | None = None


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
    sort: str = "relevance",
    page: int = 1,
    per_page: int = 10,
    mode: str = "hybrid",
) -> SearchResult:
    """Search the catalogue (see :meth:`SearchEngine.search`) with this process's default engine."""
    return default_engine().search(query, filters, sort, page, per_page, mode)
