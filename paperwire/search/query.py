"""The search query language: plain words, "quoted phrases", arXiv's field prefixes (``ti:``, ``au:``,
``abs:``, ``cat:``, ``all:``), ``AND`` / ``OR`` / ``ANDNOT`` and parentheses, plus arXiv's
``submittedDate:[YYYYMMDDHHMM TO YYYYMMDDHHMM]`` and its wildcards (``au:kho*``, ``transform*``,
``colo?r``).

Parsing never fails for the user: text that is not valid syntax (an unclosed quote or parenthesis, a
dangling operator) is searched as plain words instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

MAX_QUERY_LENGTH = 500
FIELDS = {"ti": "title", "au": "authors", "abs": "abstract", "cat": "category", "all": "all"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<field>(?i:ti|au|abs|cat|all):)
  | (?P<date>(?i:submittedDate):\[\s*(?P<d1>\d{8,14})\s+TO\s+(?P<d2>\d{8,14})\s*\])
  | (?P<phrase>"[^"]*")
  | (?P<quote>")
    # A word may hold parentheses with no space in them, as physics writes groups and theories:
    # "SU(3)", "f(R)", "SU(2)xU(1)". A parenthesis after a space or an operator still groups.
  | (?P<word>[^\s()"]+(?:\([^\s()"]+\)[^\s()"]*)*)
    """,
    re.VERBOSE,
)
OPERATORS = {"AND", "OR", "ANDNOT"}
# arXiv's wildcards: "*" any letters, "?" one letter, after at least MIN_WILDCARD_HEAD letters ("*ing" and
# "a*" would ask for a union of tens of thousands of words). A "?" ends a question more often than it
# stands for a letter ("what is attention?"), so it counts only inside a word.
MIN_WILDCARD_HEAD = 2
_WILDCARD = re.compile(rf"^[^\W_]{{{MIN_WILDCARD_HEAD},}}(?:[^\W_]|\*|\?(?=[^\W_]|\?|\*))*$")


def is_wildcard(text: str) -> bool:
    """Whether a query word is a wildcard pattern (see MIN_WILDCARD_HEAD): letters and digits with a
    "*" or an inner "?", beginning with at least two letters or digits."""
    return ("*" in text or "?" in text) and _WILDCARD.match(text) is not None


class QueryError(ValueError):
    """The query cannot be searched at all (too long, control characters)."""


@dataclass(frozen=True)
class Word:
    text: str
    field: str = "all"  # title | abstract | authors | category | all
    prefix: bool = False  # the last word of a plain query: search as you type


@dataclass(frozen=True)
class Phrase:
    words: tuple[str, ...]
    field: str = "all"


@dataclass(frozen=True)
class DateRange:
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class AndNot:
    keep: Node
    drop: Node


Node = Word | Phrase | DateRange | And | Or | AndNot


@dataclass
class ParsedQuery:
    """``root`` is None for an empty query. ``plain`` means only words and phrases with no operator or
    field, which the engine may relax (match most rather than all words) when few papers match all."""

    root: Node | None
    plain: bool
    fallback: bool = False  # the text was not valid syntax and was read as plain words
    words: list[str] = field(default_factory=list)  # every searched word, for highlighting


def check_query(text: str) -> str:
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"the query is too long ({len(text)} characters; at most {MAX_QUERY_LENGTH})")
    if _CONTROL.search(text):
        raise QueryError("the query contains control characters")
    return text


def parse_query(text: str, *, as_you_type: bool = True) -> ParsedQuery:
    """``as_you_type``: the last word of a plain query is also a prefix (search as you type); callers that
    send finished queries (APIs, saved searches) turn it off, which also saves a third of the search."""
    check_query(text)
    text = text.strip()
    if not text:
        return ParsedQuery(None, plain=True)
    try:
        tokens = list(_tokens(text))
        parser = _Parser(tokens)
        root = parser.parse()
        # A wildcard is syntax too: whoever writes one asks for exactly that, not for the most of the
        # words nor for the last one being typed.
        plain = not any(
            kind in ("field", "op", "date", "lparen") or (kind == "word" and is_wildcard(str(value)))
            for kind, value in tokens
        )
    except _SyntaxError:
        words = [w for w in re.findall(r"[^\s()\"]+", text) if w not in OPERATORS]
        root = _plain_and([Word(w) for w in _split_fields(words)])
        return _finish(root, plain=True, fallback=True, as_you_type=as_you_type)
    return _finish(root, plain=plain, as_you_type=as_you_type)


class _SyntaxError(Exception):
    pass


def _tokens(text: str):
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m is not None  # the word alternative matches any other character
        pos = m.end()
        kind = m.lastgroup
        if kind == "space":
            continue
        if kind == "quote":
            raise _SyntaxError("unclosed quote")
        if kind == "date":
            yield "date", (m["d1"], m["d2"])
        elif kind == "word" and m["word"] in OPERATORS:
            yield "op", m["word"]
        elif kind == "field":
            yield "field", FIELDS[m["field"][:-1].lower()]
        elif kind == "phrase":
            yield "phrase", m["phrase"][1:-1]
        else:
            yield kind, m.group(kind)


