"""User-supplied regexes (label matchers, selectors) compiled on RE2: matching is linear in the text.

Python's ``re`` backtracks: ``(.*.*)*!`` against a 15-character label value takes seconds, and a silence
or an API filter holding it stalls every pass over the alerts. RE2 has no backtracking, so it also has no
backreferences and no lookarounds; a pattern that uses them is refused with a ``RegexError`` rather than
run on another engine. The semantics are Prometheus' ``^(?s:pattern)$``: the whole value must match and
``.`` matches a newline too.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import re2

__all__ = ["MAX_PATTERN_LENGTH", "Regex", "RegexError", "check_length", "compile_regex"]

MAX_PATTERN_LENGTH = 1000
"""Characters in one pattern; a longer one is refused before it is compiled."""

# Memory RE2 may use for one compiled pattern (its program and its lazily built DFA); a pattern that
# needs more is "too large". With the cache below this bounds what user patterns can hold.
_MAX_MEM = 4 << 20
_CACHE_SIZE = 256
# Results kept per pattern: label values repeat from pass to pass, and a dict lookup is ten times
# cheaper than a call into RE2. Cleared when full, so a stream of distinct values cannot grow it.
_MEMO_SIZE = 1024


class RegexError(ValueError):
    """A pattern RE2 does not take, or one too long; ``str()`` says why in one line."""

    def __init__(self, message: str, pattern: str) -> None:
        super().__init__(message)
        self.pattern = pattern


class Regex:
    """A compiled pattern: ``fullmatch(value)`` says whether the whole value matches."""

    __slots__ = ("_fullmatch", "_seen", "pattern")

    def __init__(self, pattern: str, compiled: Any) -> None:
        self.pattern = pattern
        self._fullmatch = compiled.fullmatch
        self._seen: dict[str, bool] = {}

    def fullmatch(self, value: str) -> bool:
        hit = self._seen.get(value)
        if hit is None:
            # Bytes in: the binding then skips mapping offsets back to characters. surrogatepass keeps a
            # lone surrogate (json.loads gives one for "\udc80") from raising.
            hit = self._fullmatch(value.encode("utf-8", "surrogatepass")) is not None
            seen = self._seen
            if len(seen) >= _MEMO_SIZE:
                seen.clear()
            seen[value] = hit
        return hit

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"


def _options() -> re2.Options:
    options = re2.Options()
    options.dot_nl = True  # (?s): "." matches "\n", as in Prometheus
    options.max_mem = _MAX_MEM
    # Only whether the whole value matches is asked: without groups to report, RE2 answers from its DFA
    # instead of a submatch engine, two to three times faster on a pattern like (.*.*)*!.
    options.never_capture = True
    options.log_errors = False  # errors come back as RegexError, not as lines on stderr
    return options


_OPTIONS = _options()


def _reason(exc: BaseException) -> str:
    detail = exc.args[0] if exc.args else exc
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    text = str(detail)
    if text.startswith(("invalid perl operator", "invalid escape sequence")):
        text += " (RE2 syntax: no backreferences, lookarounds or \\Z)"
    elif "too large" in text:
        text += " (RE2 refuses a pattern that would need more than its memory budget: simplify it)"
    return text


def check_length(pattern: str) -> None:
    """RegexError when ``pattern`` is longer than MAX_PATTERN_LENGTH, even one that needs no compiling."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise RegexError(
            f"regex of {len(pattern):,} characters: at most {MAX_PATTERN_LENGTH:,} are allowed", pattern
        )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def compile_regex(pattern: str) -> Regex:
    """``pattern`` compiled with Prometheus' anchored semantics; RegexError when RE2 refuses it."""
    check_length(pattern)
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except Exception as exc:  # re2.error; UnicodeEncodeError for a lone surrogate in the pattern
        raise RegexError(_reason(exc), pattern) from None
    return Regex(pattern, compiled)


def _refuse_fallback() -> None:
    # Some re2 bindings quietly hand a pattern RE2 cannot take to Python's re, which brings the
    # backtracking back. This one must refuse a backreference; if it does not, alertd does not start.
    try:
        compiled = re2.compile(r"(a)\1", _OPTIONS)
    except re2.error:
        return
    engine = "Python's re" if isinstance(compiled, re.Pattern) else type(compiled).__name__
    raise ImportError(f"the installed re2 module accepted a backreference ({engine}): install google-re2")


_refuse_fallback()
