"""LaTeX in titles and abstracts, shown readably: ``$\\alpha \\leq 10^{-3}$`` → ``α ≤ 10⁻³``.

Only for display (pages, feeds, Markdown): the store and the index keep the text as the source gave it,
so a search for the LaTeX source still finds the paper. Anything the converter cannot handle is shown as
it was; the result is plain text, escaped by whoever renders it."""

from __future__ import annotations

import re
from functools import lru_cache

from pylatexenc.latex2text import LatexNodes2Text

_converter = LatexNodes2Text(math_mode="text", strict_latex_spaces=False)

# A bare % starts a LaTeX comment and a bare & separates table cells, but in metadata they are almost
# always a percent sign ("a 50% gain") and an ampersand ("Q&A").
_BARE_SPECIAL = re.compile(r"(?<!\\)([%&])")
_SUPERSCRIPT = str.maketrans("0123456789+-=()nikT", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱᵏᵀ")
_SUBSCRIPT = str.maketrans("0123456789+-=()aeoxijkmnpst", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₒₓᵢⱼₖₘₙₚₛₜ")
_SCRIPT = re.compile(r"([\^_])(?:\{([^{}]{1,12})\}|([0-9a-zA-Z+\-]))")
_INLINE_MATH = re.compile(r"\$([^$]{1,500})\$")
_SPACES = re.compile(r"[ \t]{2,}")


def _script(match: re.Match) -> str:
    mark, body = match[1], match[2] if match[2] is not None else match[3]
    table = _SUPERSCRIPT if mark == "^" else _SUBSCRIPT
    converted = body.translate(table)
    if any(c == o for c, o in zip(converted, body, strict=True)):
        return match[0]  # not every character has a Unicode form: leave it to the converter
    return converted


def _math(match: re.Match) -> str:
    return "$" + _SCRIPT.sub(_script, match[1]) + "$"


@lru_cache(maxsize=20_000)
def readable(text: str) -> str:
    """``text`` with LaTeX markup turned into Unicode; unchanged when it holds no LaTeX."""
    if not text or ("\\" not in text and "$" not in text):
        return text
    # Scripts first, inside math only, while their braces still delimit them ("snake_case" is not math).
    prepared = _INLINE_MATH.sub(_math, _BARE_SPECIAL.sub(r"\\\1", text))
    try:
        converted = _converter.latex_to_text(prepared)
    except Exception:  # the converter is lenient, but malformed input must never break a page
        return text
    return _SPACES.sub(" ", converted).strip()
