"""Queries that name papers by identifier: arXiv ids, arXiv or Hugging Face links, DOIs.

A researcher who pastes ``2501.17461``, ``https://arxiv.org/abs/2501.17461v2``,
``huggingface.co/papers/2501.17461`` or a DOI wants that paper, not papers whose text holds the digits:
to the keyword engine an id is a few numbers, and to the model it means nothing.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import quote

from paperwire.arxiv_ids import InvalidArxivId, abs_url, parse_arxiv_id

# Most queries are words: one look at the first character skips them (an id starts with a digit, a link
# or an archive name; a DOI with "10." or "doi").
_MAY_NAME = re.compile(
    r"^\s*(?:\d|[a-z-]+(?:\.[a-z-]+)?/\d|arxiv|doi|https?:|www\.|[a-z0-9.-]+\.(?:org|co|com)/)", re.I
)
# Pages that show one arXiv paper under its id, other than arXiv's own (arxiv_ids knows those).
_PAPER_PAGES = re.compile(
    r"^(?:https?://)?(?:www\.)?(?:huggingface\.co/papers|alphaxiv\.org/(?:abs|overview)|"
    r"paperswithcode\.com/paper/arxiv|semanticscholar\.org/arxiv)/",
    re.IGNORECASE,
)
_DOI = re.compile(r"^(?:doi:\s*|(?:https?://)?(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\S+)$", re.IGNORECASE)
# arXiv's own DOIs (DataCite, since 2022) carry the id: 10.48550/arXiv.2501.17461
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.IGNORECASE)
_SPACED_PREFIX = re.compile(r"\b(doi|arxiv):\s+", re.IGNORECASE)  # "doi: 10.1109/..."


class Identifier(NamedTuple):
    kind: str  # "arxiv" or "doi"
    value: str  # the canonical arXiv id, or the DOI as typed (DOIs are case-insensitive)

    def __str__(self) -> str:
        return f"arXiv:{self.value}" if self.kind == "arxiv" else f"doi:{self.value}"

    @property
    def url(self) -> str:
        """Where the paper it names is, outside this catalogue."""
        if self.kind == "arxiv":
            return abs_url(self.value)
        return f"https://doi.org/{quote(self.value, safe='/:;()')}"


def identifiers_in(query: str) -> list[Identifier] | None:
    """The identifiers ``query`` is made of, in its order and without repeats; None unless every part of
    it is one (parts are separated by spaces; a comma or semicolon may end a part)."""
    if not _MAY_NAME.match(query):
        return None
    found: list[Identifier] = []
    for part in _SPACED_PREFIX.sub(r"\1:", query).split():
        identifier = _identifier(part)
        if identifier is None:
            return None
        if identifier not in found:
            found.append(identifier)
    return found or None


def _identifier(text: str) -> Identifier | None:
    # A DOI may hold commas and semicolons, but not end with one.
    text = _PAPER_PAGES.sub("", text.rstrip(",;."))
    doi = _DOI.match(text)
    if doi:
        arxiv = _ARXIV_DOI.match(doi[1])
        if arxiv is None:
            return Identifier("doi", doi[1])
        text = arxiv[1]
    try:
        return Identifier("arxiv", parse_arxiv_id(text)[0])
    except InvalidArxivId:
        return None
