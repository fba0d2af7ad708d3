"""Highlighting and "why it matched", computed from the query words with the same rules the keyword
index matches by (exact, stem, typo, prefix), so what is marked is what made the paper match."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from markupsafe import Markup, escape
from rapidfuzz.distance import OSA

from paperwire.search.keyword import MIN_PREFIX, ONE_TYPO, STOPWORDS, TWO_TYPOS, plain_tokens, stem_of

_WORD = re.compile(r"\w+", re.UNICODE)
# In ASCII text, every character that \w does not match, made a space: str.split() then gives the words.
_NON_WORD_TO_SPACE = {c: " " for c in range(128) if not (chr(c).isalnum() or chr(c) == "_")}
SNIPPET_CHARS = 320


def fold(word: str) -> str:
    """Lower-case without accents, as the index's ascii_fold + lowercase filters see it."""
    if word.isascii():
        return word.lower()
    return unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode().lower()


def _is_word_char(char: str) -> bool:
    """What ``\\w`` matches, for one ASCII character."""
    return char.isalnum() or char == "_"


@dataclass(frozen=True)
class Mark:
    start: int
    end: int
    query_word: str
    how: str  # exact | stem | typo | prefix


def _start(mark: Mark) -> int:
    return mark.start


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
    ):
        tokens = [t for w in words for t in plain_tokens(w)]
        meaningful = [t for t in tokens if t not in STOPWORDS] or tokens
        self.tokens = list(dict.fromkeys(meaningful))
        self.stems = {stem_of(t): t for t in self.tokens}
        self.prefix = (
            self.tokens[-1] if last_is_prefix and self.tokens and len(self.tokens[-1]) >= MIN_PREFIX else None
        )
        self._exact = frozenset(self.tokens)
        # (word, edits allowed, length) of the query words that match their typos, in query order.
        self._typo_tokens = [
            (t, 2 if len(t) >= TWO_TYPOS else 1, len(t))
            for t in self.tokens
            if len(t) >= ONE_TYPO and not (typed_as_meant and typed_as_meant(t))
        ]
        sizes = [size for _, _, size in self._typo_tokens]
        # A typo is at most two letters longer or shorter than the word it misspells.
        self._typo_sizes = range(min(sizes) - 2, max(sizes) + 3) if sizes else range(0)
        self._cache: dict[str, tuple[str, str] | None] = {}

    def __bool__(self) -> bool:
        return bool(self.tokens)

    def _classify(self, words: Iterable[str]) -> None:
        """How each of ``words`` matches a query word, into the cache: exact, else by stem, else as the
        prefix being typed, else as a typo, else not at all (a page of hits brings ~700 new words)."""
        cache, exact, stems, prefix, typo_sizes = (
            self._cache,
            self._exact,
            self.stems,
            self.prefix,
            self._typo_sizes,
        )
        distance = OSA.distance
        for word in words:
            if word in exact:
                cache[word] = (word, "exact")
                continue
            token = stems.get(stem_of(word))
            if token is not None:
                cache[word] = (token, "stem")
                continue
            if prefix and word.startswith(prefix):
                cache[word] = (prefix, "prefix")
                continue
            cache[word] = None
            size = len(word)
            if size in typo_sizes:
                for token, allowed, token_size in self._typo_tokens:
                    if abs(token_size - size) <= 2 and distance(word, token, score_cutoff=allowed) <= allowed:
                        cache[word] = (token, "typo")
                        break

    def marks(self, text: str) -> list[Mark]:
        if not self.tokens or not text:
            return []
        if not text.isascii():
            return self._marks_folding(text)
        # ASCII text folds by lower-casing, with offsets unchanged. Its distinct words are classified
        # once (a word is looked at once per query), then only the matched ones are looked for.
        folded = text.lower()
        cache = self._cache
        distinct = set(folded.translate(_NON_WORD_TO_SPACE).split())  # \w+ words, several times faster
        self._classify([w for w in distinct if w not in cache])
        out = []
        size = len(folded)
        for word in distinct:
            found = cache[word]
            if found is None:
                continue
            at = folded.find(word)
            while at != -1:  # whole words only, as \w+ would have split the text
                end = at + len(word)
                if (at == 0 or not _is_word_char(folded[at - 1])) and (
                    end == size or not _is_word_char(folded[end])
                ):
                    out.append(Mark(at, end, *found))
                at = folded.find(word, end)
        out.sort(key=_start)
        return out

    def _marks_folding(self, text: str) -> list[Mark]:
        """Text with accents: each word folded on its own, the offsets those of the original text."""
        cache = self._cache
        distinct = {fold(w) for w in set(_WORD.findall(text))}
        self._classify([w for w in distinct if w not in cache])
        if not any(cache[w] is not None for w in distinct):
            return []  # most author lists: spared looking at each word again for its offsets
        spans = [(m.start(), m.end(), fold(m.group())) for m in _WORD.finditer(text)]
        return [Mark(start, end, *cache[w]) for start, end, w in spans if cache[w] is not None]

    def html(self, text: str, marks: list[Mark] | None = None) -> Markup:
        """The whole text, escaped, with matches in <mark>."""
        marks = self.marks(text) if marks is None else marks
        parts, at = [], 0
        for mark in marks:  # joined as plain strings, every one escaped: Markup's own + and join cost more
            parts += (escape(text[at : mark.start]), "<mark>", escape(text[mark.start : mark.end]), "</mark>")
            at = mark.end
        parts.append(escape(text[at:]))
        return Markup("".join(parts))

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
        if shown == window:  # most abstracts: nothing to convert, so the marks found on the text stand
            inner = [
                Mark(m.start - start, m.end - start, m.query_word, m.how)
                for m in marks
                if m.start >= start and m.end <= end
            ]
            body = self.html(shown, inner)
        else:
            body = self.html(shown, self.marks(shown))
        return (
            (Markup("… ") if start else Markup("")) + body + (Markup(" …") if end < len(text) else Markup(""))
        )

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
