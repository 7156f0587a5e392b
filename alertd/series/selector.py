"""PromQL instant-vector selector text in, Selector objects that match label sets out."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from alertd.regex import RegexError, check_length, compile_regex

MatchOp = Literal["=", "!=", "=~", "!~"]

# Two-character operators first, so "=~" is not read as "=" followed by a value starting with "~".
_OPS_LONGEST_FIRST: tuple[MatchOp, ...] = ("=~", "!~", "!=", "=")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_WHITESPACE = frozenset(" \t\r\n")
# A regex alternative without metacharacters, where ASCII punctuation may be escaped (tasks\.send).
_LITERAL = re.compile(r"(?:[^\\.^$*+?{}\[\]()|]|\\[ -/:-@\[-`{-~])*", re.DOTALL)
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_HEX = frozenset("0123456789abcdefABCDEF")
_OCTAL = frozenset("01234567")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
}
_QUOTE_ESCAPES = {v: "\\" + k for k, v in _SIMPLE_ESCAPES.items()} | {'"': '\\"'}


def _regex_test(label: str, pattern: str) -> tuple[Callable[[str], bool], frozenset[str] | None]:
    """Whether a value fully matches ``pattern`` (on RE2), and the values it matches if it is literals only."""
    try:
        check_length(pattern)
        literals = _literal_alternatives(pattern)
        if literals is not None:
            return literals.__contains__, literals
        return compile_regex(pattern).fullmatch, None
    except RegexError as exc:
        raise ValueError(f"invalid regex for label {label!r}: {exc}") from None


def _literal_alternatives(pattern: str) -> frozenset[str] | None:
    """The strings a regex like ``a|b\\.c`` matches when it is made of literals only: set lookups beat regexes."""
    parts = pattern.split("|")
    if all(_LITERAL.fullmatch(part) for part in parts):
        return frozenset(_ESCAPED.sub(r"\1", part) for part in parts)
    return None


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label condition; a missing label matches like the empty string, as in Prometheus."""

    label: str
    op: MatchOp
    value: str
    _test: Callable[[str], bool] = field(init=False, repr=False, compare=False)
    _empty: bool = field(init=False, repr=False, compare=False)
    # For the store: the values a literal regex like "a|b" matches, and whether testing a value runs a regex.
    _literals: frozenset[str] | None = field(init=False, repr=False, compare=False)
    _costly: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _LABEL_NAME.fullmatch(self.label):
            raise ValueError(f"invalid label name {self.label!r}")
        test: Callable[[str], bool]
        literals: frozenset[str] | None = None
        if self.op == "=":
            test = self.value.__eq__
        elif self.op == "!=":
            test = self.value.__ne__
        elif self.op in ("=~", "!~"):
            hit, literals = _regex_test(self.label, self.value)
            if self.op == "=~":
                test = hit
            else:

                def test(v: str) -> bool:
                    return not hit(v)

        else:
            raise ValueError(f"invalid match operator {self.op!r}: use '=', '!=', '=~' or '!~'")
        object.__setattr__(self, "_test", test)
        object.__setattr__(self, "_empty", test(""))
        object.__setattr__(self, "_literals", literals)
        object.__setattr__(self, "_costly", self.op in ("=~", "!~") and literals is None)

    def matches(self, value: str | None) -> bool:
        if value is None:
            return self._empty
        return self._test(value)

    @property
    def matches_empty(self) -> bool:
        """Whether a series without this label matches."""
        return self._empty

    def __str__(self) -> str:
        return f"{self.label}{self.op}{_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class Selector:
    """A metric name and label matchers, like ``celery_queue_length{queue=~"high|default"}``."""

    name: str
    matchers: tuple[Matcher, ...] = ()
    # Query plan for the store's index, worked out once per selector.
    _postings: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    _filters: tuple[Matcher, ...] = field(init=False, repr=False, compare=False)
    _regex: Matcher | None = field(init=False, repr=False, compare=False)
    _regex_filters: tuple[Matcher, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _METRIC_NAME.fullmatch(self.name):
            raise ValueError(f"invalid metric name {self.name!r}")
        matchers = tuple(self.matchers)
        object.__setattr__(self, "matchers", matchers)
        postings = tuple((m.label, m.value) for m in matchers if m.op == "=" and m.value)
        filters = tuple(m for m in matchers if not (m.op == "=" and m.value))
        # A regex that cannot match "" only matches series that carry one of the label's indexed values;
        # one made of literals ("a|b") finds them without running a regex.
        positive = sorted(
            (m for m in filters if m.op == "=~" and not m.matches_empty), key=lambda m: m._literals is None
        )
        regex = positive[0] if positive else None
        object.__setattr__(self, "_postings", postings)
        object.__setattr__(self, "_filters", filters)
        object.__setattr__(self, "_regex", regex)
        object.__setattr__(self, "_regex_filters", tuple(m for m in filters if m is not regex))

    def __str__(self) -> str:
        if not self.matchers:
            return self.name
        return self.name + "{" + ",".join(str(m) for m in self.matchers) + "}"

    def matches(self, labels: Mapping[str, str]) -> bool:
        get = labels.get
        return all(m.matches(get(m.label)) for m in self.matchers)

    def equality_labels(self) -> dict[str, str]:
        """The labels absent() reports: Prometheus' rule, including dropping a label matched twice."""
        out: dict[str, str] = {}
        seen: set[str] = set()
        for m in self.matchers:
            if m.op == "=" and m.label not in seen:
                seen.add(m.label)
                if m.value:
                    out[m.label] = m.value
            else:
                out.pop(m.label, None)
        return out


def _quote(value: str) -> str:
    if value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    out = ['"']
    for c in value:
        esc = _QUOTE_ESCAPES.get(c)
        if esc is not None:
            out.append(esc)
        elif c.isprintable():
            out.append(c)
        elif ord(c) < 0x80:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) <= 0xFFFF:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    out.append('"')
    return "".join(out)


