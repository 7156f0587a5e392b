"""The hooks of .pre-commit-hooks.yaml, run by the real pre-commit (``pre-commit try-repo``) on a repository that
keeps an alertd configuration, rules and rule tests: pre-commit installs alertd from this checkout into its own
virtual environment, as it does for a team that lists this repository in .pre-commit-config.yaml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import OFFLINE, write

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

RULES = """
[[groups]]
name = "queues"
[[groups.rules]]
name = "Backlog"
select = "depth"
condition = "value > 10"
for = "2m"
"""

TESTS = """
rule_files = ["../queues.toml"]
[[tests]]
name = "a backlog of 20 fires after two minutes"
series = [ { select = 'depth{queue="a"}', values = "20x5" } ]
  [[tests.alerts]]
  at = "3m"
  rule = "Backlog"
  firing = [ { labels = { queue = "a", severity = "warning" } } ]
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def try_repo(repo: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """Both hooks, on every file of ``repo`` (pre-commit reads what is staged)."""
    git(repo, "add", "-A")
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never",
           # try-repo commits this checkout's uncommitted changes to a shadow repository
           "GIT_AUTHOR_NAME": "alertd", "GIT_AUTHOR_EMAIL": "alertd@localhost",
           "GIT_COMMITTER_NAME": "alertd", "GIT_COMMITTER_EMAIL": "alertd@localhost"}
    env.pop("ALERTD_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "--all-files"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=540)


def hook_output(output: str, name: str) -> str:
    """What pre-commit printed for one hook: from its status line to the next hook's."""
    start = output.index(f"{name}.")
    end = output.find("\nalertd ", start + 1)
    return output[start:] if end < 0 else output[start:end]


def test_hooks_pass_on_good_rules_and_fail_on_a_broken_rule_file_with_its_one_line_error(tmp_path: Path) -> None:
    repo, home = tmp_path / "repo", tmp_path / "pre-commit-home"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo / "alertd.toml", OFFLINE)
    write(repo / "rules" / "queues.toml", RULES)
    write(repo / "rules" / "tests" / "queues_test.toml", TESTS)

    good = try_repo(repo, home)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "\nalertd check....." in good.stdout and "\nalertd test....." in good.stdout
    assert hook_output(good.stdout, "alertd check").rstrip().endswith("Passed")
    assert hook_output(good.stdout, "alertd test").rstrip().endswith("Passed")

    write(repo / "rules" / "queues.toml", RULES.replace('for = "2m"', 'for = "2 minutes"'))
    broken = try_repo(repo, home)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    check = hook_output(broken.stdout, "alertd check")
    assert "Failed" in check.splitlines()[0]
    problems = [line for line in check.splitlines() if line.startswith("rules/")]
    assert problems == ["rules/queues.toml:7: Backlog: for: invalid duration '2 minutes': "
                        "use a number and a unit, like 30s, 5m, 1h or 1h30m"]
    test = hook_output(broken.stdout, "alertd test")
    assert "Failed" in test.splitlines()[0]
    assert "FAIL rules/tests/queues_test.toml: (loading)" in test
    assert "0 passed, 1 failed" in test
