"""Text clean-up shared by every ingest source.

arXiv's metadata is hard-wrapped at ~80 columns, continuation lines of titles are indented, and
abstracts start with two spaces. We keep the text itself (LaTeX included) but not the layout: a title
becomes one line; an abstract keeps its paragraphs (one ``\\n`` between them) and nothing else.
"""

from __future__ import annotations

import re

_WS = re.compile(r"\s+")
# Control characters other than tab/newline never belong in metadata; they break XML and terminals.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# In arXiv abstracts a new paragraph is a line indented by whitespace after a line that ended a sentence.
_SENTENCE_END = (".", "!", "?", ":", ")", "]")


def clean_line(text: str | None) -> str:
    """Collapse all whitespace (line breaks included) to single spaces."""
    if not text:
        return ""
    return _WS.sub(" ", _CONTROL.sub("", text)).strip()


def clean_abstract(text: str | None) -> str:
    """Join hard-wrapped lines, keep real paragraph breaks as a single newline."""
    if not text:
        return ""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    paragraphs: list[list[str]] = [[]]
    for i, line in enumerate(text.split("\n")):
        stripped = line.strip()
        if not stripped:
            if paragraphs[-1]:
                paragraphs.append([])
            continue
        starts_indented = line[:1].isspace()
        current = paragraphs[-1]
        if i > 0 and starts_indented and current and current[-1].endswith(_SENTENCE_END):
            paragraphs.append([stripped])
        else:
            current.append(stripped)
    return "\n".join(_WS.sub(" ", " ".join(p)) for p in paragraphs if p)


def clean_optional(text: str | None) -> str | None:
    """Like :func:`clean_line` but keeps ``None`` for absent values and turns empty text into ``None``."""
    cleaned = clean_line(text)
    return cleaned or None
