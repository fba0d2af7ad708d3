"""Highlighting and "why it matched", computed from the query words with the same rules the keyword
index matches by (exact, stem, typo, prefix), so what is marked is what made the paper match."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup, escape
from rapidfuzz.distance import OSA

from paperwire.search.keyword import MIN_PREFIX, ONE_TYPO, STOPWORDS, TWO_TYPOS, plain_tokens, stem_of

_WORD = re.compile(r"\w+", re.UNICODE)
SNIPPET_CHARS = 320
_UNSEEN = object()


def fold(word: str) -> str:
    """Lower-case without accents, as the index's ascii_fold + lowercase filters see it."""
    if word.isascii():
        return word.lower()
    return unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode().lower()


@dataclass(frozen=True)
class Mark:
    start: int
    end: int
    query_word: str
    how: str  # exact | stem | typo | prefix


class Highlighter:
    def __init__(self, words: list[str], *, last_is_prefix: bool = False):
        tokens = [t for w in words for t in plain_tokens(w)]
        meaningful = [t for t in tokens if t not in STOPWORDS] or tokens
        self.tokens = list(dict.fromkeys(meaningful))
        self.stems = {stem_of(t): t for t in self.tokens}
        self.prefix = (
            self.tokens[-1] if last_is_prefix and self.tokens and len(self.tokens[-1]) >= MIN_PREFIX else None
        )
        self._cache: dict[str, tuple[str, str] | None] = {}

    def __bool__(self) -> bool:
        return bool(self.tokens)

    def _match(self, word: str) -> tuple[str, str] | None:
        result = None
        if word in self.tokens:
            result = (word, "exact")
        else:
            stem = stem_of(word)
            if stem in self.stems:
                result = (self.stems[stem], "stem")
            elif self.prefix and word.startswith(self.prefix):
                result = (self.prefix, "prefix")
            else:
                for token in self.tokens:
                    if len(token) < ONE_TYPO or abs(len(token) - len(word)) > 2:
                        continue
                    allowed = 2 if len(token) >= TWO_TYPOS else 1
                    if OSA.distance(word, token, score_cutoff=allowed) <= allowed:
                        result = (token, "typo")
                        break
        self._cache[word] = result
        return result

    def marks(self, text: str) -> list[Mark]:
        if not self.tokens or not text:
            return []
        # ASCII text folds by lower-casing, with offsets unchanged: do it once, not per word.
        folded = text.lower() if text.isascii() else None
        cache, match = self._cache, self._match
        out = []
        for m in _WORD.finditer(folded if folded is not None else text):
            word = m.group() if folded is not None else fold(m.group())
            found = cache.get(word, _UNSEEN)
            if found is _UNSEEN:
                found = cache[word] = match(word)
            if found:
                out.append(Mark(m.start(), m.end(), found[0], found[1]))
        return out

    def html(self, text: str, marks: list[Mark] | None = None) -> Markup:
        """The whole text, escaped, with matches in <mark>."""
        marks = self.marks(text) if marks is None else marks
        parts, at = [], 0
        for mark in marks:
            parts.append(escape(text[at : mark.start]))
            parts.append(Markup("<mark>") + escape(text[mark.start : mark.end]) + Markup("</mark>"))
            at = mark.end
        parts.append(escape(text[at:]))
        return Markup("").join(parts)

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
