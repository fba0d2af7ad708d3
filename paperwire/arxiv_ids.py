"""arXiv identifiers: parse every form people and arXiv's services use, keep one canonical form.

Canonical form is the id without version: new style ``2401.14040`` / ``0704.0001``, old style
``hep-th/9901001``. Old-style ids sometimes carry a subject class (``math.GT/0309136``); arXiv resolves
those to the archive alone (``math/0309136``), and so do we, so one paper never gets two ids.
"""

from __future__ import annotations

import re

_NEW_STYLE = re.compile(r"^(?P<yymm>\d{4})\.(?P<num>\d{4,5})(?:v(?P<version>\d+))?$")
_OLD_STYLE = re.compile(
    r"^(?P<archive>[a-z]+(?:-[a-z]+)*)(?:\.[A-Za-z]+(?:-[A-Za-z]+)*)?/(?P<num>\d{7})(?:v(?P<version>\d+))?$"
)
_PREFIXES = re.compile(
    # URLs as people paste them: with or without the scheme (a browser's address bar hides it).
    r"^(?:oai:arxiv\.org:|arxiv:|(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/)",
    re.IGNORECASE,
)


def abs_url(paper_id: str) -> str:
    """The paper's page on arxiv.org (its newest version)."""
    return f"https://arxiv.org/abs/{paper_id}"


def pdf_url(paper_id: str, version: int | None = None) -> str:
    """The paper's PDF on arxiv.org: of ``version`` when given, else of the newest version."""
    return f"https://arxiv.org/pdf/{paper_id}" + (f"v{version}" if version else "")


class InvalidArxivId(ValueError):
    """The text is not an arXiv identifier."""


def parse_arxiv_id(text: str) -> tuple[str, int | None]:
    """Return ``(canonical_id, version_or_None)`` for any accepted spelling of an arXiv id.

    >>> parse_arxiv_id("https://arxiv.org/abs/2401.14040v2")
    ('2401.14040', 2)
    >>> parse_arxiv_id("oai:arXiv.org:math.GT/0309136")
    ('math/0309136', None)
    """
    raw = (text or "").strip()
    m = _NEW_STYLE.match(raw)  # the canonical form needs no clean-up: skip it on the hot path
    if m is None:
        raw = _strip_decorations(raw)
        m = _NEW_STYLE.match(raw)
    if m:
        month = int(m["yymm"][2:])
        # Four-digit numbers were used until 1412, five-digit ones from 1501 on.
        if not 1 <= month <= 12 or (len(m["num"]) == 5) != (m["yymm"] >= "1501"):
            raise InvalidArxivId(f"not an arXiv id: {text!r}")
        return f"{m['yymm']}.{m['num']}", _version(m["version"])
    m = _OLD_STYLE.match(raw)
    if m:
        month = int(m["num"][2:4])
        if not 1 <= month <= 12:
            raise InvalidArxivId(f"not an arXiv id: {text!r}")
        return f"{m['archive']}/{m['num']}", _version(m["version"])
    raise InvalidArxivId(f"not an arXiv id: {text!r}")


def _strip_decorations(raw: str) -> str:
    """Remove what surrounds an id in URLs and OAI identifiers."""
    s = _PREFIXES.sub("", raw)
    s = s.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    if s.lower().endswith(".pdf"):
        s = s[:-4]
    return s


def _version(v: str | None) -> int | None:
    return int(v) if v is not None else None


def normalize_arxiv_id(text: str) -> str:
    """The canonical id (no version) or :class:`InvalidArxivId`."""
    return parse_arxiv_id(text)[0]


def is_arxiv_id(text: str) -> bool:
    try:
        parse_arxiv_id(text)
    except InvalidArxivId:
        return False
    return True


# -- ids as integers ---------------------------------------------------------------------------------
# A canonical id packed into 63 bits, reversibly, so an index can keep it in a numeric column: reading a
# number for each of a hundred search candidates costs a fraction of fetching their stored documents.
# New style: yymm * 100,000 + number + 1 (below 10^9). Old style: 2^62 + archive * 10^7 + number, the
# archive in base 28 (a-z, "-"), up to 8 letters: every archive arXiv ever had fits ("chao-dyn").
_NEW_LIMIT = 10**9
_OLD_BASE = 1 << 62
_ARCHIVE_LETTERS = "abcdefghijklmnopqrstuvwxyz-"
_LETTER_DIGIT = {c: i + 1 for i, c in enumerate(_ARCHIVE_LETTERS)}
_MAX_ARCHIVE = 8


def id_key(canonical: str) -> int | None:
    """The integer of a canonical id (as :func:`normalize_arxiv_id` gives it), or None when it has none
    (an old-style archive longer than 8 letters)."""
    yymm, dot, num = canonical.partition(".")
    if dot and "/" not in canonical:
        return int(yymm) * 100_000 + int(num) + 1
    archive, _, num = canonical.partition("/")
    if len(archive) > _MAX_ARCHIVE:
        return None
    code = 0
    for letter in reversed(archive):
        code = code * 28 + _LETTER_DIGIT[letter]
    return _OLD_BASE + code * 10**7 + int(num)


def id_from_key(key: int) -> str:
    """The canonical id of :func:`id_key`'s integer."""
    if key < _NEW_LIMIT:
        yymm, num = divmod(key - 1, 100_000)
        return f"{yymm:04d}.{num:05d}" if yymm >= 1501 else f"{yymm:04d}.{num:04d}"
    code, num = divmod(key - _OLD_BASE, 10**7)
    letters = []
    while code:
        code, digit = divmod(code, 28)
        letters.append(_ARCHIVE_LETTERS[digit - 1])
    return f"{''.join(letters)}/{num:07d}"
