"""What CI servers read: ``alertd check --format json|github`` on a broken configuration, and the JUnit XML of
``alertd test --junit-xml``, parsed as a CI server would."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from alertd.cli import main
from alertd.errors import ConfigError
from alertd.reports import github_annotations
from tests.helpers import OFFLINE, write

RULES = """
[[groups]]
name = "queues"
[[groups.rules]]
name = "Backlog"
select = "depth"
condition = "value > 10"
for = "2m"
summary = "{{ labels.queue }} holds {{ value | int }}"
"""


def alertd(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration whose rule file has two mistakes: a bad duration (line 7) and a misspelt field (line 9)."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "rules" / "queues.toml", RULES.replace('for = "2m"', 'for = "2 minutes"') + "treshold = 5\n")
    return write(tmp_path / "alertd.toml", OFFLINE)


def test_check_json_lists_every_problem_with_its_place(broken: Path) -> None:
    code, out, err = alertd("check", "-c", "alertd.toml", "--format", "json")
    assert code == 1
    problems = json.loads(out)
    assert sorted(problems, key=lambda p: p["line"]) == [
        {"file": "rules/queues.toml", "line": 7, "rule": "Backlog", "field": "for",
         "message": "invalid duration '2 minutes': use a number and a unit, like 30s, 5m, 1h or 1h30m"},
        {"file": "rules/queues.toml", "line": 9, "rule": "Backlog", "field": "treshold", "message": "unknown field"},
    ]
    assert err.strip() == "2 problem(s) found"


def test_check_github_puts_each_problem_on_its_line(broken: Path) -> None:
    code, out, _ = alertd("check", "-c", "alertd.toml", "--format", "github")
    assert code == 1
    lines = sorted(out.splitlines())
    assert lines == [
        "::error file=rules/queues.toml,line=7,title=alertd check::Backlog: for: invalid duration '2 minutes':"
        " use a number and a unit, like 30s, 5m, 1h or 1h30m",
        "::error file=rules/queues.toml,line=9,title=alertd check::Backlog: treshold: unknown field",
    ]


def test_check_formats_on_a_good_configuration(broken: Path) -> None:
    write(broken.parent / "rules" / "queues.toml", RULES)
    code, out, err = alertd("check", "-c", "alertd.toml", "--format", "json")
    assert (code, json.loads(out)) == (0, [])
    assert err == "alertd.toml: ok: 1 rules in 1 files\n"
    code, out, _ = alertd("check", "-c", "alertd.toml", "--format", "github")
    assert code == 0 and "::error" not in out


def test_github_annotations_escape_what_would_end_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    errors = [
        ConfigError("100% wrong\nsecond line", file=str(tmp_path / "a,b:c.toml"), line=3, field="x"),
        ConfigError("no place at all"),
    ]
    assert github_annotations(errors).splitlines() == [
        "::error file=a%2Cb%3Ac.toml,line=3,title=alertd check::x: 100%25 wrong%0Asecond line",
        "::error title=alertd check::no place at all",
    ]


def test_junit_xml_has_a_testcase_per_test_and_the_failures(tmp_path: Path) -> None:
    write(tmp_path / "rules.toml", RULES)
    write(tmp_path / "good_test.toml", """
        rule_files = ["rules.toml"]
        [[tests]]
        name = "fires after two minutes"
        series = [ { select = 'depth{queue="a"}', values = "20x10" } ]
          [[tests.alerts]]
          at = "3m"
          rule = "Backlog"
          firing = [ { labels = { queue = "a", severity = "warning" } } ]
        [[tests]]
        name = "fires too early on purpose"
        series = [ { select = 'depth{queue="a"}', values = "20x10" } ]
          [[tests.alerts]]
          at = "1m"
          rule = "Backlog"
          firing = [ { labels = { queue = "a", severity = "warning" } } ]
        """)
    write(tmp_path / "broken_test.toml", 'rule_files = ["missing.toml"]\n[[tests]]\nname = "x"\n')
    report = tmp_path / "out" / "junit.xml"
    report.parent.mkdir()
    code, out, _ = alertd("test", str(tmp_path), "--junit-xml", str(report))
    assert code == 1
    assert out.strip().endswith("1 passed, 2 failed")

    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    good, broken = str(tmp_path / "good_test.toml"), str(tmp_path / "broken_test.toml")
    assert set(suites) == {good, broken}
    assert [(s.get("tests"), s.get("failures"), s.get("errors"), s.get("skipped")) for s in (suites[good], suites[broken])] \
        == [("2", "1", "0", "0"), ("1", "0", "1", "0")]
    assert suites[good].get("file") == good

    cases = suites[good].findall("testcase")
    assert [(c.get("name"), c.get("classname"), c.get("file")) for c in cases] == [
        ("fires after two minutes", good, good), ("fires too early on purpose", good, good)]
    assert all(float(c.get("time", "-1")) >= 0 for c in cases)
    assert cases[0].find("failure") is None and cases[0].find("error") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "at 1m: Backlog: firing alerts differ (labels differ)"
    assert failure.text is not None and '- {queue="a", severity="warning"}' in failure.text

    (loading,) = suites[broken].findall("testcase")
    error = loading.find("error")
    assert loading.get("name") == "(loading)" and error is not None
    assert error.get("message", "").startswith(f"{broken}: rule_files: ")
    assert "missing.toml" in error.get("message", "")


def test_junit_xml_stays_well_formed_with_control_characters_in_a_test_name(tmp_path: Path) -> None:
    write(tmp_path / "rules.toml", RULES)
    write(tmp_path / "odd_test.toml", 'rule_files = ["rules.toml"]\n[[tests]]\nname = "bell \\u0007 & <tag>"\n')
    report = tmp_path / "junit.xml"
    code, _, _ = alertd("test", str(tmp_path), "--junit-xml", str(report))
    assert code == 0
    (case,) = ET.parse(report).getroot().iter("testcase")
    assert case.get("name") == "bell \ufffd & <tag>"


def test_an_unwritable_junit_path_is_one_clear_error(tmp_path: Path) -> None:
    write(tmp_path / "rules.toml", RULES)
    write(tmp_path / "a_test.toml", 'rule_files = ["rules.toml"]\n[[tests]]\nname = "nothing"\n')
    result = CliRunner().invoke(main, ["test", str(tmp_path), "--junit-xml", str(tmp_path / "no" / "j.xml")])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot write the JUnit file: ")
