"""Highlighting and "why it matched", computed from the query words with the same rules the keyword
index matches by (exact, stem, typo, prefix), so what is marked is what made the paper match."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from itertools import pairwise
from typing import NamedTuple

from markupsafe import Markup, escape
from rapidfuzz.distance import OSA
from rapidfuzz.process import extract

from paperwire.search.keyword import (
    MIN_PREFIX,
    ONE_TYPO,
    STOPWORDS,
    TWO_TYPOS,
    hyphenated_in,
    joined_token,
    plain_tokens,
    stem_of,
    wildcard_pattern,
)

_WORD = re.compile(r"\w+", re.UNICODE)
# For ASCII text as bytes, every byte that \w does not match made a space: split() then gives the words,
# several times faster than re.findall(r"\w+") or str.translate.
_NON_WORD_TO_SPACE = bytes(c if c < 128 and (chr(c).isalnum() or c == ord("_")) else 32 for c in range(256))
SNIPPET_CHARS = 320
# A formula that LaTeX splits: letters with digit subscripts ("MoS$_2$", "Bi$_2$Se$_3$"), or an isotope
# ("$^{3}$He"). See keyword.joined_scripts.
_SCRIPT = r"\$_\{?\d{1,3}\}?\$"
_MASS = r"\$\^\{?\d{1,3}\}?\$"
_FORMULA = re.compile(rf"(?:{_MASS})?[A-Za-z]+(?:{_SCRIPT}[A-Za-z]*)+|{_MASS}[A-Z][A-Za-z]*")
# The Snowball exceptions whose stem does not begin as the word does: dying -> die, lying, tying.
_STEM_HEAD_ALIASES = {"di": "dy", "li": "ly", "ti": "ty"}


def fold(word: str) -> str:
    """Lower-case without accents, as the index's ascii_fold + lowercase filters see it."""
    if word.isascii():
        return word.lower()
    return unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode().lower()


def _is_word_char(char: str) -> bool:
    """What ``\\w`` matches, for one ASCII character."""
    return char.isalnum() or char == "_"


class Mark(NamedTuple):
    start: int
    end: int
    query_word: str
    how: str  # exact | stem | typo | prefix


