"""The keyword index: tantivy, derived from the store and caught up through its change sequence.

Ranking is built into the query rather than left to BM25 alone. Every query word contributes a
constant score: ``WORD_BASE`` for matching at all plus a bonus for *where* and *how* it matched (title
over abstract, exact over stemmed over typo). Scores add up over words, so a paper matching more words
always ranks higher; among papers matching the same words, title matches beat abstract matches and exact
matches beat typos. BM25 breaks the remaining ties. (Fuzzy matches in tantivy score a constant anyway,
and stemmed fields defeat fuzzy matching, so each text field is indexed twice: stemmed for BM25 and
phrases, plain for exact, typo and prefix matching.)
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import NamedTuple

import tantivy
from tantivy import Filter, Occur, Query, TextAnalyzerBuilder, Tokenizer

from paperwire.arxiv_ids import id_from_key, id_key
from paperwire.search.query import And, AndNot, DateRange, Node, Or, Phrase, Word, is_wildcard
from paperwire.store import Store, StoredPaper

log = logging.getLogger("paperwire.search")
# 3: the "updated" fast field (sort by newest version); 4: the "key" fast field; 5: hyphenated words also
# indexed joined (compounds_of); 6: Greek letters indexed by name, formulas' subscripts joined (searchable);
# 7: the words' first letters (title_prefix, text_prefix)
SCHEMA_VERSION = 7
STATE_FILE = "paperwire-index.json"
STEM, PLAIN = "pw_stem", "pw_plain"

# Per-word scores (see module docstring). WORD_BASE dwarfs every bonus so coverage decides first.
WORD_BASE = 100.0
IDF_BAND = 5.0
BONUS = {
    ("title", "exact"): 10.0,
    ("title", "stem"): 9.0,
    ("authors", "exact"): 9.0,
    ("title", "prefix"): 7.0,
    ("title", "typo"): 6.5,
    ("abstract", "exact"): 5.0,
    ("abstract", "stem"): 5.0,
    ("authors", "typo"): 4.0,
    ("authors", "prefix"): 3.0,
    ("abstract", "prefix"): 3.0,
    ("abstract", "typo"): 2.5,
    ("category", "exact"): 5.0,
}
PHRASE_BONUS = {"title": 8.0, "abstract": 4.0}
TIE_BREAK = 0.01  # BM25 scale: ties only
BM25_K1 = 1.2  # tantivy's
# The ranking looks among the papers with every word in the title first (QueryBuilder.title_tier) where
# this many times the hits it needs are expected there (the words' title document frequencies multiplied,
# as if independent). Fewer, and the tier falls short more often, its search wasted; but that search is
# cheap, and at 3M 1.0 gave the lowest p95 of 0.5, 1 and 2 (docs/benchmarks.md).
TITLE_TIER_MARGIN = 1.0
# The largest title bonus of a word (_word_options): each is relative to the match anywhere that it
# implies, the exact word's to its stem's.
_BEST_IN_TITLE = max(
    BONUS[("title", how)] - BONUS[("abstract", "stem" if how == "exact" else how)]
    for how in ("exact", "stem", "typo", "prefix")
)
# Typo tolerance like the best engines: 1 edit from 5 letters, 2 from 9 (a transposition is one edit).
ONE_TYPO, TWO_TYPOS = 5, 9
MIN_PREFIX = 2
# A name being typed completes from this many letters: "li" would be the start of tens of thousands of
# authors' names (Li, Liu, Lin...), the union of whose papers no one is asking for.
MIN_AUTHOR_PREFIX = 3
PREFIX_COMPLETIONS = 64
# A word being typed with this many letters matches through the words' first letters, indexed as terms
# (title_prefix, text_prefix: Meilisearch's prefix postings): one posting list where its completions were
# a set of dozens ("in": 63 completions, 5.4M postings at 3M, built into a bitset over the whole index in
# each query; docs/benchmarks.md). Longer prefixes have few completions, each rare.
INDEXED_PREFIXES = (2, 3)
_PREFIX_FIELDS = {"text_plain": "text_prefix", "title_plain": "title_prefix"}
PREFIX_POSTINGS = True  # False: completions as term sets, as before schema 7 (bench/prefix_postings.py)
# False: a stop word being typed also matches itself (QueryBuilder.completes_only).
STOP_WORDS_COMPLETE_ONLY = True
# Ranking.apart splits at most this many tokens into their ways, into at most MOST_PARTS queries.
SPLIT_TOKENS = 2
MOST_PARTS = 8
# A last word typed whole that is itself a word ("group", "single") is completed only to words at least
# this share as common as it ("fermi": "fermions" yes; "group": "grouptheoretical" no): one typed to
# the end rarely means a much rarer word, and each completion adds its postings to the query's union.
# Stop words are always completed ("modular for": "forms").
COMPLETION_SHARE = 0.1
_DOC_FREQS_KEPT = 200_000
# Words in at least this many papers are taken as typed correctly (no typo expansion).
TRUSTED_WORD_DF = 20
WRITER_HEAP = 768 * 1024 * 1024
# Papers per commit of a bulk index: each commit leaves one segment (WRITER_HEAP holds 125k papers, the
# process at ~600 MB), and tantivy's merge policy merges segments of one size eight at a time, so eight
# commits make one segment of a million papers. At 100k a million papers stayed in 3 segments and 3M in 9;
# every query pays per segment (docs/benchmarks.md: 1 segment instead of 3 at 1M, p95 4-17 % lower).
COMMIT_EVERY = 125_000
_STOPWORD_TEXT = (
    "a an and are as at be by for from has in is it its of on or that the this to was were will with we our"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split(" "))


def _analyzer(stem: bool) -> tantivy.TextAnalyzer:
    builder = (
        TextAnalyzerBuilder(Tokenizer.simple()).filter(Filter.remove_long(40)).filter(Filter.lowercase())
    )
    builder = builder.filter(Filter.ascii_fold())
    if stem:
        builder = builder.filter(Filter.stemmer("english"))
    return builder.build()


STEM_ANALYZER = _analyzer(stem=True)
PLAIN_ANALYZER = _analyzer(stem=False)


def plain_tokens(text: str) -> list[str]:
    return PLAIN_ANALYZER.analyze(searchable(text))


def typed_prefixes(words: set[str]) -> str:
    """The ``words`` (as PLAIN_ANALYZER gives them) as they begin, INDEXED_PREFIXES letters long, each
    once, space-separated: a word being typed that long matches every word it begins (_prefix). Not the
    stop words, which are no completion (_completions), nor a word's whole self, which its stem already
    matches. About a third of the time it takes to make a paper's document (docs/benchmarks.md)."""
    words = words - STOPWORDS
    return " ".join({t[:n] for n in INDEXED_PREFIXES for t in words if len(t) > n})


def searchable(text: str) -> str:
    """``text`` as the index and the queries both read it: Greek letters by name, LaTeX's variant letters
    as the letters they are, subscripts of formulas joined (``spelled_greek``, ``joined_scripts``)."""
    if "\\var" in text:
        text = VARIANT_LETTER.sub(r"\\\1", text)
    return spelled_greek(joined_scripts(text))


# "$\varepsilon$" and "$\varphi$" are ε and φ to a reader (and to spelled_greek): one word each.
VARIANT_LETTER = re.compile(r"\\var(epsilon|theta|phi|pi|rho|sigma|kappa)(?![A-Za-z])")


# A formula's subscripts and an isotope's mass number, as LaTeX writes them: "MoS$_2$", "TiSe$_{2}$",
# "$^{3}$He". The tokenizer would read "mos", "2"; a reader types (or copies from the page, where it
# shows "MoS₂") "MoS2". Only digits glued to letters: "$x_2$" and "cm$^{-2}$" are maths, not formulas.
SUBSCRIPT = re.compile(r"(?<=[A-Za-z])\$_\{?(\d{1,3})\}?\$")
MASS_NUMBER = re.compile(r"\$\^\{?(\d{1,3})\}?\$(?=[A-Z])")


def joined_scripts(text: str) -> str:
    """``text`` with formula subscripts and mass numbers joined to their letters: "MoS$_2$" → "MoS2",
    "$^{3}$He" → "3He"."""
    if "$" not in text:
        return text
    return MASS_NUMBER.sub(r"\1", SUBSCRIPT.sub(r"\1", text))


