"""LaTeX in titles and abstracts, shown readably: ``$\\alpha \\leq 10^{-3}$`` → ``α ≤ 10⁻³``.

Only for display (pages, feeds, Markdown): the store and the index keep the text as the source gave it,
so a search for the LaTeX source still finds the paper. The result is plain text, escaped by whoever
renders it; anything not understood is shown without its markup rather than failing.

A small hand-written converter, not pylatexenc's full parser: a page of search results converts ten
abstracts, and the full parser took ~3 ms per abstract with LaTeX (most of a search's time at 1M papers).
pylatexenc's table of ~840 symbol macros is still used, read once at import."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from pylatexenc.latex2text import get_default_latex_context_db


def _symbol_table() -> dict[str, str]:
    table: dict[str, str] = {}
    db = get_default_latex_context_db()
    for category in db.categories():
        for spec in db.iter_macro_specs([category]):
            repl = spec.simplify_repl
            if isinstance(repl, str) and "%" not in repl:
                table[spec.macroname] = repl
    for name in ("today", "title", "author", "date", "maketitle"):
        table.pop(name, None)
    table.update(
        {
            "%": "%",
            "&": "&",
            "#": "#",
            "$": "$",
            "_": "_",
            "{": "{",
            "}": "}",
            ",": " ",
            ";": " ",
            ":": " ",
            "!": "",
            " ": " ",
            "\\": " ",
            "-": "",
            "/": "",
            "LaTeX": "LaTeX",
            "TeX": "TeX",
            "cite": "[…]",
            "ref": "[…]",
            "eqref": "[…]",
            "label": "",
            "quad": " ",
            "qquad": " ",
            # Not in pylatexenc's table, and common in abstracts: f\colon X\to Y, \|x\|.
            "colon": ": ",
            "|": "‖",
            "Vert": "‖",
            "vert": "|",
            "lVert": "‖",
            "rVert": "‖",
            "lvert": "|",
            "rvert": "|",
        }
    )
    return table


SYMBOLS = _symbol_table()
# Accent macros: the combining character they put on their argument's first letter.
ACCENTS = {
    '"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", "=": "\u0304", ".": "\u0307",
    "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328", "r": "\u030a", "d": "\u0323",
    "b": "\u0331", "hat": "\u0302", "widehat": "\u0302", "tilde": "\u0303", "widetilde": "\u0303",
    "bar": "\u0304", "overline": "\u0305", "vec": "\u20d7", "dot": "\u0307", "ddot": "\u0308",
    "acute": "\u0301", "grave": "\u0300", "check": "\u030c", "breve": "\u0306",
}  # fmt: skip
# Macros whose argument is shown as it is.
WRAPPERS = {
    "textbf", "textit", "emph", "textrm", "textsf", "texttt", "text", "mbox", "hbox", "mathrm", "mathit",
    "mathsf", "mathbf", "mathtt", "operatorname", "boldsymbol", "bm", "ensuremath", "underline",
    "textsc", "textup", "textnormal", "textsl", "mathnormal", "url", "small", "big", "Big", "left", "right",
}  # fmt: skip
FONTS = {"mathcal": "SCRIPT", "mathscr": "SCRIPT", "mathbb": "DOUBLE-STRUCK", "mathfrak": "FRAKTUR"}
SUPERSCRIPT = str.maketrans(
    "0123456789+-=()nikTabcdehjlmoprstuvwxyz", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱᵏᵀᵃᵇᶜᵈᵉʰʲˡᵐᵒᵖʳˢᵗᵘᵛʷˣʸᶻ"
)
SUBSCRIPT = str.maketrans("0123456789+-=()aeoxijkmnpstuvrhl", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₒₓᵢⱼₖₘₙₚₛₜᵤᵥᵣₕₗ")

_TOKEN = re.compile(r"\\([A-Za-z]+)\*?|\\(.)|(\$\$|[{}$^_~])|([^\\{}$^_~]+)", re.DOTALL)
# A bare % starts a LaTeX comment and a bare & separates table cells, but in metadata they are almost
# always a percent sign ("a 50% gain") and an ampersand ("Q&A"): both stay as they are (text tokens).


@lru_cache(maxsize=4096)
def _styled(style: str, char: str) -> str:
    if not char.isascii() or not char.isalpha():
        return char
    case = "CAPITAL" if char.isupper() else "SMALL"
    for name in (f"MATHEMATICAL {style} {case} {char.upper()}", f"{style} {case} {char.upper()}"):
        try:
            return unicodedata.lookup(name)
        except KeyError:
            continue
    return char


class _Reader:
    def __init__(self, text: str):
        self.tokens = _TOKEN.findall(text)
        self.pos = 0
        self.math = False

    def render(self, stop_at_close: bool = False) -> str:
        out: list[str] = []
        while self.pos < len(self.tokens):
            word, symbol, special, plain = self.tokens[self.pos]
            self.pos += 1
            if plain:
                out.append(plain)
            elif word or symbol:
                out.append(self._macro(word or symbol))
            elif special == "{":
                out.append(self.render(stop_at_close=True))
            elif special == "}":
                if stop_at_close:
                    break
            elif special in ("$", "$$"):
                self.math = not self.math
            elif special in "^_" and self.math:
                out.append(self._script(special))
            elif special == "~":
                out.append("\u00a0")
            else:
                out.append(special)  # ^ or _ in text: literal (snake_case, x^y in prose)
        return "".join(out)

    def _argument(self) -> str:
        """The next argument: a {group} or a single token (``\\frac12``, ``x^2``)."""
        while self.pos < len(self.tokens) and self.tokens[self.pos][3].isspace():
            self.pos += 1
        if self.pos >= len(self.tokens):
            return ""
        word, symbol, special, plain = self.tokens[self.pos]
        plain = plain.lstrip()
        if special == "{":
            self.pos += 1
            return self.render(stop_at_close=True)
        if plain:  # one character of it; the rest stays for the caller
            self.tokens[self.pos] = ("", "", "", plain[1:])
            if not plain[1:]:
                self.pos += 1
            return plain[0]
        if word or symbol:
            self.pos += 1
            return self._macro(word or symbol)
        return ""

    def _optional(self) -> str:
        """Consume an optional ``[argument]`` (plain text only) and return it."""
        if self.pos < len(self.tokens) and self.tokens[self.pos][3].startswith("["):
            plain = self.tokens[self.pos][3]
            end = plain.find("]")
            if end >= 0:
                rest = plain[end + 1 :]
                self.tokens[self.pos] = ("", "", "", rest)
                if not rest:
                    self.pos += 1
                return plain[1:end].strip()
        return ""

    def _script(self, mark: str) -> str:
        body = self._argument().strip()
        table = SUPERSCRIPT if mark == "^" else SUBSCRIPT
        converted = body.translate(table)
        if body and all(c != o or c.isspace() for c, o in zip(converted, body, strict=True)):
            return converted
        return f"{mark}{body}" if len(body) <= 1 else f"{mark}({body})"

    def _macro(self, name: str) -> str:
        if name in ("cite", "citep", "citet", "ref", "eqref", "label"):
            self._optional()
            self._argument()
            return "" if name == "label" else "[…]"
        if name in ACCENTS and (len(name) == 1 or self.math or name in ("overline",)):
            arg = self._argument()
            return unicodedata.normalize("NFC", arg[:1] + ACCENTS[name] + arg[1:]) if arg else ""
        if name in SYMBOLS:
            return SYMBOLS[name]
        if name in ACCENTS:
            arg = self._argument()
            return unicodedata.normalize("NFC", arg[:1] + ACCENTS[name] + arg[1:]) if arg else ""
        if name in WRAPPERS:
            return self._argument() if name not in ("left", "right", "big", "Big", "small") else ""
        if name in FONTS:
            return "".join(_styled(FONTS[name], c) for c in self._argument())
        if name in ("frac", "dfrac", "tfrac"):
            top, bottom = self._argument(), self._argument()
            return f"{_group(top)}/{_group(bottom)}"
        if name == "sqrt":
            root = {"3": "∛", "4": "∜"}.get(self._optional(), "√")
            body = self._argument()
            return f"{root}{body}" if len(body) == 1 else f"{root}({body})"
        if name == "href":
            self._argument()
            return self._argument()
        return ""  # unknown: drop the macro; a {group} after it is still shown


def _group(text: str) -> str:
    return text if len(text) <= 1 or text.isalnum() else f"({text})"


_SPACES = re.compile(r"[ \t\u00a0]{2,}")


@lru_cache(maxsize=20_000)
def readable(text: str) -> str:
    """``text`` with LaTeX markup turned into Unicode; unchanged when it holds no LaTeX."""
    if not text or ("\\" not in text and "$" not in text):
        return text
    try:
        converted = _Reader(text).render()
    except RecursionError:  # thousands of nested braces: show the source
        return text
    return _SPACES.sub(" ", converted).strip()
