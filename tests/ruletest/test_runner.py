from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from alertd.cli import main
from tests.helpers import write

ROOT = Path(__file__).resolve().parents[2]

RULES = """
[[groups]]
name = "q"
[[groups.rules]]
name = "Backlog"
select = "depth"
condition = "value > 10"
for = "2m"
summary = "{{ labels.queue }} holds {{ value | int }}"
"""


def test_the_example_rules_pass_their_tests(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["test", str(ROOT / "rules")])
    assert result.exit_code == 0, result.output
    passed = int(result.output.strip().splitlines()[-1].split()[0])
    assert passed >= 18


def test_a_failing_expectation_prints_a_readable_diff_and_exits_non_zero(tmp_path: Path) -> None:
    write(tmp_path / "rules.toml", RULES)
    write(
        tmp_path / "rules_test.toml",
        """
        rule_files = ["rules.toml"]
        [[tests]]
        name = "fires too early on purpose"
        series = [ { select = 'depth{queue="a"}', values = "20x10" } ]
          [[tests.alerts]]
          at = "1m"
          rule = "Backlog"
          firing = [ { labels = { queue = "a", severity = "warning" }, annotations = { summary = "a holds 20" } } ]
        """,
    )
    result = CliRunner().invoke(main, ["test", str(tmp_path)])
    assert result.exit_code == 1
    out = result.output
    assert 'FAIL' in out and "fires too early on purpose" in out
    assert "at 1m: Backlog: firing alerts differ" in out
    assert '- {queue="a", severity="warning"}' in out  # expected
    assert "(none)" in out  # got
    assert out.strip().endswith("0 passed, 1 failed")


def test_annotation_mismatch_names_the_annotation(tmp_path: Path) -> None:
    write(tmp_path / "rules.toml", RULES)
    write(
        tmp_path / "x_test.yaml",
        """
        rule_files: [rules.toml]
        tests:
          - name: wrong summary
            series:
              - select: 'depth{queue="a"}'
                values: "20x10"
            alerts:
              - at: 3m
                rule: Backlog
                firing:
                  - labels: {queue: a, severity: warning}
                    annotations: {summary: "a holds 21"}
        """,
    )
    result = CliRunner().invoke(main, ["test", str(tmp_path / "x_test.yaml")])
    assert result.exit_code == 1
    assert "annotation summary of {queue=\"a\", severity=\"warning\"}: expected 'a holds 21', got 'a holds 20'" in result.output


def test_an_hour_of_series_runs_in_a_blink(tmp_path: Path) -> None:
    write(tmp_path / "rules.toml", RULES)
    write(
        tmp_path / "long_test.toml",
        """
        rule_files = ["rules.toml"]
        evaluation_interval = "15s"
        [[tests]]
        name = "an hour, pending then firing"
        interval = "15s"
        series = [ { select = 'depth{queue="a"}', values = "0x120 50x120" } ]
          [[tests.alerts]]
          at = "31m"
          rule = "Backlog"
          pending = [ { labels = { queue = "a", severity = "warning" } } ]
          firing = []
          [[tests.alerts]]
          at = "60m"
          rule = "Backlog"
          firing = [ { labels = { queue = "a", severity = "warning" }, annotations = { summary = "a holds 50" } } ]
        """,
    )
    result = CliRunner().invoke(main, ["test", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_problems_with_the_test_file_itself_are_one_clear_failure(tmp_path: Path) -> None:
    write(tmp_path / "rules.toml", RULES)
    write(tmp_path / "bad_test.toml", 'rule_files = ["rules.toml"]\n[[tests]]\nname = "x"\nseries = [ { select = "depth", valus = "1" } ]\n')
    result = CliRunner().invoke(main, ["test", str(tmp_path)])
    assert result.exit_code == 1
    assert "bad_test.toml:4: tests[0].series[0].valus: unknown field" in result.output


def test_an_unknown_rule_in_an_expectation_is_reported(tmp_path: Path) -> None:
    shutil.copy(ROOT / "rules" / "celery-queues.toml", tmp_path / "q.toml")
    write(tmp_path / "q_test.toml", 'rule_files = ["q.toml"]\n[[tests]]\nname = "typo"\n[[tests.alerts]]\nat = "1m"\nrule = "CriticalQueueBaclog"\nfiring = []\n')
    result = CliRunner().invoke(main, ["test", str(tmp_path)])
    assert result.exit_code == 1
    assert "no rule named 'CriticalQueueBaclog'" in result.output
