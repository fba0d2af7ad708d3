"""Text clean-up shared by every ingest source.

arXiv's metadata is hard-wrapped at ~80 columns, continuation lines of titles are indented, and
abstracts start with two spaces. We keep the text itself (LaTeX included) but not the layout: a title
becomes one line; an abstract keeps its paragraphs (one ``\\n`` between them) and nothing else.
"""

from __future__ import annotations

import re

# Control characters other than tab/newline/CR never belong in metadata; they break XML and terminals.
# (str.split() already treats \x0b, \x0c and \x1c-\x1f as whitespace.)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")
# In arXiv abstracts a new paragraph is an indented line after a line that ended a sentence.
_SENTENCE_END = (".", "!", "?", ":", ")", "]")


def clean_line(text: str | None) -> str:
    """Collapse all whitespace (line breaks included) to single spaces."""
    if not text:
        return ""
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    # split/join is several times faster than a regex substitution, and this runs on every title.
    return " ".join(text.split())


def clean_abstract(text: str | None) -> str:
    """Join hard-wrapped lines, keep real paragraph breaks as a single newline."""
    if not text:
        return ""
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    text = text.strip().replace("\r\n", "\n").replace("\r", "\n")
    # Most abstracts are one paragraph: no line starts indented and none is blank.
    if "\n " not in text and "\n\t" not in text and "\n\n" not in text:
        return " ".join(text.split())
    paragraphs: list[list[str]] = [[]]
    for line in text.split("\n"):
        stripped = line.strip()
        current = paragraphs[-1]
        if not stripped:
            if current:
                paragraphs.append([])
        elif line[:1].isspace() and current and current[-1].endswith(_SENTENCE_END):
            paragraphs.append([stripped])
        else:
            current.append(stripped)
    return "\n".join(" ".join(" ".join(p).split()) for p in paragraphs if p)


def clean_optional(text: str | None) -> str | None:
    """Like :func:`clean_line` but keeps ``None`` for absent values and turns empty text into ``None``."""
    cleaned = clean_line(text)
    return cleaned or None
