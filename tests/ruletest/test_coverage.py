"""``alertd test --coverage``: the rules that no test names, from the test files' rules and a configuration's."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from alertd.cli import main
from tests.helpers import OFFLINE, write

RULES = """
[[groups]]
name = "q"
[[groups.rules]]
name = "Backlog"
select = "depth"
condition = "value > 10"
[[groups.rules]]
name = "Stuck"
select = "depth"
condition = "value > 100"
for = "1h"
[[groups.rules]]
name = "Empty"
select = "depth"
condition = "value == 0"
"""

# Names Backlog in an alert expectation (failing on purpose: failing tests still count) and Empty by expecting
# none of its alerts; Stuck is named nowhere.
TESTS = """
rule_files = ["../rules/queues.toml"]
[[tests]]
name = "backlog"
series = [ { select = 'depth{queue="a"}', values = "20x3" } ]
  [[tests.alerts]]
  at = "1m"
  rule = "Backlog"
  firing = []
  [[tests.alerts]]
  at = "1m"
  rule = "Empty"
  firing = []
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["test", *args], catch_exceptions=False)


def test_coverage_lists_the_rules_no_test_names_and_keeps_the_exit_status(tmp_path: Path) -> None:
    write(tmp_path / "rules" / "queues.toml", RULES)
    write(tmp_path / "tests" / "queues_test.toml", TESTS)
    result = run(str(tmp_path / "tests"), "--coverage")
    assert result.exit_code == 1  # the Backlog expectation fails; coverage does not change the status
    lines = result.stdout.strip().splitlines()
    assert lines[-3:] == [
        "0 passed, 1 failed",
        f"untested: {tmp_path / 'rules' / 'queues.toml'}:8: Stuck",
        "coverage: 2 of 3 rules have a test (67%)",
    ]


def test_fail_under_fails_when_too_few_rules_have_a_test(tmp_path: Path) -> None:
    write(tmp_path / "rules" / "queues.toml", RULES)
    write(tmp_path / "tests" / "queues_test.toml", TESTS.replace("20x3", "5x3"))  # now every test passes
    assert run(str(tmp_path / "tests"), "--coverage").exit_code == 0
    assert run(str(tmp_path / "tests"), "--fail-under", "60").exit_code == 0
    result = run(str(tmp_path / "tests"), "--fail-under", "100")
    assert result.exit_code == 1
    assert "coverage: 2 of 3 rules have a test (67%)" in result.stdout
    assert result.stderr.strip() == "coverage 66.7% is under --fail-under 100"


def test_a_configuration_adds_rule_files_that_no_test_file_loads(tmp_path: Path) -> None:
    write(tmp_path / "rules" / "queues.toml", RULES)
    write(tmp_path / "rules" / "workers.toml", """
        [[groups]]
        name = "w"
        [[groups.rules]]
        name = "WorkersDown"
        select = "workers_up"
        condition = "value < 1"
        """)
    write(tmp_path / "tests" / "queues_test.toml", TESTS.replace("20x3", "5x3"))
    config = write(tmp_path / "alertd.toml", OFFLINE)
    result = run(str(tmp_path / "tests"), "--coverage", "-c", str(config))
    assert result.exit_code == 0, result.output
    untested = sorted(line.rsplit(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("untested: "))
    assert untested == ["Stuck", "WorkersDown"]  # Stuck counted once, though both load it
    assert "coverage: 2 of 4 rules have a test (50%)" in result.stdout


def test_a_configuration_that_does_not_load_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path / "rules" / "queues.toml", RULES)
    write(tmp_path / "tests" / "queues_test.toml", TESTS)
    config = write(tmp_path / "alertd.toml", 'rule_files = ["nowhere/*.toml"]\n')
    result = run(str(tmp_path / "tests"), "--coverage", "-c", str(config))
    assert result.exit_code == 1
    assert "nowhere/*.toml" in result.stderr and f"alertd check -c {config}" in result.stderr


def test_the_example_rules_all_have_tests() -> None:
    root = Path(__file__).resolve().parents[2]
    result = run(str(root / "rules"), "--fail-under", "100", "-c", str(root / "config.example.toml"))
    assert result.exit_code == 0, result.output