# Greek letters by the names LaTeX gives them: arXiv's sources mostly write "$\Lambda$CDM", which the
# tokenizer reads as "lambda", "cdm", while a reader types (or copies from the page) "ΛCDM", one token.
# Both sides spell the letters out, so either form finds both. Variant forms and the micro and ohm signs
# are the letters they stand for.
_GREEK_NAME_TEXT = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau"
    " upsilon phi chi psi omega"
)
_GREEK_NAMES = dict(zip("αβγδεζηθικλμνξοπρστυφχψω", _GREEK_NAME_TEXT.split(" "), strict=True))
_GREEK_NAMES |= {letter.upper(): name.capitalize() for letter, name in _GREEK_NAMES.items()}
_GREEK_NAMES |= {"ς": "sigma", "ϵ": "epsilon", "ϑ": "theta", "ϕ": "phi", "ϖ": "pi", "ϱ": "rho", "ϰ": "kappa"}
_GREEK_NAMES |= {"ϐ": "beta", "\u00b5": "mu", "\u2126": "Omega"}
# A run of letters from the Greek blocks: one or two are symbols ("ΛCDM", "αβ"); longer runs are Greek
# words, left as they are.
_GREEK_RUN = re.compile("[\u0370-\u03ff\u1f00-\u1fff\u00b5\u2126]+")
MAX_GREEK_SYMBOL = 2


def spelled_greek(text: str) -> str:
    """``text`` with each Greek letter that stands as a symbol written as its name, joined by hyphens to
    the letters or digits beside it so that it stays one word in parts: "ΛCDM" → "Lambda-CDM",
    "$ω$Test" → "$omega$Test", "αβ-phase" → "alpha-beta-phase". The index and the queries both see it."""
    if text.isascii() or not _GREEK_RUN.search(text):
        return text

    def spell(match: re.Match) -> str:
        run = match.group()
        if len(run) > MAX_GREEK_SYMBOL or any(letter not in _GREEK_NAMES for letter in run):
            return run
        start, end = match.span()
        before = "-" if start > 0 and text[start - 1].isalnum() else ""
        after = "-" if end < len(text) and text[end].isalnum() else ""
        return before + "-".join(_GREEK_NAMES[letter] for letter in run) + after

    return _GREEK_RUN.sub(spell, text)


_STEMS: dict[str, str] = {}
_STEM_CACHE_LIMIT = 500_000


# A word written in parts joined by hyphens: "non-linear", "Multi-Modal", "GPT-4", "state-of-the-art".
HYPHENATED = re.compile(r"\w+(?:-\w+)+")
MIN_JOINED = 4  # letters of a joined word: "gpt4" yes, "i-v" (a current-voltage curve) no
MAX_JOINED = 40  # the analyzers' remove_long
# Two query words are also asked for written solid ("data set": "dataset") where at least this share of
# the papers with the rarer of them write them solid (or hyphenated): "fine tuning" and "finetuning" are
# one thing to a reader. Below it, asking would cost a union of posting lists for a few papers.
SOLID_SHARE = 0.02
# The other way round: a query word is also asked for written as two ("dataset": "data set",
# "wavefunction": "wave function") where at least this share as many papers write the two words in a
# row as write it solid. "network" is written "net work" in a few thermodynamics papers (well under 1%
# of those with "network"): that is another phrase, not the word. Each part has MIN_APART letters and is
# no function word ("overall" is not "over all", "notable" not "not able").
APART_SHARE = 0.05
MIN_APART = 3
_FUNCTION_WORD_TEXT = (
    "about above after again against all also any because been before being below between both but can"
    " cannot could did does doing down during each either ever every few further had have having he her"
    " here hers him his how however into just may me might more most much must my neither no nor not now"
    " off once one only other ought out over own same shall she should so some such than their them then"
    " there these they those through thus too under until up upon very what when where whether which"
    " while who whom why would yet you your"
)
FUNCTION_WORDS = STOPWORDS | frozenset(_FUNCTION_WORD_TEXT.split(" "))


def joined_token(tokens: list[str]) -> str | None:
    """The one token that a word typed in parts ("non", "linear") is when written solid ("nonlinear"),
    or None where that would not be a word: too short or long, or digits only ("2-3")."""
    if len(tokens) < 2:
        return None
    joined = "".join(tokens)
    if not MIN_JOINED <= len(joined) <= MAX_JOINED or joined.isdigit():
        return None
    return joined


def hyphenated_in(text: str) -> Iterator[re.Match[str]]:
    """The HYPHENATED words of ``text``, with their offsets in it. The pattern runs only on the few
    chunks between spaces or line breaks that hold a hyphen: over a whole abstract it costs ~180 us (it
    tries every position of every word), half of what indexing a paper costs; this way ~28 us. A chunk
    only bounds where the pattern looks, so a tab inside one changes nothing."""
    at = text.find("-")
    while at != -1:
        start = max(text.rfind(" ", 0, at), text.rfind("\n", 0, at)) + 1
        end = min((i for i in (text.find(" ", at), text.find("\n", at)) if i != -1), default=len(text))
        yield from HYPHENATED.finditer(text, start, end)
        at = text.find("-", end)


def compounds_of(text: str) -> str:
    """The hyphenated words of ``text`` written solid, space-separated ("Non-linear pre-training" gives
    "nonlinear pretraining"). Indexed beside the text, so that "nonlinear" finds papers that write
    "non-linear" (the tokenizer splits a word at its hyphens) and "non-linear" finds those that write
    "nonlinear" (QueryBuilder asks for the joined word too), as Elasticsearch's word_delimiter_graph
    with catenate_words does. arXiv writes many words both ways: pre-training, multi-modal, real-time."""
    out = []
    for match in hyphenated_in(text):
        word = match.group()
        if word.isascii():  # as the analyzer would see it, without its cost per call (~20 us)
            parts = word.lower().split("-")
            joined = joined_token(parts) if all(part.isalnum() for part in parts) else None
        else:
            parts = plain_tokens(word)
            joined = joined_token(parts) if len(parts) == word.count("-") + 1 else None
        if joined is not None:
            out.append(joined)
    return " ".join(dict.fromkeys(out))


def stem_of(token: str) -> str:
    """The index's stem of one token; cached, since highlighting asks for the same words again and again."""
    stem = _STEMS.get(token)
    if stem is None:
        stems = STEM_ANALYZER.analyze(token)
        stem = stems[0] if stems else token
        if len(_STEMS) >= _STEM_CACHE_LIMIT:
            _STEMS.clear()
        _STEMS[token] = stem
    return stem


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw")
    # The id as a number (arxiv_ids.id_key): search candidates' ids are read from this column, several
    # times faster than from the stored documents.
    sb.add_unsigned_field("key", fast=True)
    sb.add_text_field("title", tokenizer_name=STEM, index_option="position")
    sb.add_text_field("title_plain", tokenizer_name=PLAIN, index_option="freq")
    sb.add_text_field("abstract", tokenizer_name=STEM, index_option="position")
    sb.add_text_field("abstract_plain", tokenizer_name=PLAIN, index_option="basic")
    # Title and abstract together: which papers contain a word anywhere (see QueryBuilder._anywhere).
    sb.add_text_field("text", tokenizer_name=STEM, index_option="basic")
    sb.add_text_field("text_plain", tokenizer_name=PLAIN, index_option="basic")
    # The first INDEXED_PREFIXES letters of every word but the stop words (typed_prefixes).
    sb.add_text_field("title_prefix", tokenizer_name=PLAIN, index_option="basic")
    sb.add_text_field("text_prefix", tokenizer_name=PLAIN, index_option="basic")
    sb.add_text_field("authors", tokenizer_name=PLAIN, index_option="position")
    # Categories lower-cased, whole (cs.cl) and by archive (cs), so cs.* is one term lookup.
    sb.add_text_field("category", tokenizer_name="raw")
    sb.add_text_field("archive", tokenizer_name="raw")
    sb.add_date_field("published", indexed=True, fast=True)
    # When the latest version was submitted: arXiv's sortBy=lastUpdatedDate (only sorted on, never searched).
    sb.add_date_field("updated", indexed=False, fast=True)
    sb.add_float_field("trending", fast=True)
    return sb.build()


DATE_MIN = datetime(1678, 1, 1, tzinfo=UTC)
DATE_MAX = datetime(2261, 12, 31, 23, 59, 59, tzinfo=UTC)


class IndexBusy(RuntimeError):
    """Another process is writing this index (tantivy allows one writer)."""