class Highlighter:
    """Marks the query's words in a result's text. ``typed_as_meant``: whether the index took a query
    word as typed correctly (words many papers contain: KeywordIndex expands only rare words to their
    typos), so that no near spelling of it is marked as a typo match the index never made."""

    def __init__(
        self,
        words: list[str],
        *,
        last_is_prefix: bool = False,
        typed_as_meant: Callable[[str], bool] | None = None,
        written_apart: Callable[[str], tuple[str, str] | None] | None = None,
    ):
        # Wildcard words ("transform*") mark the words they match, as the index matched them.
        patterns = {w: wildcard_pattern(w) for w in words}
        self._patterns = [(w, re.compile(p)) for w, p in patterns.items() if p is not None]
        words = [w for w in words if patterns[w] is None]
        tokens = [t for w in words for t in plain_tokens(w)]
        meaningful = [t for t in tokens if t not in STOPWORDS] or tokens
        self.tokens = list(dict.fromkeys(meaningful))
        self.stems = {stem_of(t): t for t in self.tokens}
        self.prefix = (
            self.tokens[-1] if last_is_prefix and self.tokens and len(self.tokens[-1]) >= MIN_PREFIX else None
        )
        # A query word typed in parts ("non-linear") also matches where it is written solid ("nonlinear"),
        # as the index matches it (QueryBuilder.joined).
        # So do two adjacent query words written as one ("data set": "dataset"), which the index asks
        # for where papers often write them so (QueryBuilder.with_solid_pairs).
        solid = [j for w in words if (j := joined_token(plain_tokens(w))) is not None]
        solid += [j for pair in pairwise(self.tokens) if (j := joined_token(list(pair))) is not None]
        self._exact = frozenset(self.tokens + solid)
        self.stems.update({stem_of(j): j for j in solid if stem_of(j) not in self.stems})
        self._solid_cache: dict[str, tuple[str, str] | None] = {}
        # A query word that the index also matches written as two words ("dataset": "data set",
        # QueryBuilder.written_apart): the two words in a row, found by their stems ("data sets").
        apart = {t: pair for t in self.tokens if written_apart and (pair := written_apart(t)) is not None}
        self._apart = [
            (token, a, b, re.compile(rf"\b({re.escape(a)}\w*)[\s$-]+({re.escape(b)}\w*)\b", re.IGNORECASE))
            for token, (a, b) in apart.items()
        ]
        # (word, edits allowed) of the query words that match their typos, in query order.
        self._typo_tokens = [
            (t, 2 if len(t) >= TWO_TYPOS else 1)
            for t in self.tokens
            if len(t) >= ONE_TYPO and not (typed_as_meant and typed_as_meant(t))
        ]
        # A word's stem keeps its first two letters (Snowball English), but for "dying", "lying" and
        # "tying" (die, lie, tie) and where the index's tokenizer splits the word at a "_" in them: so
        # a word can match a query word exactly, by stem or as its prefix only if it begins with the
        # first two letters of a query word, of its stem or of the prefix (tests/test_search.py).
        heads = {t[:2] for t in self._exact} | {s[:2] for s in self.stems}
        heads |= {_STEM_HEAD_ALIASES[h] for h in heads if h in _STEM_HEAD_ALIASES}
        heads |= {pattern.pattern[:2] for _, pattern in self._patterns}
        self._heads = tuple(heads)
        self._matching: set[str] = set()  # the words in the cache that match
        self._cache: dict[str, tuple[str, str] | None] = {}
        self._forms_cache: dict[str, tuple[str, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self.tokens or self._patterns)

    def _classify(self, words: list[str]) -> None:
        """How each of ``words`` matches a query word, into the cache: exact, else by stem, else as the
        prefix being typed, else as a typo, else not at all. A page of hits brings ~700 new words, of
        which a handful match: the typo test runs in rapidfuzz over all of them at once, and the exact,
        stem and prefix tests only for the few words that begin as a query word does."""
        cache = self._cache
        cache.update(dict.fromkeys(words))
        matched = []
        # Lowest precedence first, each later test overwriting: typo, prefix, stem, exact. The first
        # query word in query order wins among typos, so they are written last to first.
        for token, allowed in reversed(self._typo_tokens):
            for word, _, _ in extract(
                token, words, scorer=OSA.distance, score_cutoff=allowed, limit=None, processor=None
            ):
                cache[word] = (token, "typo")
                matched.append(word)
        exact, stems, prefix = self._exact, self.stems, self.prefix
        heads = self._heads
        candidates = [w for w in words if w.startswith(heads)]
        if "_" in "".join(words):
            candidates += [w for w in words if "_" in w[:2] and not w.startswith(heads)]
        for word in candidates:
            if word in exact:
                cache[word] = (word, "exact")
            elif (token := stems.get(stem_of(word))) is not None:
                cache[word] = (token, "stem")
            elif prefix and word.startswith(prefix) and word not in STOPWORDS:  # as _completions
                cache[word] = (prefix, "prefix")
            elif (wildcard := self._wildcard_of(word)) is not None:
                cache[word] = (wildcard, "exact")
            else:
                continue
            matched.append(word)
        self._matching.update(matched)

    def _wildcard_of(self, word: str) -> str | None:
        """The wildcard query word that ``word`` matches, if any."""
        return next((typed for typed, pattern in self._patterns if pattern.fullmatch(word)), None)

    def marks(self, text: str) -> list[Mark]:
        if not self or not text:
            return []
        if not text.isascii():
            return self._marks_folding(text)
        # ASCII text folds by lower-casing, with offsets unchanged. Its distinct words are classified
        # once (a word is looked at once per query), then only the matched ones are looked for.
        folded = text.lower()
        distinct = set(folded.encode().translate(_NON_WORD_TO_SPACE).decode().split())
        if new := distinct.difference(self._cache):
            self._classify(list(new))
        out = []
        cache, size = self._cache, len(folded)
        for word in distinct.intersection(self._matching):
            found = cache[word]
            at = folded.find(word)
            while at != -1:  # whole words only, as \w+ would have split the text
                end = at + len(word)
                if (at == 0 or not _is_word_char(folded[at - 1])) and (
                    end == size or not _is_word_char(folded[end])
                ):
                    out.append(Mark(at, end, *found))
                at = folded.find(word, end)
        out.sort()
        return self._with_apart(text, self._with_formulas(text, self._with_compounds(folded, out)))

    def _with_compounds(self, text: str, marks: list[Mark]) -> list[Mark]:
        """``marks`` plus the hyphenated words of ``text`` that match a query word when written solid
        ("non-linear" for the query "nonlinear"), as the index matches them (keyword.compounds_of). Such
        a word is marked whole, in place of any marks of its parts."""
        if "-" not in text:
            return marks
        found = []
        for match in hyphenated_in(text):
            how = self._solid(match.group())
            if how is not None:
                found.append(Mark(match.start(), match.end(), *how))
        if not found:
            return marks
        outside = [m for m in marks if not any(f.start <= m.start and m.end <= f.end for f in found)]
        return sorted(outside + found)

    def _solid(self, hyphenated: str) -> tuple[str, str] | None:
        """How a hyphenated word written solid matches a query word: exact, by stem, or as the prefix."""
        if hyphenated in self._solid_cache:
            return self._solid_cache[hyphenated]
        joined = joined_token(plain_tokens(hyphenated))
        how = self._solid_how(joined) if joined is not None else None
        self._solid_cache[hyphenated] = how
        return how

    def _solid_how(self, joined: str) -> tuple[str, str] | None:
        """How one token written solid matches a query word: exact, by stem, or as the prefix."""
        if joined in self._exact:
            return (joined, "exact")
        if (token := self.stems.get(stem_of(joined))) is not None:
            return (token, "stem")
        if self.prefix and joined.startswith(self.prefix):
            return (self.prefix, "prefix")
        return None

    def _marks_folding(self, text: str) -> list[Mark]:
        """Text with accents: each word folded on its own, the offsets those of the original text."""
        forms = {w: self._forms(w) for w in set(_WORD.findall(text))}
        cache = self._cache
        if new := list({f for fs in forms.values() for f in fs if f not in cache}):
            self._classify(new)
        matching = self._matching
        found = {}
        for word, fs in forms.items():
            # A Greek symbol beside letters ("ΛCDM" is "Lambda-CDM" to the index) is also one word.
            joined = joined_token(list(fs)) if len(fs) > 1 else None
            if joined is not None and (how := self._solid_how(joined)) is not None:
                found[word] = how
                continue
            if (form := next((f for f in fs if f in matching), None)) is not None:
                found[word] = cache[form]
        marks = (
            [Mark(m.start(), m.end(), *found[m.group()]) for m in _WORD.finditer(text) if m.group() in found]
            if found
            else []  # most author lists: spared looking at each word again for its offsets
        )
        return self._with_apart(text, self._with_formulas(text, self._with_compounds(text, marks)))

    def _forms(self, word: str) -> tuple[str, ...]:
        """A word of the text as the index's words: folded, as one; a word that folding would lose
        letters of (Greek: "λόγος", "ΛCDM") as the index's analyzer reads it, in one or more parts."""
        forms = self._forms_cache.get(word)
        if forms is None:
            folded = fold(word)
            forms = (folded,) if len(folded) == len(word) else tuple(plain_tokens(word))
            self._forms_cache[word] = forms
        return forms

    def _with_formulas(self, text: str, marks: list[Mark]) -> list[Mark]:
        """``marks`` plus the formulas of ``text`` that LaTeX splits ("MoS$_2$", "$^{3}$He") and that
        match a query word joined ("MoS2"), as the index reads them (keyword.joined_scripts); marked
        whole, in place of any marks of their parts."""
        if "$_" not in text and "$^" not in text:
            return marks
        found = []
        for match in _FORMULA.finditer(text):
            tokens = plain_tokens(match.group())
            how = self._solid_how(tokens[0]) if len(tokens) == 1 else None
            if how is not None:
                found.append(Mark(match.start(), match.end(), *how))
        if not found:
            return marks
        outside = [m for m in marks if not any(f.start <= m.start < f.end for f in found)]
        return sorted(outside + found)

    def _with_apart(self, text: str, marks: list[Mark]) -> list[Mark]:
        """``marks`` plus the query words found written as two ("data sets" for the query "dataset"),
        each marked whole in place of any marks inside it."""
        found = []
        for token, a, b, pattern in self._apart:
            for match in pattern.finditer(text):
                first, second = fold(match.group(1)), fold(match.group(2))
                if stem_of(first) == stem_of(a) and stem_of(second) == stem_of(b):
                    how = "exact" if (first, second) == (a, b) else "stem"
                    found.append(Mark(match.start(), match.end(), token, how))
        if not found:
            return marks
        outside = [
            m for m in marks if not any(f.start <= m.start < f.end or f.start < m.end <= f.end for f in found)
        ]
        return sorted(outside + found)

    def html(self, text: str, marks: list[Mark] | None = None) -> Markup:
        """The whole text, escaped, with matches in <mark>."""
        return Markup(self._html(text, self.marks(text) if marks is None else marks))

    @staticmethod
    def _html(text: str, marks: list[Mark]) -> str:
        # Joined as plain strings, every one escaped: Markup's own + and join cost more.
        parts, at = [], 0
        for mark in marks:
            parts += (escape(text[at : mark.start]), "<mark>", escape(text[mark.start : mark.end]), "</mark>")
            at = mark.end
        parts.append(escape(text[at:]))
        return "".join(parts)

    def snippet(
        self,
        text: str,
        width: int = SNIPPET_CHARS,
        marks: list[Mark] | None = None,
        display: Callable[[str], str] | None = None,
    ) -> Markup:
        """The window of ``text`` with the most distinct matched words, cut at word boundaries.

        ``display`` (e.g. LaTeX to Unicode) is applied to the chosen window only, not the whole text: it
        can cost a millisecond per abstract, and a page of hits must not pay that for every abstract."""
        marks = self.marks(text) if marks is None else marks
        if len(text) <= width or not marks:
            end = len(text) if len(text) <= width else text.rfind(" ", 0, width) or width
            return self._window(text, 0, end, marks, display)
        best_start, best_score = 0, -1
        for i, first in enumerate(marks):
            window = [m for m in marks[i:] if m.end - first.start <= width]
            score = len({m.query_word for m in window}) * 100 + len(window)
            if score > best_score:
                best_start, best_score = first.start, score
        # Start a little before the first match, at a word boundary, so the snippet reads as a sentence.
        start = max(0, best_start - 60)
        if start:
            space = text.find(" ", start)
            start = space + 1 if 0 <= space < best_start else start
        end = min(len(text), start + width)
        if end < len(text):
            space = text.rfind(" ", start, end)
            end = space if space > best_start else end
        return self._window(text, start, end, marks, display)

    def _window(
        self, text: str, start: int, end: int, marks: list[Mark], display: Callable[[str], str] | None
    ) -> Markup:
        """text[start:end] as HTML, ``marks`` (found on the whole text) marked where they fall inside."""
        if display is not None:
            # Never cut inside $...$: widen the window to whole formulas before converting it.
            if text.count("$", 0, start) % 2:
                start = text.rfind("$", 0, start)
            if text.count("$", start, end) % 2 and (close := text.find("$", end)) != -1:
                end = close + 1
        window = text[start:end]
        shown = window if display is None else display(window)
        inner = [
            Mark(m.start - start, m.end - start, m.query_word, m.how)
            for m in marks
            if m.start >= start and m.end <= end
        ]
        if shown != window and inner:
            # LaTeX turned into Unicode moves the words: find them again in what is shown. A window
            # without a match in the stored text has none shown either (marks are what the index
            # matched, and it matched the stored text).
            inner = self.marks(shown)
        body = self._html(shown, inner)
        return Markup(("… " if start else "") + body + (" …" if end < len(text) else ""))

    def why(self, fields: dict[str, list[Mark]]) -> list[str]:
        """Short reasons from each field's marks, e.g. ``title: "speculative"``, ``abstract: "decoding" (typo)``."""
        reasons = []
        for name, marks in fields.items():
            seen: dict[str, str] = {}
            for mark in marks:
                if mark.query_word not in seen or mark.how == "exact":
                    seen[mark.query_word] = mark.how
            if seen:
                words = ", ".join(
                    f'"{w}"' + ("" if how == "exact" else f" ({how})") for w, how in seen.items()
                )
                reasons.append(f"{name}: {words}")
        return reasons