class _Parser:
    __slots__ = ("n", "pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.pos = 0

    def fail(self, message: str, pos: int | None = None) -> ValueError:
        at = self.pos if pos is None else pos
        if at >= self.n:
            return ValueError(f"{message}: the text ends at position {at}")
        return ValueError(f"{message} at position {at}")

    def skip_ws(self) -> None:
        text, n, p = self.text, self.n, self.pos
        while p < n and text[p] in _WHITESPACE:
            p += 1
        self.pos = p

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < self.n else ""

    def name(self, pattern: re.Pattern[str]) -> str | None:
        m = pattern.match(self.text, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        return m.group()

    def op(self, label: str) -> MatchOp:
        for op in _OPS_LONGEST_FIRST:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        raise self.fail(f"expected '=', '!=', '=~' or '!~' after label {label!r}")

    def string(self, what: str) -> str:
        text, n, start = self.text, self.n, self.pos
        quote = self.peek()
        if quote not in ("'", '"', "`"):
            raise self.fail(f"expected a quoted value {what}")
        if quote == "`":
            end = text.find("`", start + 1)
            if end < 0:
                raise self.fail("unterminated string starting", start)
            self.pos = end + 1
            return text[start + 1 : end]
        out: list[str] = []
        p = start + 1
        while True:
            if p >= n or text[p] == "\n":
                raise self.fail("unterminated string starting", start)
            c = text[p]
            if c == quote:
                self.pos = p + 1
                return "".join(out)
            if c != "\\":
                out.append(c)
                p += 1
                continue
            if p + 1 >= n:
                raise self.fail("unterminated string starting", start)
            e = text[p + 1]
            if e in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[e])
                p += 2
            elif e == quote:
                out.append(e)
                p += 2
            elif e in ("x", "u", "U"):
                width = {"x": 2, "u": 4, "U": 8}[e]
                digits = text[p + 2 : p + 2 + width]
                if len(digits) != width or not all(d in _HEX for d in digits):
                    raise self.fail(f"invalid escape sequence '\\{e}{digits}': needs {width} hex digits", p)
                code = int(digits, 16)
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise self.fail(f"invalid escape sequence '\\{e}{digits}': not a character", p)
                out.append(chr(code))
                p += 2 + width
            elif e in _OCTAL:
                digits = text[p + 1 : p + 4]
                if len(digits) != 3 or not all(d in _OCTAL for d in digits) or int(digits, 8) > 255:
                    raise self.fail(
                        f"invalid escape sequence '\\{digits}': needs 3 octal digits up to 377", p
                    )
                out.append(chr(int(digits, 8)))
                p += 4
            else:
                # Unlike PromQL, an escape Go does not know is kept as written, so that a regex reads
                # naturally in a rule file: "tasks\.payment\..*", "\d+".
                out.append("\\" + e)
                p += 2

    def matchers(self) -> list[tuple[int, Matcher]]:
        opened = self.pos
        self.pos += 1
        found: list[tuple[int, Matcher]] = []
        while True:
            self.skip_ws()
            c = self.peek()
            if c == "}":
                self.pos += 1
                return found
            if not c:
                raise self.fail(f"missing '}}' to close the '{{' opened at position {opened}")
            start = self.pos
            label = self.name(_LABEL_NAME)
            if label is None:
                raise self.fail(f"expected a label name, got {c!r}")
            self.skip_ws()
            op = self.op(label)
            self.skip_ws()
            value = self.string(f"after {label}{op}")
            found.append((start, Matcher(label, op, value)))
            self.skip_ws()
            c = self.peek()
            if c == ",":
                self.pos += 1
            elif c == "}":
                self.pos += 1
                return found
            elif not c:
                raise self.fail(f"missing '}}' to close the '{{' opened at position {opened}")
            else:
                raise self.fail(f"expected ',' or '}}' after the value of label {label!r}, got {c!r}")


def parse_selector(text: str) -> Selector:
    """Parse ``name``, ``name{a="b", c=~"x.*"}`` or ``{__name__="name", ...}``.

    Raises ValueError naming the problem and its character position (counted from 0).
    """
    p = _Parser(text)
    p.skip_ws()
    if not p.peek():
        raise ValueError("empty selector: expected a metric name such as celery_queue_length")
    name = p.name(_METRIC_NAME)
    p.skip_ws()
    found: list[tuple[int, Matcher]] = []
    if p.peek() == "{":
        found = p.matchers()
        p.skip_ws()
    elif name is None:
        raise p.fail(f"expected a metric name or '{{', got {p.peek()!r}")
    if p.peek():
        raise p.fail(f"unexpected {p.peek()!r} after the selector")
    matchers: list[Matcher] = []
    for pos, m in found:
        if m.label != "__name__":
            matchers.append(m)
            continue
        if name is not None:
            raise p.fail("the metric name is given twice", pos)
        if m.op != "=":
            raise p.fail(f"the __name__ matcher must use '=', not '{m.op}'", pos)
        if not _METRIC_NAME.fullmatch(m.value):
            raise p.fail(f"invalid metric name {m.value!r}", pos)
        name = m.value
    if name is None:
        raise ValueError('a selector needs a metric name: write name{...} or {__name__="name", ...}')
    return Selector(name, tuple(matchers))
