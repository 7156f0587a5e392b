"""Matcher strings as routes, inhibit rules and silences write them: parsing and semantics."""

from __future__ import annotations

import time

import pytest
from pydantic import BaseModel, ValidationError

from alertd.dispatch.matchers import Matchers, MatchersField, parse_matcher
from alertd.series.selector import Matcher


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('severity="critical"', [("severity", "=", "critical")]),
        ("queue=~'crit.*'", [("queue", "=~", "crit.*")]),
        ('team!="x"', [("team", "!=", "x")]),
        ('task_name!~"tasks\\.debug\\..*"', [("task_name", "!~", "tasks\\.debug\\..*")]),
        ("severity=critical", [("severity", "=", "critical")]),
        ("  queue =~ high|low  ", [("queue", "=~", "high|low")]),
        ('{team="payments", severity=~"critical|page"}', [("team", "=", "payments"), ("severity", "=~", "critical|page")]),
        ('empty=""', [("empty", "=", "")]),
    ],
    ids=["equal", "regex-single-quotes", "not-equal", "not-regex-escaped-dots", "unquoted", "unquoted-spaces",
         "braces-several", "empty-value"],
)
def test_parse(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert [(m.label, m.op, m.value) for m in parse_matcher(text)] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('severity="critical', "unterminated string starting at position 9"),
        ("severity", "expected '=', '!=', '=~' or '!~' after label 'severity' at position 8"),
        ('="x"', "expected a label name"),
        ('queue=~"("', "invalid regex for label 'queue'"),
        ("", "empty matcher"),
        ("{}", "empty matcher"),
        ('1abc="x"', "expected a label name"),
        ('queue=~"(a)\\\\1"', "invalid regex for label 'queue': invalid escape sequence: \\1 (RE2 syntax: no backreferences"),
        ("queue=~'(?!low).*'", "invalid regex for label 'queue': invalid perl operator: (?! (RE2 syntax"),
        ("queue=~'" + "a" * 1001 + "'", "regex of 1,001 characters: at most 1,000 are allowed"),
        ("queue=~'" + "|".join(["q"] * 501) + "'", "regex of 1,001 characters"),
    ],
    ids=["unterminated", "no-operator", "no-label", "bad-regex", "empty", "empty-braces", "bad-label-name",
         "backreference", "lookahead", "too-long", "too-long-literals"],
)
def test_parse_errors_name_the_problem_and_the_text(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_matcher(text)
    assert message in str(info.value)
    assert repr(text) in str(info.value)


LABELS = {"alertname": "CriticalQueueBacklog", "queue": "critical", "severity": "critical", "team": "platform"}


@pytest.mark.parametrize(
    ("matchers", "matches"),
    [
        (['queue="critical"'], True),
        (['queue="default"'], False),
        (['queue=~"crit.*"'], True),
        (['queue=~"crit"'], False),  # anchored, as in Prometheus and Alertmanager
        (['queue=~"c"'], False),
        (['queue=~"default|critical"'], True),
        (['queue=~"c(r|x)it.*"'], True),
        (['team=~"plat.orm"'], True),
        (['queue!~"crit.*"'], False),
        (['team!="payments"'], True),
        (['missing=""'], True),  # a missing label matches the empty string
        (['missing!=""'], False),
        (['missing=~".*"'], True),
        (['queue="critical"', 'team="payments"'], False),  # all must match
        ([], True),
    ],
    ids=["equal", "equal-other", "regex", "regex-anchored", "regex-anchored-one-letter", "alternation-full",
         "regex-group", "regex-dot", "not-regex", "not-equal", "missing-equals-empty",
         "missing-not-empty", "missing-regex-any", "all-must-match", "none-matches-all"],
)
def test_semantics(matchers: list[str], matches: bool) -> None:
    assert Matchers.parse(matchers).matches(LABELS) is matches


def test_the_matcher_is_the_series_selectors_one() -> None:
    [m] = parse_matcher('queue=~"a|b"')
    assert isinstance(m, Matcher)


class _Model(BaseModel):
    matchers: MatchersField


def test_a_settings_field_takes_strings_and_gives_them_back() -> None:
    model = _Model.model_validate({"matchers": ['queue=~"crit.*"', "team=platform"]})
    assert model.matchers.matches({"queue": "critical", "team": "platform"})
    assert model.model_dump() == {"matchers": ['queue=~"crit.*"', 'team="platform"']}
    assert str(model.matchers) == '{queue=~"crit.*", team="platform"}'


def test_a_settings_field_reports_a_bad_matcher() -> None:
    with pytest.raises(ValidationError, match="unterminated string"):
        _Model.model_validate({"matchers": ['queue="x']})
    with pytest.raises(ValidationError, match="list of strings"):
        _Model.model_validate({"matchers": 3})


def test_a_dot_matches_a_newline_as_in_prometheus() -> None:
    assert Matchers.parse(['summary=~"disk.full"']).matches({"summary": "disk\nfull"})
    assert Matchers.parse(['summary=~"a.*"']).matches({"summary": "a\nb\nc"})
    assert not Matchers.parse(['summary!~".*"']).matches({"summary": "a\nb"})


def test_a_hostile_regex_is_answered_correctly_and_at_once() -> None:
    # Python's re took 6.8 s for this matcher on the 15-character value, and much longer beyond.
    hostile = Matchers.parse(['queue=~"(.*.*)*!"'])
    negated = Matchers.parse(['queue!~"(.*.*)*!"'])
    started = time.perf_counter()
    assert not hostile.matches({"queue": "aaaaaaaaaaaaaaa"})
    assert negated.matches({"queue": "aaaaaaaaaaaaaaa"})
    assert not hostile.matches({"queue": "a" * 50_000})
    assert hostile.matches({"queue": "a" * 50_000 + "!"})
    assert not negated.matches({"queue": "payments!"})
    assert not hostile.matches({})  # a missing label is the empty string
    assert time.perf_counter() - started < 1.0