@dataclass
class Filters:
    published_from: date | None = None
    published_to: date | None = None
    categories: tuple[str, ...] = ()  # "cs.CL", or "cs.*" / "cs" for a whole archive
    authors: tuple[str, ...] = ()
    # Only these papers (canonical ids): arXiv's id_list given together with a search_query.
    ids: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (self.published_from or self.published_to or self.categories or self.authors or self.ids)


class KeywordIndex:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.schema = build_schema()
        state = self.read_state()
        if state and state.get("schema") != SCHEMA_VERSION:
            # An index built by another version of paperwire: derived data, so start it over (the next
            # catch_up, run by imports, `paperwire index` or a web process, rebuilds it from the store).
            log.warning("the index at %s is from another version of paperwire: rebuilding it", self.path)
            shutil.rmtree(self.path)
            self.path.mkdir(parents=True)
        self.index = tantivy.Index(self.schema, path=str(self.path), reuse=True)
        self.index.register_tokenizer(STEM, STEM_ANALYZER)
        self.index.register_tokenizer(PLAIN, PLAIN_ANALYZER)
        self._meta_mtime = self._meta_stamp()
        # Document frequencies of words in the commit searched now (doc_freq), emptied on reload.
        self._doc_freqs: dict[tuple[str, str], int] = {}

    # -- state ---------------------------------------------------------------------------------------

    def read_state(self) -> dict:
        try:
            return json.loads((self.path / STATE_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _write_state(self, change_seq: int, docs: int) -> None:
        tmp = self.path / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps({"schema": SCHEMA_VERSION, "change_seq": change_seq, "docs": docs}))
        os.replace(tmp, self.path / STATE_FILE)

    @property
    def change_seq(self) -> int:
        return int(self.read_state().get("change_seq", 0))

    def _meta_stamp(self) -> float:
        try:
            return (self.path / "meta.json").stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    # -- writing -------------------------------------------------------------------------------------

    def _writer(self) -> tantivy.IndexWriter:
        try:
            # One indexing thread, with room for a whole commit batch: each commit then leaves one
            # segment instead of one per thread, and every query pays per segment (fuzzy terms walk each
            # segment's term dictionary): at 1M papers 3 segments instead of 6 made typo queries ~20 %
            # faster, for a 1.6x longer bulk build (docs/benchmarks.md).
            return self.index.writer(heap_size=WRITER_HEAP, num_threads=1)
        except ValueError as exc:
            if "LockBusy" in str(exc) or "lock" in str(exc).lower():
                raise IndexBusy(f"another process is writing the index at {self.path}") from None
            raise

    def catch_up(
        self,
        store: Store,
        *,
        rebuild: bool = False,
        batch: int = 5000,
        commit_every: int = COMMIT_EVERY,
        on_progress: Callable[[int], None] | None = None,
    ) -> int:
        """Apply every store change after the index's watermark; returns how many papers were (re)indexed.

        Idempotent: a paper is deleted by id before it is added again, so replaying changes after a
        crash between tantivy's commit and the watermark update does no harm."""
        writer = self._writer()
        try:
            seq = 0 if rebuild else self.change_seq
            if rebuild:
                writer.delete_all_documents()
            done = pending = 0
            while True:
                changes = store.changes_since(seq, limit=batch)
                if not changes:
                    break
                for paper in changes:
                    writer.delete_documents_by_term("id", paper.id)
                    # Hidden papers leave the index, so no search, list or feed built on it shows them.
                    if not paper.deleted and not paper.hidden:
                        writer.add_document(self._document(paper))
                seq = changes[-1].change_seq
                done += len(changes)
                pending += len(changes)
                if pending >= commit_every:
                    self._commit(writer, seq)
                    pending = 0
                if on_progress:
                    on_progress(done)
            if pending or rebuild:
                self._commit(writer, seq)
            elif not self.read_state():
                self._write_state(seq, self._count())
            return done
        finally:
            writer.wait_merging_threads()

    def _commit(self, writer: tantivy.IndexWriter, seq: int) -> None:
        writer.commit()
        self.index.reload()
        self._write_state(seq, self._count())

    def _count(self) -> int:
        return self.index.searcher().num_docs

    @staticmethod
    def _document(p: StoredPaper) -> tantivy.Document:
        doc = tantivy.Document()
        doc.add_text("id", p.id)
        key = id_key(p.id)
        if key is not None:
            doc.add_unsigned("key", key)
        title, abstract = searchable(p.title), searchable(p.abstract)
        doc.add_text("title", title)
        doc.add_text("title_plain", title)
        doc.add_text("abstract", abstract)
        doc.add_text("abstract_plain", abstract)
        for name in ("text", "text_plain"):
            doc.add_text(name, title)
            doc.add_text(name, abstract)
        # Hyphenated words also solid (compounds_of), in the fields that decide whether a word matches
        # and the title's bonus; not in the positional fields, where they would make phrases that the
        # paper never wrote.
        title_compounds, abstract_compounds = compounds_of(title), compounds_of(abstract)
        if title_compounds:
            doc.add_text("title_plain", title_compounds)
        if abstract_compounds:
            doc.add_text("abstract_plain", abstract_compounds)
        if title_compounds or abstract_compounds:
            for name in ("text", "text_plain"):
                doc.add_text(name, f"{title_compounds} {abstract_compounds}")
        title_words = set(PLAIN_ANALYZER.analyze(f"{title} {title_compounds}"))
        doc.add_text("title_prefix", typed_prefixes(title_words))
        abstract_words = PLAIN_ANALYZER.analyze(f"{abstract} {abstract_compounds}")
        doc.add_text("text_prefix", typed_prefixes(title_words.union(abstract_words)))
        for author in p.authors:
            doc.add_text("authors", author.name)
        for category in p.categories:
            doc.add_text("category", category.lower())
        for archive in dict.fromkeys(c.split(".")[0].lower() for c in p.categories):
            doc.add_text("archive", archive)
        if p.published:
            doc.add_date("published", p.published)
        if p.updated or p.published:  # version 1 was last updated when it was published
            doc.add_date("updated", p.updated or p.published)
        doc.add_float("trending", p.trending_score)
        return doc

    # -- reading -------------------------------------------------------------------------------------

    def searcher(self) -> tantivy.Searcher:
        """A searcher on the newest commit: readers in other processes see a writer's commits."""
        stamp = self._meta_stamp()
        if stamp != self._meta_mtime:
            self.index.reload()
            self._meta_mtime = stamp
            self._doc_freqs = {}
        return self.index.searcher()

    def doc_freq(self, searcher: tantivy.Searcher, token: str, field: str = "text_plain") -> int:
        """How many papers hold ``token`` in ``field`` (by default the unstemmed title and abstract),
        remembered for the current commit: a query asks for each of its words several times, and each
        asking walks every segment."""
        key = (field, token)
        df = self._doc_freqs.get(key)
        if df is None:
            df = searcher.doc_freq(field, token)
            if len(self._doc_freqs) < _DOC_FREQS_KEPT:
                self._doc_freqs[key] = df
        return df

    def remembered(self, key: tuple, make: Callable[[], object]) -> object:
        """``make()``, remembered for the current commit under ``key`` (beside the doc_freq counts)."""
        if key in self._doc_freqs:
            return self._doc_freqs[key]
        value = make()
        if len(self._doc_freqs) < _DOC_FREQS_KEPT:
            self._doc_freqs[key] = value
        return value

    def ids(self, searcher: tantivy.Searcher, hits: Iterable[tuple[object, tantivy.DocAddress]]) -> list[str]:
        """The paper ids of search hits, from the "key" column (the stored document when a paper has no
        key): a two-phase keyword search reads those of ~200 candidates."""
        addresses = [address for _, address in hits]
        keys = searcher.fast_field_values("key", addresses)
        return [
            id_from_key(key) if key else searcher.doc(address)["id"][0]
            for key, address in zip(keys, addresses, strict=True)
        ]


# -- query building --------------------------------------------------------------------------------------


class TitleTier(NamedTuple):
    """Papers with every query word in the title (QueryBuilder.title_tier)."""

    query: Query
    above: float  # the most a paper outside the tier can score in the ranking query
    expected: int  # papers expected to have every word in the title (the words taken as independent)


class _RankedToken(NamedTuple):
    """One token's parts of the ranking query (QueryBuilder.ranking)."""

    in_title: Query  # the title's bonus, over what matching anywhere gave
    bm25: Query  # the tie-break
    scored: Query  # anywhere + bm25, required
    offset: float  # nonzero where the token can match only by its stem: every match's constant score
    best: float  # its best match anywhere (base and bonus)
    ways: list[tuple[Query, float]]  # the ways it matches anywhere, unscored, and what each scores
    stem_way: Query | None  # the way that is its stem (in ``ways``), where it has one
    # The title's bonus for papers without its stem anywhere: neither it nor its stem is in their title.
    in_title_unstemmed: Query


class Ranking(NamedTuple):
    """Every word required, ranked (QueryBuilder.ranking): the query's clauses, and the score offset the
    caller adds back to its scores."""

    required: list[Query]
    optional: list[Query]
    offset: float
    # The tokens whose required clause scores the best of their ways, with its index in ``required``.
    splittable: list[tuple[int, _RankedToken]]

    def query(self) -> Query:
        clauses = [(Occur.Must, q) for q in self.required] + [(Occur.Should, q) for q in self.optional]
        return Query.boolean_query(clauses)

    def apart(self) -> list[Query] | None:
        """The query as disjoint queries, whose hits together are its hits with the same scores: the
        tokens with the most ways to match anywhere (a word also written apart, an author's name, a
        typo, a word being typed) split into one query per way, best score first, each without the
        papers of the ways before it, so that its way scores as the word's best match would. Where two
        tokens split, one query per pair of their ways, at most MOST_PARTS.

        Why: a union inside an intersection costs about what the union costs over the whole index
        (tantivy's buffered union reads 4,096 documents ahead of every seek, from every way): at 3M, six
        common words and "spacetime" (its stem, or "space time" in the title or the abstract) took 50 ms
        against 3 for its stem alone. Split, each way is one more list the intersection seeks. At 3M
        "graham ca" split by "graham" alone (its stem, or an author's name) left the union of "ca" (its
        stem, or the first letters of a word) in both parts: 80 ms, against 30 split by both (a one-off).
        None where no token has more than one way."""
        split, parts_made = [], 1
        for at, token in sorted(self.splittable, key=lambda item: len(item[1].ways), reverse=True):
            if len(token.ways) < 2 or len(split) == SPLIT_TOKENS or parts_made * len(token.ways) > MOST_PARTS:
                break
            split.append((at, token))
            parts_made *= len(token.ways)
        if not split:
            return None
        # Each split token's choices: its way alone (with its tie-break), and the ways before it excluded.
        choices = []
        for _, token in split:
            ways = sorted(token.ways, key=lambda way: way[1], reverse=True)  # stable: ties keep their order
            choices.append(
                [
                    (
                        Query.boolean_query(
                            [(Occur.Must, Query.const_score_query(way, score)), (Occur.Should, token.bm25)]
                        ),
                        [before for before, _ in ways[:i]],
                    )
                    for i, (way, score) in enumerate(ways)
                ]
            )
        parts = []
        for picked in itertools.product(*choices):
            alone = {at: way for (at, _), (way, _) in zip(split, picked, strict=True)}
            clauses = [(Occur.Must, alone.get(j, q)) for j, q in enumerate(self.required)]
            # Where a part excludes a token's stem, its title bonus need not ask for the word or its
            # stem in the title (which imply the stem anywhere): one list fewer in the union that is
            # read for every match ("waveforms de": the completions' part scores 34k papers).
            unstemmed = {
                id(token.in_title): token.in_title_unstemmed
                for (_, token), (_, excluded) in zip(split, picked, strict=True)
                if token.stem_way is not None and any(before is token.stem_way for before in excluded)
            }
            clauses += [(Occur.Should, unstemmed.get(id(q), q)) for q in self.optional]
            clauses += [(Occur.MustNot, before) for _, excluded in picked for before in excluded]
            parts.append(Query.boolean_query(clauses))
        return parts


class QueryBuilder:
    """Turns the parsed query language into tantivy queries for one schema."""

    def __init__(self, schema: tantivy.Schema, index: KeywordIndex | None = None):
        self.schema = schema
        # Set per search: document frequencies weigh words by how specific they are. The index, when
        # given, remembers them per commit (KeywordIndex.doc_freq).
        self.searcher: tantivy.Searcher | None = None
        self.index = index

    def _const(self, query: Query, field: str, how: str, base: float = WORD_BASE) -> Query:
        return Query.const_score_query(query, base + BONUS[(field, how)])

    def doc_freq(self, token: str, field: str = "text_plain") -> int | None:
        if self.searcher is None:
            return None
        if self.index is None:
            return self.searcher.doc_freq(field, token)
        return self.index.doc_freq(self.searcher, token, field)

    def typed_as_meant(self, token: str) -> bool:
        """Whether the index takes ``token`` as typed, matching none of its typos (see _typed_as_meant)."""
        return _typed_as_meant(self.doc_freq(token))

    def word_base(self, df: int | None) -> float:
        """A word's base score, 95 to 105 by how rare it is: in results that match only some of the
        words, "neutrino" should count more than "oscillation". The band is narrow enough that matching
        one more word always outweighs it (for queries of up to five words)."""
        if df is None or self.searcher is None:
            return WORD_BASE
        n = max(1, self.searcher.num_docs)
        specificity = math.log((n + 1) / (df + 1)) / math.log(n + 1)
        return WORD_BASE - IDF_BAND + 2 * IDF_BAND * min(1.0, max(0.0, specificity))

    def word(self, word: Word) -> Query | None:
        """One query word: matched anywhere it may be, scored by its best match."""
        if word.field == "category":
            return self.category(word.text)
        if (pattern := wildcard_pattern(word.text)) is not None:
            return self.wildcard(pattern, word.field)
        tokens = plain_tokens(word.text)
        if not tokens:
            return None
        if len(tokens) > 1:  # "gpt-4", "k-means": every part must match, or the word written solid
            parts = [
                self.word(Word(t, word.field, word.prefix and i == len(tokens) - 1))
                for i, t in enumerate(tokens)
            ]
            every_part = _all([p for p in parts if p is not None])
            solid = self.joined(word)
            if solid is None or every_part is None:
                return every_part
            if word.field == "all":
                matching, in_title = self._parts_or_solid(word, solid)
                return Query.boolean_query([(Occur.Must, matching), (Occur.Should, in_title)])
            # Scored as all its parts would be: writing "nonlinear" is no weaker a match than "non-linear".
            as_one = self.word(Word(solid[0], word.field, solid[1]))
            if as_one is None:
                return every_part
            return Query.disjunction_max_query([every_part, Query.boost_query(as_one, len(tokens))])
        token = tokens[0]
        df = self.doc_freq(token)
        base = self.word_base(df)
        typos = _corrects_typos(token, df)
        prefix = word.prefix and len(token) >= MIN_PREFIX
        if word.field == "all":
            return self._anywhere(token, base, typos, prefix)
        return Query.disjunction_max_query(self._in_field(word.field, token, base, typos, prefix))

    def wildcard(self, pattern: str, field: str) -> Query:
        """A wildcard word (``transform*``, ``au:kho*``): every word of the field that the pattern
        matches, each as good as the word typed out (the user named them all), title over abstract."""
        s, b = self.schema, BONUS
        if field != "all":
            plain = "authors" if field == "authors" else f"{field}_plain"
            return self._const(Query.regex_query(s, plain, pattern), field, "exact")
        anywhere = [
            self._const(Query.regex_query(s, "text_plain", pattern), "abstract", "exact"),
            self._const(Query.regex_query(s, "authors", pattern), "authors", "exact"),
        ]
        in_title = Query.const_score_query(
            Query.regex_query(s, "title_plain", pattern), b[("title", "exact")] - b[("abstract", "exact")]
        )
        return Query.boolean_query(
            [(Occur.Must, Query.disjunction_max_query(anywhere)), (Occur.Should, in_title)]
        )

    def joined(self, word: Word) -> tuple[str, bool] | None:
        """A word typed in parts ("non-linear", "multi-modal") as the one token it is when written solid
        ("nonlinear"), with whether it is being typed; None where it has one part, or the index holds no
        such word (asking for it would only cost a clause)."""
        tokens = plain_tokens(word.text)
        joined = joined_token(tokens)
        if joined is None or word.field == "category":
            return None
        prefix = word.prefix
        if (
            self.searcher is not None
            and self.doc_freq(joined) == 0
            and not (prefix and self.searcher.terms_with_prefix("text_plain", joined, limit=1))
        ):
            return None
        return joined, prefix

    def written_apart(self, token: str) -> tuple[str, str] | None:
        """The two words that papers often write ``token`` as ("dataset": "data", "set"; see
        APART_SHARE), or None. Remembered per commit: deciding costs a phrase count."""
        if self.searcher is None or len(token) < 2 * MIN_APART or not token.isalpha():
            return None
        if token in FUNCTION_WORDS:
            return None
        if self.index is None:
            return self._written_apart(token)
        return self.index.remembered(("apart", token), lambda: self._written_apart(token))

    def _written_apart(self, token: str) -> tuple[str, str] | None:
        solid = self.doc_freq(token) or 0
        best, best_df = None, 0
        for i in range(MIN_APART, len(token) - MIN_APART + 1):
            a, b = token[:i], token[i:]
            if a in FUNCTION_WORDS or b in FUNCTION_WORDS or not self.doc_freq(a) or not self.doc_freq(b):
                continue
            together = self.searcher.search(self._apart_query(a, b), limit=1, count=True).count or 0
            if together > best_df:
                best, best_df = (a, b), together
        if best is None or best_df < max(1.0, APART_SHARE * solid):
            return None
        return best

    def _apart_query(self, a: str, b: str, fields: tuple[str, ...] = ("title", "abstract")) -> Query:
        """The two words in a row (as stems: "data sets" too) in any of ``fields``."""
        stems = [stem_of(a), stem_of(b)]
        phrases = [Query.phrase_query(self.schema, field, stems) for field in fields]
        return phrases[0] if len(phrases) == 1 else Query.boolean_query([(Occur.Should, q) for q in phrases])

    def with_solid_pairs(self, words: list[Word]) -> list[Word]:
        """``words`` with each pair of adjacent words that papers often write as one ("data set",
        "fine tuning": ``SOLID_SHARE``) made one word typed in parts ("data-set"), which matches both
        words or the word written solid, scored as the two (QueryBuilder.word)."""
        if len(words) < 2 or self.searcher is None:
            return words
        out: list[Word] = []
        i = 0
        while i < len(words):
            first = words[i]
            if i + 1 < len(words) and (pair := self._solid_pair(first, words[i + 1])) is not None:
                out.append(pair)
                i += 2
            else:
                out.append(first)
                i += 1
        return out

    def _solid_pair(self, first: Word, second: Word) -> Word | None:
        if first.field != "all" or second.field != "all" or first.prefix:
            return None
        a, b = plain_tokens(first.text), plain_tokens(second.text)
        if len(a) != 1 or len(b) != 1 or joined_token([a[0], b[0]]) is None:
            return None
        solid = a[0] + b[0]
        if second.prefix:  # the solid word is being typed too: its commonest completion ("fine tunin")
            completions = self.searcher.terms_with_prefix("text_plain", solid, limit=1)
            df = completions[0][1] if completions else 0
            rarer = self.doc_freq(a[0]) or 0
        else:
            df = self.doc_freq(solid) or 0
            rarer = min(self.doc_freq(a[0]) or 0, self.doc_freq(b[0]) or 0)
        if not df or df < SOLID_SHARE * rarer:
            return None
        return Word(f"{a[0]}-{b[0]}", "all", second.prefix)

    def _parts_or_solid(self, word: Word, solid: tuple[str, bool]) -> tuple[Query, Query]:
        """A word typed in parts, matched anywhere by all its parts or by the word written solid
        (``joined``), scored as all its parts: writing "nonlinear" is no weaker a match than
        "non-linear". Returns the matching clause and the title's bonus, each the better of the two
        ways, as QueryBuilder.word and QueryBuilder.ranking both score it."""
        tokens = tokens_as_typed(word)

        def ways(token: str, prefix: bool) -> tuple[Query, Query]:
            df = self.doc_freq(token)
            anywhere, in_title, _ = self._word_options(
                token, self.word_base(df), _corrects_typos(token, df), prefix
            )
            return Query.disjunction_max_query(anywhere), Query.disjunction_max_query(in_title)

        parts = [ways(token, prefix) for token, prefix in tokens]
        whole_anywhere, whole_in_title = ways(*solid)
        n = float(len(tokens))
        matching = Query.disjunction_max_query(
            [
                Query.boolean_query([(Occur.Must, anywhere) for anywhere, _ in parts]),
                Query.boost_query(whole_anywhere, n),
            ]
        )
        in_title = Query.disjunction_max_query(
            [
                Query.boolean_query([(Occur.Should, title) for _, title in parts]),
                Query.boost_query(whole_in_title, n),
            ]
        )
        return matching, in_title

    def _anywhere(self, token: str, base: float, typos: bool, prefix: bool) -> Query:
        """A word in the title, abstract or authors.

        Which papers match is decided on ``text`` (title and abstract in one field): one posting list
        per word, where a union of the title's and the abstract's lists would cost several times more
        on common words. Whether the match is in the title only adds a bonus, which tantivy evaluates
        just for the papers that already match."""
        anywhere, in_title, _ = self._word_options(token, base, typos, prefix)
        return Query.boolean_query(
            [
                (Occur.Must, Query.disjunction_max_query(anywhere)),
                (Occur.Should, Query.disjunction_max_query(in_title)),
            ]
        )

    def _word_options(
        self, token: str, base: float, typos: bool, prefix: bool
    ) -> tuple[list[Query], list[Query], float]:
        """The ways a word can match anywhere (its stem in ``text`` first), each scored base + bonus,
        and the bonuses for matching in the title, each relative to the matching anywhere that it
        implies. An author clause only where some author has the word (at a million papers most query
        words are in no author's name, and a clause that matches nothing still costs a union). Third,
        the best score of the ways anywhere (the title's best bonus is always its exact match's)."""
        ways, in_title = self._scored_ways(token, base, typos, prefix)
        anywhere = [Query.const_score_query(q, score) for q, score in ways]
        return anywhere, in_title, max(score for _, score in ways)

    def _scored_ways(
        self, token: str, base: float, typos: bool, prefix: bool
    ) -> tuple[list[tuple[Query, float]], list[Query]]:
        """_word_options' ways anywhere as (unscored query, score), and the title's bonuses."""
        s = self.schema
        b = BONUS
        if self.completes_only(token, prefix):
            ways, in_title = [], []
        else:
            ways = [(Query.term_query(s, "text", stem_of(token)), base + b[("abstract", "stem")])]
            if self.doc_freq(token, "authors") != 0:  # None: no searcher to ask
                ways.append((Query.term_query(s, "authors", token), base + b[("authors", "exact")]))
            in_title = [
                Query.const_score_query(
                    Query.term_query(s, "title_plain", token), b[("title", "exact")] - b[("abstract", "stem")]
                ),
                Query.const_score_query(
                    Query.term_query(s, "title", stem_of(token)),
                    b[("title", "stem")] - b[("abstract", "stem")],
                ),
            ]
        apart = self.written_apart(token)
        if apart is not None:
            # Scored as the word's stem: "data set" is no weaker a match than "dataset".
            ways.append((self._apart_query(*apart), base + b[("abstract", "stem")]))
            in_title.append(
                Query.const_score_query(
                    self._apart_query(*apart, fields=("title",)),
                    b[("title", "stem")] - b[("abstract", "stem")],
                )
            )
        if typos:
            ways.append((_fuzzy(s, "text_plain", token), base + b[("abstract", "typo")]))
            ways.append((_fuzzy(s, "authors", token), base + b[("authors", "typo")]))
            in_title.append(
                Query.const_score_query(
                    _fuzzy(s, "title_plain", token), b[("title", "typo")] - b[("abstract", "typo")]
                )
            )
        completions = self._prefix("text_plain", token) if prefix else None
        if (by_author := self._author_prefix(token) if prefix else None) is not None:
            ways.append((by_author, base + b[("authors", "prefix")]))
        if completions is not None:
            ways.append((completions, base + b[("abstract", "prefix")]))
            in_title_completions = self._prefix("title_plain", token)
            if in_title_completions is not None:
                in_title.append(
                    Query.const_score_query(
                        in_title_completions, b[("title", "prefix")] - b[("abstract", "prefix")]
                    )
                )
        return ways, in_title

    def _in_field(self, field: str, token: str, base: float, typos: bool, prefix: bool) -> list[Query]:
        """A word restricted to one field (``ti:``, ``abs:``, ``au:``)."""
        s = self.schema
        if field == "authors":
            options = [self._const(Query.term_query(s, "authors", token), "authors", "exact", base)]
            if typos:
                options.append(self._const(_fuzzy(s, "authors", token), "authors", "typo", base))
            return options
        plain = f"{field}_plain"
        options = [
            self._const(Query.term_query(s, field, stem_of(token)), field, "stem", base),
            self._const(Query.term_query(s, plain, token), field, "exact", base),
        ]
        if typos:
            options.append(self._const(_fuzzy(s, plain, token), field, "typo", base))
        completions = self._prefix(plain, token) if prefix else None
        if completions is not None:
            options.append(self._const(completions, field, "prefix", base))
        return options

    def _author_prefix(self, prefix: str) -> Query | None:
        """A name being typed ("khom": "Khomh"), from MIN_AUTHOR_PREFIX letters."""
        return self._prefix("authors", prefix) if len(prefix) >= MIN_AUTHOR_PREFIX else None

    def _prefix(self, field: str, prefix: str) -> Query | None:
        """The word being typed: its most frequent completions (a short prefix like "gr" has thousands,
        and the rare ones are not what the user is typing); None where no completion adds to what the
        word's stem matches (see COMPLETION_SHARE). Most often that is a last word typed whole
        ("decoding"); leaving the empty clause out lets the word's stem run as a plain term in
        tantivy's intersection (at 3M papers the full query of two such words took twice as long).

        Completions with the typed word's own stem are left out: every query that asks for a prefix also
        asks for that stem, with a bonus at least as high, so they would change no score, and their
        posting lists are the longest ("model" completes to "models", "modeling", "modeled": a third of
        a million postings at a million papers, each read whole)."""
        if self.searcher is None:
            return Query.fuzzy_term_query(self.schema, field, prefix, distance=0, prefix=True)
        if field in _PREFIX_FIELDS and self.by_first_letters(prefix):
            # Every word it begins, the rare ones too, as one term: what the highlighter marks as well.
            if not self.doc_freq(prefix, _PREFIX_FIELDS[field]):
                return None
            return Query.term_query(self.schema, _PREFIX_FIELDS[field], prefix)
        completions = [term for term, _ in self._completions(field, prefix)]
        if not completions:
            return None
        return Query.term_set_query(self.schema, field, completions)

    @staticmethod
    def by_first_letters(prefix: str) -> bool:
        """Whether a word being typed matches through the words' first letters (title_prefix,
        text_prefix): every word it begins, where it has INDEXED_PREFIXES letters. At two or three
        letters most are also a word somewhere ("de", "ca", "gas"), so the rule for a word typed whole
        (COMPLETION_SHARE) would leave most of them to the completions' term set again."""
        return PREFIX_POSTINGS and len(prefix) in INDEXED_PREFIXES

    def completes_only(self, token: str, prefix: bool) -> bool:
        """Whether ``token`` matches the words it begins and not itself: a stop word being typed
        ("forms in", "modular for") that begins some word. Typed whole it would leave the query, and
        as itself it is in nearly every paper, where it only ranked a paper with "in" above one with
        "invariant", and its posting list, joined to its completions', cost most of the query (at 3M
        "forms in" took 105 ms in the title tier alone; docs/benchmarks.md)."""
        return (
            prefix
            and STOP_WORDS_COMPLETE_ONLY
            and token in STOPWORDS
            and len(token) >= MIN_PREFIX
            and self._prefix("text_plain", token) is not None
        )

    def _completions(self, field: str, prefix: str) -> list[tuple[str, int]]:
        """The completions _prefix asks for, with their document frequencies in ``field``."""
        if self.searcher is None:
            return []
        stem = stem_of(prefix)
        terms = self.searcher.terms_with_prefix(field, prefix, limit=PREFIX_COMPLETIONS)
        # A stop word is no word to stop at: "modular for" is "modular forms" being typed.
        as_typed = 0 if prefix in STOPWORDS else next((df for term, df in terms if term == prefix), 0)
        # Nor is it a completion: typed whole, the query drops it ("graph the" is "graph"), and as the
        # index's commonest words they were most of the cost of a word being typed: at 3M "the", "that"
        # and "this" are 7M of the 10.8M postings of the completions of "th".
        return [
            (t, df)
            for t, df in terms
            if stem_of(t) != stem and df >= as_typed * COMPLETION_SHARE and t not in STOPWORDS
        ]

    def phrase(self, phrase: Phrase) -> Query | None:
        fields = ("title", "abstract") if phrase.field == "all" else (phrase.field,)
        options = []
        for field in fields:
            if field == "authors":  # names are indexed as written
                words = [t for w in phrase.words for t in PLAIN_ANALYZER.analyze(w)]
            else:
                words = [t for w in phrase.words for t in STEM_ANALYZER.analyze(searchable(w))]
            if not words:
                continue
            query = (
                Query.phrase_query(self.schema, field, words)
                if len(words) > 1
                else Query.term_query(self.schema, field, words[0])
            )
            weight = WORD_BASE * len(phrase.words) + BONUS.get((field, "exact"), 5.0)
            options.append(Query.const_score_query(query, weight))
        return Query.disjunction_max_query(options) if options else None

    def category(self, text: str) -> Query:
        value = text.strip().lower()
        if value.endswith(".*"):
            value = value[:-2]
        field = "category" if "." in value else "archive"
        # "hep-th" is both an archive and a category; archives cover both.
        return Query.const_score_query(
            Query.term_query(self.schema, field, value), WORD_BASE + BONUS[("category", "exact")]
        )

    def date_range(self, start: datetime | None, end: datetime | None) -> Query:
        # tantivy stores dates as nanoseconds in an i64 (years 1678-2261): a range reaching beyond is
        # the same as one that stops there ("from the year 1000" means "from the start").
        start = max(start, DATE_MIN) if start else None
        end = min(end, DATE_MAX) if end else None
        if (start and start > DATE_MAX) or (end and end < DATE_MIN) or (start and end and start > end):
            return Query.empty_query()  # nothing can be published then
        return Query.const_score_query(
            Query.range_query(self.schema, "published", tantivy.FieldType.Date, start, end), 0.0
        )

    def node(self, node: Node) -> Query | None:
        if isinstance(node, Word):
            return self.word(node)
        if isinstance(node, Phrase):
            return self.phrase(node)
        if isinstance(node, DateRange):
            return self.date_range(node.start, node.end)
        if isinstance(node, And):
            return _all([q for q in (self.node(p) for p in node.parts) if q is not None])
        if isinstance(node, Or):
            parts = [q for q in (self.node(p) for p in node.parts) if q is not None]
            return Query.boolean_query([(Occur.Should, q) for q in parts]) if parts else None
        if isinstance(node, AndNot):
            keep, drop = self.node(node.keep), self.node(node.drop)
            if keep is None:
                return None
            if drop is None:
                return keep
            return Query.boolean_query([(Occur.Must, keep), (Occur.MustNot, drop)])
        raise TypeError(node)

    def plain(
        self, words: list[Word], phrases: list[Phrase], min_match: int, *, light_bonus: bool = False
    ) -> Query | None:
        """Plain words: at least ``min_match`` of them, plus bonuses for phrases and BM25 tie-breaks."""
        clauses = [q for q in (self.word(w) for w in words) if q is not None]
        phrase_clauses = [q for q in (self.phrase(p) for p in phrases) if q is not None]
        if not clauses and not phrase_clauses:
            return None
        required: list[tuple[Occur, Query]] = [(Occur.Must, q) for q in phrase_clauses]
        if clauses:
            at_least = max(1, min(min_match, len(clauses)))
            if at_least == len(clauses):
                # Every word: an intersection, which skips through the posting lists, where "at least n of
                # n" walks their union. Must clauses add their scores like Should ones, so the ranking is
                # the same (identical results on 720 searches at 3M; phase 2 timed no faster there).
                required += [(Occur.Must, q) for q in clauses]
            else:
                required.append(
                    (Occur.Must, Query.boolean_query([(Occur.Should, q) for q in clauses], at_least))
                )
        bonus = self._plain_bonus(words, light=light_bonus)
        return Query.boolean_query(required + [(Occur.Should, b) for b in bonus])

    def candidates(self, words: list[Word], phrases: list[Phrase], *, in_title: bool = False) -> Query | None:
        """A cheap query matching the same papers as ``plain(words, phrases, len(words))``, ranked by
        plain BM25 (which tantivy runs as a fast skip-list intersection): its count is the total, and its
        top hits are the candidates the full ranking query then orders. With ``in_title`` only papers with
        every word in the title: a second candidate set, so title matches are never crowded out."""
        musts: list[tuple[Occur, Query]] = []
        for word in words:
            musts += [(Occur.Must, q) for q in self._word_candidates(word, in_title)]
        musts += [(Occur.Must, q) for q in (self.phrase(p) for p in phrases) if q is not None]
        if not musts:
            return None
        return musts[0][1] if len(musts) == 1 else Query.boolean_query(musts)

    def _word_candidates(self, word: Word, in_title: bool) -> list[Query]:
        """The cheap queries a paper must all match to match ``word`` as ``word()`` does: one per token,
        or one in all where the word may also be written solid ("k-means", "kmeans")."""
        parts = [self._candidate(token, prefix, in_title) for token, prefix in tokens_as_typed(word)]
        solid = self.joined(word) if len(parts) > 1 else None
        if solid is None:
            return parts
        every_part = Query.boolean_query([(Occur.Must, q) for q in parts])
        as_one = self._candidate(*solid, in_title)
        return [Query.boolean_query([(Occur.Should, every_part), (Occur.Should, as_one)])]

    def words_matched(self, words: list[Word], phrases: list[Phrase]) -> Query | None:
        """Papers matching at least one of ``words`` (and every phrase), scored by how many of the words
        they match: the number of clauses of ``plain(words, phrases, k)`` that a paper satisfies, each
        word being the cheap query that matches the same papers (``_word_candidates``) under a constant
        score of 1. Cheap: constant scores and no bonus clauses walk the union in about a third of the
        time ``plain(words, phrases, 1)`` takes (docs/benchmarks.md). Words searched everywhere only (no
        field prefix, no wildcard): None otherwise."""
        if any(w.field != "all" or is_wildcard(w.text) for w in words):
            return None
        clauses = [_all(self._word_candidates(word, False)) for word in words]
        union = [(Occur.Should, Query.const_score_query(q, 1.0)) for q in clauses if q is not None]
        if not union:
            return None
        phrased = [(Occur.Must, Query.const_score_query(q, 0.0)) for q in map(self.phrase, phrases) if q]
        return Query.boolean_query([(Occur.Must, Query.boolean_query(union)), *phrased] if phrased else union)

    def counted_apart(self, words: list[Word], phrases: list[Phrase]) -> list[Query] | None:
        """Queries for disjoint sets of papers that together are those candidates(words, phrases)
        matches, so that their counts add up to its count: the token with the most ways to match
        (typically the word being typed: its stem or a completion) split into one query per way, each
        without the papers of the ways before it. The first, the commonest way, is then a plain
        intersection of posting lists, which tantivy counts several times faster than an intersection
        with a union ("models single" being typed at 3M: the stem and one completion, 22 ms whole).
        None where no token has more than one way."""
        tokens = []
        for word in words:
            if self.joined(word) is not None:
                tokens += [(None, q) for q in self._word_candidates(word, False)]
            else:
                tokens += [(self._candidate_options(t, p, False), None) for t, p in tokens_as_typed(word)]
        split = max(range(len(tokens)), key=lambda i: len(tokens[i][0] or ()), default=None)
        if split is None or len(tokens[split][0] or ()) < 2:
            return None
        rest = [
            (Occur.Must, q if q is not None else _any(options))
            for i, (options, q) in enumerate(tokens)
            if i != split
        ]
        rest += [(Occur.Must, q) for q in (self.phrase(p) for p in phrases) if q is not None]
        ways = tokens[split][0]
        return [
            Query.boolean_query([(Occur.Must, way), *rest, *[(Occur.MustNot, before) for before in ways[:i]]])
            for i, way in enumerate(ways)
        ]

    def _candidate(self, token: str, prefix: bool, in_title: bool) -> Query:
        """One token of the candidate query: its stem (BM25), or as an author, a typo or a prefix."""
        return _any(self._candidate_options(token, prefix, in_title))

    def _candidate_options(self, token: str, prefix: bool, in_title: bool) -> list[Query]:
        """The ways one token of the candidate query matches, its stem (BM25) first. As an author only
        where some author has it (a clause that matches nothing still costs a union)."""
        s = self.schema
        typos = _corrects_typos(token, self.doc_freq(token))
        stem_field, plain_field = ("title", "title_plain") if in_title else ("text", "text_plain")
        itself = not self.completes_only(token, prefix)
        options = [Query.term_query(s, stem_field, stem_of(token))] if itself else []
        if itself and not in_title and self.doc_freq(token, "authors") != 0:
            options.append(Query.term_query(s, "authors", token))
        if (apart := self.written_apart(token)) is not None:
            fields = ("title",) if in_title else ("title", "abstract")
            options.append(Query.const_score_query(self._apart_query(*apart, fields=fields), 1.0))
        if typos:
            options.append(Query.const_score_query(_fuzzy(s, plain_field, token), 1.0))
            if not in_title:
                options.append(Query.const_score_query(_fuzzy(s, "authors", token), 1.0))
        completions = self._prefix(plain_field, token) if prefix else None
        if completions is not None:
            options.append(Query.const_score_query(completions, 1.0))
        if prefix and not in_title and (by_author := self._author_prefix(token)) is not None:
            options.append(Query.const_score_query(by_author, 1.0))
        return options

    def ranking(self, words: list[Word], phrases: list[Phrase]) -> Ranking | None:
        """Every word required, ranked in one query: the scores of ``plain(words, phrases, len(words),
        light_bonus=True)`` plus ``TIE_BREAK`` times the words' BM25 in title and abstract, less an
        offset the caller adds back (Ranking.offset).

        The words' required clauses are plain BM25 term queries wherever a word can only match its own
        stem (no author has it, no typos, not a prefix), so tantivy runs them as its fast intersection
        of posting lists; the score every match gets from such a word (its base and the abstract's
        bonus) is the offset. Where the word is in the title is an optional clause, which tantivy reads
        only for the papers that already match. None for field syntax (``ti:`` etc.)."""
        if any(w.field != "all" for w in words):
            return None
        required: list[Query] = []
        optional: list[Query] = []
        splittable: list[tuple[int, _RankedToken]] = []
        offset = 0.0
        for word in words:
            solid = self.joined(word)
            if solid is not None:
                # No part can leave its score to the offset: a paper may match the solid word instead.
                matching, in_title = self._parts_or_solid(word, solid)
                required.append(matching)
                optional.append(in_title)
                optional += [self._bm25(token) for token, _ in tokens_as_typed(word)] + [self._bm25(solid[0])]
                continue
            for token, prefix in tokens_as_typed(word):
                part = self._ranked_token(token, prefix)
                if part.offset:  # its stem only: the same score for every match
                    required.append(part.bm25)
                    offset += part.offset
                else:
                    splittable.append((len(required), part))
                    required.append(part.scored)
                optional.append(part.in_title)
        required += [q for q in (self.phrase(p) for p in phrases) if q is not None]
        if not required:
            return None
        optional += self._plain_bonus(words, light=True)
        return Ranking(required, optional, offset, splittable)

    def title_tier(
        self, words: list[Word], phrases: list[Phrase], hits: int, ranking: Ranking | None = None
    ) -> TitleTier | None:
        """The papers with every word in the title, for ranking()'s query: where they are many, the
        best of them are its best results, and finding them reads the titles' short posting lists, not
        every paper with the words (179k for "models single" at 3M: 21 ms against 5).

        A paper lacking one word in its title scores at most every word's best match anywhere, every
        other word's title bonus and every word's largest BM25 tie-break (``above``, against the
        ranking query's scores); where the tier's lowest hit scores more than that, no other paper can
        be among them. The tier is candidates(in_title=True), which every paper with a title bonus for
        every word matches. None for field syntax, phrases, words also written solid, or where fewer
        than TITLE_TIER_MARGIN x ``hits`` papers are expected to have every word in the title (where
        few have, the words are rare enough to intersect cheaply anyway)."""
        if phrases or len(words) < 2 or self.searcher is None or any(w.field != "all" for w in words):
            return None
        n = max(1, self.searcher.num_docs)
        # BM25 of a word in a field without frequencies is at most idf x (k1 + 1), idf at most ln(1 + n).
        largest_tie_break = TIE_BREAK * math.log(1 + n) * (1 + BM25_K1)
        if any(self.joined(word) is not None for word in words):
            return None
        tokens = [typed for word in words for typed in tokens_as_typed(word)]
        expected = float(n)  # first, from document frequencies alone: most queries stop here
        for token, prefix in tokens:
            in_titles = (
                0 if self.completes_only(token, prefix) else self.doc_freq(stem_of(token), "title") or 0
            )
            if prefix and self.by_first_letters(token):  # or begin a word
                in_titles += self.doc_freq(token, "title_prefix") or 0
            elif prefix:  # or a completion: at most the sum (a title may have several)
                in_titles += sum(df for _, df in self._completions("title_plain", token))
            expected *= min(n, in_titles) / n
        if expected < TITLE_TIER_MARGIN * hits:
            return None
        # From ranking()'s clauses (built here where the caller has none): one required clause a token,
        # those that can match several ways with their best.
        ranking = ranking or self.ranking(words, phrases)
        if ranking is None:
            return None
        most = len(ranking.required) * (_BEST_IN_TITLE + largest_tie_break)
        most += sum(part.best for _, part in ranking.splittable)
        in_title = self.candidates(words, phrases, in_title=True)
        if in_title is None:
            return None
        return TitleTier(in_title, most - _BEST_IN_TITLE, round(expected))

    def _bm25(self, token: str) -> Query:
        """A word's tie-break: its stem's BM25 in title and abstract, scaled down to TIE_BREAK."""
        return Query.boost_query(Query.term_query(self.schema, "text", stem_of(token)), TIE_BREAK)

    def _ranked_token(self, token: str, prefix: bool) -> _RankedToken:
        df = self.doc_freq(token)
        base = self.word_base(df)
        ways, in_title = self._scored_ways(token, base, _corrects_typos(token, df), prefix)
        itself = not self.completes_only(token, prefix)
        # A stop word's BM25 breaks no tie: it is in nearly every paper.
        bm25 = self._bm25(token) if itself else Query.empty_query()
        any_of = Query.disjunction_max_query([Query.const_score_query(q, score) for q, score in ways])
        # _scored_ways' first way is the stem, and its first two title bonuses the word and its stem.
        unstemmed = in_title[2:] if itself else in_title
        return _RankedToken(
            in_title=Query.disjunction_max_query(in_title) if in_title else Query.empty_query(),
            bm25=bm25,
            scored=Query.boolean_query([(Occur.Must, any_of), (Occur.Should, bm25)]),
            offset=base + BONUS[("abstract", "stem")] if len(ways) == 1 and itself else 0.0,
            best=max(score for _, score in ways),
            ways=ways,
            stem_way=ways[0][0] if itself else None,
            in_title_unstemmed=Query.disjunction_max_query(unstemmed) if unstemmed else Query.empty_query(),
        )

    def matches_nothing(self, word: Word) -> bool:
        """Whether no paper can match ``word``: none holds it, no author has it, and it is neither
        corrected for typos nor completed as a prefix (either might still match). Such a word only
        empties the results, so relaxing the query would drop it first."""
        if word.field != "all" or self.searcher is None or self.joined(word) is not None:
            return False
        for token, prefix in tokens_as_typed(word):
            if prefix or _corrects_typos(token, self.doc_freq(token)) or self.written_apart(token):
                continue
            if not self.doc_freq(stem_of(token), "text") and not self.doc_freq(token, "authors"):
                return True
        return False

    def words_in_a_row(self, words: list[Word], field: str) -> Query | None:
        """The query's words together, in order, as typed (stems), in ``field``; None for one word."""
        tokens = [t for w in words for t in plain_tokens(w.text)]
        if len(tokens) < 2:
            return None
        return Query.phrase_query(self.schema, field, [stem_of(t) for t in tokens])

    def _plain_bonus(self, words: list[Word], *, light: bool = False) -> list[Query]:
        """Phrase bonuses and BM25 tie-breaks. ``light``: only the title phrase (cheap: short position
        lists); the caller breaks ties with BM25 scores it already has."""
        tokens = [t for w in words for t in plain_tokens(w.text)]
        bonus = []
        for field in ("title",) if light else ("title", "abstract"):
            if (phrase := self.words_in_a_row(words, field)) is not None:
                bonus.append(Query.const_score_query(phrase, PHRASE_BONUS[field]))
        if light:
            return bonus
        stems = [stem_of(t) for t in tokens if t not in STOPWORDS]
        bm25 = [
            (Occur.Should, Query.boost_query(Query.term_query(self.schema, "title", s), 2.0)) for s in stems
        ]
        bm25 += [(Occur.Should, Query.term_query(self.schema, "abstract", s)) for s in stems]
        if bm25:
            bonus.append(Query.boost_query(Query.boolean_query(bm25), TIE_BREAK))
        return bonus

    def filters(self, filters: Filters) -> list[Query]:
        out: list[Query] = []
        if filters.published_from or filters.published_to:
            start = (
                datetime.combine(filters.published_from, time.min, tzinfo=UTC)
                if filters.published_from
                else None
            )
            end = (
                datetime.combine(filters.published_to, time.max, tzinfo=UTC) if filters.published_to else None
            )
            out.append(self.date_range(start, end))
        if filters.categories:
            options = [(Occur.Should, self.category(c)) for c in filters.categories]
            out.append(Query.const_score_query(Query.boolean_query(options), 0.0))
        for author in filters.authors:
            tokens = plain_tokens(author)
            if tokens:
                q = (
                    Query.phrase_query(self.schema, "authors", tokens)
                    if len(tokens) > 1
                    else Query.term_query(self.schema, "authors", tokens[0])
                )
                out.append(Query.const_score_query(q, 0.0))
        if filters.ids:
            ids = Query.term_set_query(self.schema, "id", list(filters.ids))
            out.append(Query.const_score_query(ids, 0.0))
        return out


def _typed_as_meant(df: int | None) -> bool:
    """A word that many papers contain was almost surely typed as meant: its exact and stemmed matches
    already rank above any typo match, and expanding it to every word one or two edits away is the most
    expensive part of a query."""
    return df is not None and df >= TRUSTED_WORD_DF


def _corrects_typos(token: str, df: int | None) -> bool:
    """Whether a query word is also matched by words one or two edits away (``df``: its papers)."""
    return len(token) >= ONE_TYPO and not _typed_as_meant(df)


def wildcard_pattern(text: str) -> str | None:
    """A wildcard word as a regular expression over the index's words (lower-case, accents folded, as
    the plain fields hold them), or None where ``text`` is no wildcard (query.is_wildcard)."""
    if not is_wildcard(text):
        return None
    parts = []
    for piece in re.split(r"([*?])", text):
        if piece in ("*", "?"):
            parts.append(".*" if piece == "*" else ".")
        elif piece:
            tokens = PLAIN_ANALYZER.analyze(piece)
            if len(tokens) != 1:  # a letter the analyzer drops or splits at: no pattern to ask for
                return None
            parts.append(re.escape(tokens[0]))
    return "".join(parts)


def tokens_as_typed(word: Word) -> list[tuple[str, bool]]:
    """A query word's tokens ("gpt-4": "gpt", "4"), each with whether it is completed as a prefix: the
    last token of a word being typed, from MIN_PREFIX letters."""
    tokens = plain_tokens(word.text)
    return [(t, word.prefix and i == len(tokens) - 1 and len(t) >= MIN_PREFIX) for i, t in enumerate(tokens)]


def _fuzzy(schema: tantivy.Schema, field: str, token: str) -> Query:
    distance = 2 if len(token) >= TWO_TYPOS else 1
    return Query.fuzzy_term_query(schema, field, token, distance=distance, transposition_cost_one=True)


def _any(options: list[Query]) -> Query:
    return options[0] if len(options) == 1 else Query.boolean_query([(Occur.Should, o) for o in options])


def _all(parts: list[Query]) -> Query | None:
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return Query.boolean_query([(Occur.Must, q) for q in parts])


def with_filters(query: Query | None, filters: list[Query]) -> Query:
    if query is None and not filters:
        return Query.all_query()
    parts = ([(Occur.Must, query)] if query is not None else [(Occur.Must, Query.all_query())]) + [
        (Occur.Must, f) for f in filters
    ]
    return parts[0][1] if len(parts) == 1 else Query.boolean_query(parts)


_WORDISH = re.compile(r"\w")


def meaningful(words: list[Word]) -> list[Word]:
    """Drop stopwords from a plain query, unless nothing else is left."""
    # The word being typed is kept: "modular for" is on its way to "modular forms".
    kept = [w for w in words if (w.prefix or w.text.lower() not in STOPWORDS) and _WORDISH.search(w.text)]
    return kept or words
