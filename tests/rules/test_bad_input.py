"""Every mistake a new user makes in a rule file gets one clear line naming file, line, rule and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from alertd.check import check
from alertd.cli import main
from tests.helpers import write

GOOD_RULE = """
[[groups]]
name = "queues"

[[groups.rules]]
name = "Backlog"
select = 'celery_queue_depth{queue="critical"}'
condition = "value > 100"
for = "1m"
summary = "Critical queue depth exceeds {{ value | int }}"
"""

# (id, file name, text, expected line, expected text in the one error line)
RULE_CASES = [
    ("toml-syntax", "r.toml", 'name = "x\n', 1, "TOML syntax error"),
    ("unknown-field", "r.toml", GOOD_RULE + 'treshold = 5\n', 11, "Backlog: treshold: unknown field"),
    ("bad-regex", "r.toml", GOOD_RULE.replace('queue="critical"', 'queue=~"(crit"'), 7,
     "Backlog: select: invalid regex for label 'queue'"),
    ("regex-re2-refuses", "r.toml", GOOD_RULE.replace('queue="critical"', 'queue=~"(?!low).*"'), 7,
     "Backlog: select: invalid regex for label 'queue': invalid perl operator: (?! (RE2 syntax: no backreferences"),
    ("regex-too-long", "r.toml", GOOD_RULE.replace('queue="critical"', 'queue=~"' + "x" * 1001 + '"'), 7,
     "Backlog: select: invalid regex for label 'queue': regex of 1,001 characters: at most 1,000 are allowed"),
    ("bad-selector", "r.toml", GOOD_RULE.replace('queue="critical"', "queue critical"), 7, "Backlog: select:"),
    ("bad-duration", "r.toml", GOOD_RULE.replace('"1m"', '"5 minutes"'), 9,
     "Backlog: for: invalid duration '5 minutes'"),
    ("undefined-in-template", "r.toml", GOOD_RULE.replace("{{ value | int }}", "{{ vlaue }}"), 10,
     "Backlog: summary: template fails on sample data: 'vlaue' is undefined"),
    ("unknown-label-in-template", "r.toml",
     GOOD_RULE.replace("select = 'celery_queue_depth{queue=\"critical\"}'",
                       "select = 'celery_queue_depth'\naggregate = 'sum'\nby = ['queue']").replace(
         "{{ value | int }}", "{{ labels.task }}"), 12,
     "Backlog: summary: template fails on sample data"),
    ("template-syntax", "r.toml", GOOD_RULE.replace("{{ value | int }}", "{{ value | int }"), 10,
     "Backlog: summary: template does not compile"),
    ("unknown-filter", "r.toml", GOOD_RULE.replace("| int", "| humanise"), 10,
     "Backlog: summary: template does not compile: No filter named 'humanise'"),
    ("condition-syntax", "r.toml", GOOD_RULE.replace('"value > 100"', '"value >"'), 8,
     "Backlog: condition: does not compile"),
    ("condition-undefined", "r.toml", GOOD_RULE.replace('"value > 100"', '"vlue > 100"'), 8,
     "Backlog: condition: 'vlue' is undefined"),
    ("missing-condition", "r.toml", GOOD_RULE.replace('condition = "value > 100"\n', ""), 5,
     "Backlog: condition: missing required field"),
    ("bad-severity", "r.toml", GOOD_RULE + 'severity = "page"\n', 11, "Backlog: severity: got 'page'"),
    ("window-missing", "r.toml", GOOD_RULE.replace('condition', 'function = "rate"\ncondition'), 5,
     "Backlog: function 'rate' needs a window"),
    ("quantile-out-of-range", "r.toml",
     GOOD_RULE.replace('condition', 'function = "histogram_quantile"\nquantile = 95\ncondition'), 5,
     "Backlog: quantile must be between 0 and 1"),
    ("bad-rule-name", "r.toml", GOOD_RULE.replace('name = "Backlog"', 'name = "queue backlog"'), 6,
     "queue backlog: name: 'queue backlog' is not a valid rule name"),
    ("duplicate-rule", "r.toml", GOOD_RULE + GOOD_RULE[GOOD_RULE.index("[[groups.rules]]"):], 12,
     "Backlog: name: rule 'Backlog' appears twice"),
    ("labels-not-a-table", "r.toml", GOOD_RULE + 'labels = "team"\n', 11, "Backlog: labels: Input should be a valid dictionary"),
    ("empty-file", "r.toml", "", 1, "no rules"),
    ("yaml-syntax", "r.yaml", "groups:\n  - name: q\n    rules:\n   - name: x\n", 4, "YAML syntax error"),
    ("yaml-unknown-field", "r.yaml",
     "groups:\n  - name: q\n    rules:\n      - name: X\n        select: depth\n        condition: value > 1\n"
     "        summry: hello\n", 7, "X: summry: unknown field"),
    ("yaml-not-a-mapping", "r.yaml", "- a\n- b\n", 1, "the file must hold a mapping"),
]


@pytest.mark.parametrize(("name", "text", "line", "expected"), [c[1:] for c in RULE_CASES],
                         ids=[c[0] for c in RULE_CASES])
def test_rule_file_mistakes(tmp_path: Path, name: str, text: str, line: int, expected: str) -> None:
    write(tmp_path / "alertd.toml", 'rule_files = ["rules/*"]\n')
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / name).write_text(text)
    report = check(str(tmp_path / "alertd.toml"))
    assert len(report.errors) == 1, [str(e) for e in report.errors]
    message = str(report.errors[0])
    assert message.startswith(f"{tmp_path / 'rules' / name}:{line}: "), message
    assert expected in message, message
    assert "\n" not in message and "Traceback" not in message


CONFIG_CASES = [
    ("unknown-key", '[celery]\nbrokr_url = "redis://x"\n', 2, "celery.brokr_url: unknown field"),
    ("unknown-section", '[celeryy]\nqueues = []\n', 1, "celeryy: unknown field"),
    ("bad-duration", 'evaluation_interval = "fast"\n', 1, "evaluation_interval: invalid duration 'fast'"),
    ("missing-env", '[celery]\nbroker_url = "${ALERTD_TEST_UNSET_VAR}"\n', 2,
     "celery.broker_url: environment variable ALERTD_TEST_UNSET_VAR is not set"),
    ("unreadable-secret-file", '[http]\ntoken_file = "nope.txt"\n', 2, "http.token_file: cannot read secret file"),
    ("file-form-of-no-secret", '[celery]\nbroker_url_file = "url.txt"\n', 2,
     "celery.broker_url_file: broker_url is not a secret, so it cannot be read from a file"),
    ("unknown-collector", '[collectors.quues]\ninterval = "5s"\n', 1, "collectors.quues: unknown collector 'quues'"),
    ("collector-setting", '[collectors.workers]\ninterval = "soon"\n', 2, "collectors.workers.interval: invalid duration"),
    ("wrong-type", 'rule_files = "rules/*.toml"\n', 1, "rule_files: Input should be a valid list"),
    ("no-rule-files", 'rule_files = ["nothing/*.toml"]\n', None, "rule_files: 'nothing/*.toml' matches no file"),
]


@pytest.mark.parametrize(("text", "line", "expected"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_config_mistakes(tmp_path: Path, text: str, line: int | None, expected: str) -> None:
    write(tmp_path / "rules" / "r.toml", GOOD_RULE)
    cfg = tmp_path / "alertd.toml"
    cfg.write_text(text)
    report = check(str(cfg))
    assert len(report.errors) == 1, [str(e) for e in report.errors]
    message = str(report.errors[0])
    prefix = f"{cfg}:{line}: " if line is not None else f"{cfg}: "
    assert message.startswith(prefix), message
    assert expected in message, message


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path / "alertd.toml", 'rule_files = ["rules/*.toml"]\n')
    write(tmp_path / "rules" / "a.toml", GOOD_RULE.replace('"1m"', '"1 m"'))
    write(tmp_path / "rules" / "b.toml", GOOD_RULE.replace("queues", "other").replace('"value > 100"', '"value >"'))
    report = check(str(tmp_path / "alertd.toml"))
    assert [(e.file and Path(e.file).name, e.field) for e in report.errors] == [("a.toml", "for"), ("b.toml", "condition")]


def test_check_cli_exit_codes_and_output(tmp_path: Path) -> None:
    write(tmp_path / "alertd.toml", 'rule_files = ["rules/*.toml"]\n')
    write(tmp_path / "rules" / "a.toml", GOOD_RULE)
    runner = CliRunner()
    ok = runner.invoke(main, ["check", "-c", str(tmp_path / "alertd.toml")])
    assert ok.exit_code == 0, ok.output
    assert "ok: 1 rules in 1 files" in ok.output
    write(tmp_path / "rules" / "a.toml", GOOD_RULE.replace("value > 100", "value >>"))
    bad = runner.invoke(main, ["check", "-c", str(tmp_path / "alertd.toml")])
    assert bad.exit_code == 1
    assert "Backlog: condition: does not compile" in bad.output
    assert "Traceback" not in bad.output


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", "-c", str(tmp_path / "nope.toml")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[0] == f"{tmp_path / 'nope.toml'}: file not found"
