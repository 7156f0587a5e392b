"""User regexes on RE2: Prometheus' anchored semantics, linear time, and clear refusals."""

from __future__ import annotations

import re
import time

import pytest
import re2

from alertd import regex as regex_module
from alertd.regex import MAX_PATTERN_LENGTH, RegexError, compile_regex


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("a", "ab", False),
        ("a", "ba", False),
        ("a", "a", True),
        ("a|b", "b", True),
        ("a|b", "ab", False),
        ("a.b", "a\nb", True),
        (".*", "line one\nline two", True),
        ("(?i)crit.*", "CRITICAL", True),
        ("w[0-9]+", "w12", True),
        ("", "", True),
        ("", "x", False),
        ("é+", "ééé", True),
    ],
    ids=["no-prefix-match", "no-suffix-match", "exact", "alternation", "alternation-anchored",
         "dot-matches-newline", "dotstar-across-lines", "case-flag", "class", "empty-empty", "empty-nonempty",
         "non-ascii"],
)
def test_prometheus_semantics(pattern: str, value: str, expected: bool) -> None:
    assert compile_regex(pattern).fullmatch(value) is expected


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)\1", r"invalid escape sequence: \1"),
        ("(?=a)a", "invalid perl operator: (?="),
        ("(?!a)b", "invalid perl operator: (?!"),
        ("(?<=a)b", "invalid perl operator: (?<"),
        (r"a\Z", r"invalid escape sequence: \Z"),
    ],
    ids=["backreference", "lookahead", "negative-lookahead", "lookbehind", "python-end-anchor"],
)
def test_what_re2_cannot_take_is_refused_not_run_elsewhere(pattern: str, reason: str) -> None:
    with pytest.raises(RegexError) as info:
        compile_regex(pattern)
    message = str(info.value)
    assert message.startswith(reason), message
    assert "no backreferences, lookarounds" in message
    assert "\n" not in message and "b'" not in message
    assert info.value.pattern == pattern


def test_syntax_errors_and_patterns_too_large() -> None:
    with pytest.raises(RegexError, match=r"^missing \): \(a$"):
        compile_regex("(a")
    with pytest.raises(RegexError, match="pattern too large"):
        compile_regex(r"\pL{1000}")


def test_the_length_cap() -> None:
    assert compile_regex("a" * MAX_PATTERN_LENGTH).fullmatch("a" * MAX_PATTERN_LENGTH)
    with pytest.raises(RegexError, match="regex of 1,001 characters: at most 1,000 are allowed"):
        compile_regex("a" * (MAX_PATTERN_LENGTH + 1))


def test_the_hostile_pattern_runs_in_linear_time() -> None:
    # Python's re needs 6.8 s for this pattern on 15 characters, and 3.5 times as long for each one more.
    hostile = compile_regex("(.*.*)*!")
    started = time.perf_counter()
    assert hostile.fullmatch("a" * 15) is False
    assert hostile.fullmatch("a" * 100_000) is False
    assert hostile.fullmatch("a" * 100_000 + "!") is True
    assert hostile.fullmatch("a!\n" * 10_000 + "!") is True  # "." takes the newlines
    assert time.perf_counter() - started < 1.0


def test_compiled_patterns_are_cached_and_results_bounded() -> None:
    first = compile_regex("tasks\\.(send|fetch)_.*")
    assert compile_regex("tasks\\.(send|fetch)_.*") is first
    values = [f"tasks.send_{i}" for i in range(3 * regex_module._MEMO_SIZE)] + ["tasks.other"]
    assert [first.fullmatch(v) for v in values] == [True] * (len(values) - 1) + [False]
    assert len(first._seen) <= regex_module._MEMO_SIZE
    assert first.fullmatch("tasks.fetch_1") is True and first.fullmatch("tasks.fetch") is False


def test_a_lone_surrogate_in_a_value_is_matched_not_raised() -> None:
    # json.loads gives one for "\udc80": label values from the API may hold it.
    assert compile_regex("x.*").fullmatch("x\udc80") is True
    assert compile_regex("y.*").fullmatch("x\udc80") is False
    with pytest.raises(RegexError):
        compile_regex("\udc80")


def test_a_binding_that_falls_back_to_pythons_re_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # What some re2 bindings do with a backreference: hand the pattern to Python's re.
    monkeypatch.setattr(re2, "compile", lambda pattern, options=None: re.compile(pattern))
    with pytest.raises(ImportError, match="accepted a backreference \\(Python's re\\): install google-re2"):
        regex_module._refuse_fallback()
