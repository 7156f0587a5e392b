"""Matcher text as written in routes, inhibit rules and silences ('queue=~"crit.*"') in, compiled matchers out.

The semantics are the series selector's (``alertd.series.selector.Matcher``): one place for what ``=``,
``!=``, ``=~`` and ``!~`` mean, anchored regexes, and a missing label matching like the empty string.
Regexes compile through ``alertd.regex``, on RE2: matching a hostile pattern from an API filter or a silence
takes time linear in the label value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from alertd.series.selector import Matcher, parse_selector

__all__ = ["Matcher", "Matchers", "MatchersField", "parse_matcher", "parse_matchers"]

# The selector parser wants a metric name before the braces; this one is never shown.
_PREFIX = "m{"
_POSITION = re.compile(r"at position (\d+)")
# Alertmanager accepts an unquoted value (severity=critical); so does alertd, for the same files.
_UNQUOTED = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*([^\"'`\s][^\"'`]*?)\s*$")


def _shift(message: str, by: int) -> str:
    return _POSITION.sub(lambda m: f"at position {max(0, int(m.group(1)) - by)}", message)


def parse_matcher(text: str) -> tuple[Matcher, ...]:
    """``'severity="critical"'`` or ``'{team="x", queue=~"a|b"}'`` -> matchers; ValueError names the problem."""
    if not isinstance(text, str):
        raise ValueError(f"a matcher is a string like 'severity=\"critical\"', got {type(text).__name__}")
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
        offset = len(_PREFIX) - 1 - (len(text) - len(text.lstrip()))
    else:
        offset = len(_PREFIX) - (len(text) - len(text.lstrip()))
    if not body.strip():
        raise ValueError(f'empty matcher {text!r}: write label="value", label!="value", label=~"regex" or label!~"regex"')
    unquoted = _UNQUOTED.match(body)
    if unquoted:
        label, op, value = unquoted.groups()
        body = f"{label}{op}{_quote(value)}"
    try:
        selector = parse_selector(_PREFIX + body + "}")
    except ValueError as exc:
        raise ValueError(f"{_shift(str(exc), offset)} in {text!r}") from None
    return selector.matchers


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_matchers(texts: Iterable[str]) -> tuple[Matcher, ...]:
    """Every matcher of a list of matcher strings, in order."""
    if isinstance(texts, str):
        texts = [texts]
    out: list[Matcher] = []
    for text in texts:
        out.extend(parse_matcher(text))
    return tuple(out)


class Matchers:
    """Matchers that all have to match: compiled once, tested against a label set many times."""

    __slots__ = ("_pairs", "matchers")

    def __init__(self, matchers: Sequence[Matcher] = ()) -> None:
        self.matchers = tuple(matchers)
        # Equality matchers first: they are the cheapest and the most selective.
        ordered = sorted(self.matchers, key=lambda m: (m.op != "=", m.op != "!="))
        self._pairs = tuple((m.label, m.matches) for m in ordered)

    @classmethod
    def parse(cls, texts: Iterable[str]) -> Matchers:
        return cls(parse_matchers(texts))

    def matches(self, labels: Mapping[str, str]) -> bool:
        get = labels.get
        # A plain loop: all() over a generator costs twice as much on this hot path.
        for label, test in self._pairs:  # noqa: SIM110
            if not test(get(label)):
                return False
        return True

    def __bool__(self) -> bool:
        return bool(self.matchers)

    def __len__(self) -> int:
        return len(self.matchers)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Matchers) and self.matchers == other.matchers

    def __hash__(self) -> int:
        return hash(self.matchers)

    def __str__(self) -> str:
        return "{" + ", ".join(str(m) for m in self.matchers) + "}"

    def __repr__(self) -> str:
        return f"Matchers({self})"

    def texts(self) -> list[str]:
        return [str(m) for m in self.matchers]

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        # In a settings model: a list of matcher strings in, Matchers held, the strings back out.
        return core_schema.no_info_plain_validator_function(
            _validate, serialization=core_schema.plain_serializer_function_ser_schema(cls.texts)
        )


def _validate(value: Any) -> Matchers:
    if isinstance(value, Matchers):
        return value
    if value is None:
        return Matchers()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ValueError('matchers are a list of strings like ["severity=\\"critical\\""]')
    return Matchers.parse(value)


MatchersField = Matchers
"""A pydantic field type: a list of matcher strings in, compiled ``Matchers`` held, the strings back out."""
