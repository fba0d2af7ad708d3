"""Is a word English? Hybrid search uses this to tell a typo from a real word the index does not hold.

The keyword index only knows the words of its papers: on a small catalogue, or for a rare word on a big
one, "unequally" or "crosswalk" are unknown to it, and reading them as typos of "equally" or "crosswalks"
would change what the query means. The word list is pyspellchecker's English dictionary (~160k words with
their frequency in a large corpus); it ships inside the package, and is loaded on first use (~0.2 s).
"""

from __future__ import annotations

import threading

_words: frozenset[str] | None = None
_lock = threading.Lock()


def _load() -> frozenset[str]:
    global _words
    with _lock:
        if _words is None:
            from spellchecker import SpellChecker

            # Only the words are kept: the checker's own tables cost several times as much memory.
            _words = frozenset(SpellChecker(language="en", distance=1).word_frequency.keys())
        return _words


def is_english_word(token: str) -> bool:
    """True for a word of the English dictionary (case-insensitive), e.g. "exam", "unequally"; False for
    "speculatve", "robotaxis", or anything that is not a single word."""
    return token.lower() in (_words if _words is not None else _load())