class _Parser:
    """or := and ('OR' and)* ; and := unary (['AND'|'ANDNOT'] unary)* ; unary := '(' or ')' | [field] atom"""

    def __init__(self, tokens: list[tuple[str, object]]):
        self.tokens = tokens
        self.i = 0

    def peek(self) -> tuple[str, object] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, object]:
        token = self.peek()
        if token is None:
            raise _SyntaxError("unexpected end")
        self.i += 1
        return token

    def parse(self) -> Node | None:
        node = self.parse_or()
        if self.peek() is not None:
            raise _SyntaxError("unexpected token")
        return node

    def parse_or(self) -> Node:
        parts = [self.parse_and()]
        while self.peek() == ("op", "OR"):
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def parse_and(self) -> Node:
        node = self.parse_unary()
        musts = [node]
        while True:
            token = self.peek()
            if token is None or token[0] == "rparen" or token == ("op", "OR"):
                break
            if token == ("op", "ANDNOT"):
                self.take()
                drop = self.parse_unary()
                keep = musts[0] if len(musts) == 1 else And(tuple(musts))
                musts = [AndNot(keep, drop)]
                continue
            if token == ("op", "AND"):
                self.take()
            musts.append(self.parse_unary())
        return musts[0] if len(musts) == 1 else And(tuple(musts))

    def parse_unary(self, field_name: str = "all") -> Node:
        kind, value = self.take()
        if kind == "lparen":
            node = self.parse_or()
            if self.take()[0] != "rparen":
                raise _SyntaxError("unclosed parenthesis")
            return _with_field(node, field_name) if field_name != "all" else node
        if kind == "field":
            if field_name != "all":
                raise _SyntaxError("two field prefixes")
            return self.parse_unary(str(value))
        if kind == "phrase":
            words = tuple(str(value).split())
            if not words:
                raise _SyntaxError("empty phrase")
            if field_name == "category" or len(words) == 1:
                return Word(words[0], field_name) if len(words) == 1 else Phrase(words, field_name)
            return Phrase(words, field_name)
        if kind == "word":
            return Word(str(value), field_name)
        if kind == "date" and field_name == "all":
            d1, d2 = value  # type: ignore[misc]
            return DateRange(_arxiv_time(d1), _arxiv_time(d2))
        raise _SyntaxError(f"unexpected {kind}")


def _with_field(node: Node, field_name: str) -> Node:
    if isinstance(node, Word):
        return Word(node.text, field_name, node.prefix)
    if isinstance(node, Phrase):
        return Phrase(node.words, field_name)
    if isinstance(node, And):
        return And(tuple(_with_field(p, field_name) for p in node.parts))
    if isinstance(node, Or):
        return Or(tuple(_with_field(p, field_name) for p in node.parts))
    if isinstance(node, AndNot):
        return AndNot(_with_field(node.keep, field_name), _with_field(node.drop, field_name))
    return node


def _arxiv_time(text: str) -> datetime:
    """arXiv writes YYYYMMDDHHMM (GMT); accept 8 to 14 digits."""
    digits = text.ljust(14, "0")
    try:
        return datetime(
            int(digits[:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10]),
            int(digits[10:12]),
            int(digits[12:14]),
            tzinfo=UTC,
        )
    except ValueError:
        raise _SyntaxError(f"bad date {text}") from None


def _split_fields(words: list[str]) -> list[str]:
    """Fallback: drop field prefixes glued to words (``ti:foo`` → ``foo``)."""
    out = []
    for w in words:
        head, sep, tail = w.partition(":")
        out.append(tail if sep and head.lower() in FIELDS and tail else w)
    return [w for w in out if w]


def _plain_and(nodes: list[Node]) -> Node | None:
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


def _finish(
    root: Node | None, *, plain: bool, fallback: bool = False, as_you_type: bool = True
) -> ParsedQuery:
    words: list[str] = []
    _collect_words(root, words)
    if plain and as_you_type and root is not None:
        root = _mark_last_word_prefix(root)
    return ParsedQuery(root, plain=plain, fallback=fallback, words=words)


def _collect_words(node: Node | None, out: list[str]) -> None:
    if isinstance(node, Word) and node.field != "category":
        out.append(node.text)
    elif isinstance(node, Phrase):
        out.extend(node.words)
    elif isinstance(node, And | Or):
        for p in node.parts:
            _collect_words(p, out)
    elif isinstance(node, AndNot):
        _collect_words(node.keep, out)


def _mark_last_word_prefix(root: Node) -> Node:
    """In a plain query the last word, unless quoted, is also a prefix (search as you type)."""
    if isinstance(root, Word):
        return Word(root.text, root.field, prefix=True)
    if isinstance(root, And) and isinstance(root.parts[-1], Word):
        last = root.parts[-1]
        return And((*root.parts[:-1], Word(last.text, last.field, prefix=True)))
    return root
