"""What ``alertd check`` accepts, ``alertd run`` accepts, and neither accepts a file that would fail later or
blow up the parser: unknown URL schemes, globs that match nothing, duplicate YAML keys, alias bombs, deep
nesting, absurd durations and intervals under the floor. Each is one line naming the file and the field."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from alertd.cli import main
from alertd.config import load_config
from alertd.errors import ConfigError
from alertd.rules.load import load_rules
from alertd.sources import MAX_DEPTH, load_document
from alertd.templating.env import make_environment
from tests.alertd_process import ROOT
from tests.helpers import OFFLINE

RULE = """
[[groups]]
name = "g"
[[groups.rules]]
name = "QueueDeep"
select = "queue_depth"
condition = "value > 10"
"""


def setup(tmp_path: Path, extra: str, *, base: str = OFFLINE) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "q.toml").write_text(RULE)
    cfg = tmp_path / "alertd.toml"
    cfg.write_text(base + extra)
    return cfg


def check_lines(cfg: Path) -> list[str]:
    result = CliRunner().invoke(main, ["check", "-c", str(cfg)])
    assert result.exit_code == 1, result.output
    return [line for line in result.output.splitlines() if not line.endswith("problem(s) found")]


@pytest.mark.parametrize("extra, expected", [
    ('[celery]\nbroker_url = "kafka://localhost:9092"\n', "celery.broker_url: unsupported broker URL"),
    ('[celery]\nbroker_url = "localhost:6379"\n', "celery.broker_url: unsupported broker URL"),
    ("", None),  # the control: the same file with a good value
])
def test_a_broker_url_that_run_cannot_use_is_a_check_error(tmp_path: Path, extra: str, expected: str | None) -> None:
    cfg = setup(tmp_path, extra)
    if expected is None:
        assert CliRunner().invoke(main, ["check", "-c", str(cfg)]).exit_code == 0
        return
    [line] = check_lines(cfg)
    assert line.startswith(f"{cfg}:") and expected in line


def test_check_and_run_refuse_the_same_state_url_in_one_line(tmp_path: Path) -> None:
    cfg = setup(tmp_path, "", base=OFFLINE.replace('url = "memory://"', 'url = "postgres://db/alertd"'))
    [line] = check_lines(cfg)
    assert "state.url: unsupported state store URL 'postgres://db/alertd'" in line
    run = subprocess.run([sys.executable, "-m", "alertd", "run", "-c", str(cfg), "--once"], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert [line] == run.stderr.strip().splitlines()


def test_every_rule_glob_must_match_a_file(tmp_path: Path) -> None:
    cfg = setup(tmp_path, "", base=OFFLINE.replace('rule_files = ["rules/*.toml"]',
                                                   'rule_files = ["rules/*.toml", "rules/*.yml", "ruels/*.toml"]'))
    lines = check_lines(cfg)
    assert lines == [f"{cfg}: rule_files: 'rules/*.yml' matches no file",
                     f"{cfg}: rule_files: 'ruels/*.toml' matches no file"]
    with pytest.raises(ConfigError, match="matches no file"):
        assert load_config(cfg).rule_files


def test_no_rule_files_at_all_is_allowed_by_both(tmp_path: Path) -> None:
    cfg = setup(tmp_path, "", base=OFFLINE.replace('rule_files = ["rules/*.toml"]', "rule_files = []"))
    result = CliRunner().invoke(main, ["check", "-c", str(cfg)])
    assert result.exit_code == 0 and "0 rules in 0 files" in result.output


@pytest.mark.parametrize("old, new, expected", [
    ("[http]", '[http]\nmax_silence_duration = "99999999d"', "http.max_silence_duration: '99999999d' is longer than"),
    ("[http]", "[http]\nmax_silence_duration = nan", "http.max_silence_duration: a duration cannot be negative"),
    ("[http]", "[http]\nmax_silence_duration = inf", "http.max_silence_duration: inf is longer than 10 years"),
    ("[state]", 'evaluation_interval = "0s"\n[state]', "evaluation_interval: an interval must be at least 100ms"),
    ("[collectors.broker]\nenabled = false", '[collectors.broker]\nenabled = false\ninterval = "10ms"',
     "collectors.broker.interval: an interval must be at least 100ms"),
    ("[http]", '[reload]\nwatch_interval = "0s"\n[http]', "reload.watch_interval: an interval must be at least 100ms"),
])
def test_absurd_durations_and_intervals_under_the_floor(tmp_path: Path, old: str, new: str, expected: str) -> None:
    base = OFFLINE + '[http]\nlisten = "127.0.0.1:0"\n'
    assert old in base
    [line] = check_lines(setup(tmp_path, "", base=base.replace(old, new, 1)))
    assert expected in line, line


def test_a_sub_second_group_interval_is_allowed_down_to_the_floor(tmp_path: Path) -> None:
    rules = tmp_path / "fast.toml"
    rules.write_text(RULE.replace('name = "g"', 'name = "g"\ninterval = "500ms"'))
    assert load_rules([str(rules)], make_environment()).groups[0].interval == 0.5
    rules.write_text(RULE.replace('name = "g"', 'name = "g"\ninterval = "50ms"'))
    with pytest.raises(ConfigError, match="interval: an interval must be at least 100ms"):
        load_rules([str(rules)], make_environment())


def test_a_yaml_key_given_twice_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("groups:\n  - name: a\n    rules: []\n    name: b\n")
    with pytest.raises(ConfigError) as caught:
        load_document(path)
    assert str(caught.value) == f"{path}:4: key 'name' is given twice (first at line 2)"


def test_a_billion_laughs_file_is_refused_before_it_expands(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]" for i in range(1, 10)]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\ngroups: *a9\n")
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="expands to more than 1,000,000 values"):
            load_document(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # 10**10 strings were never made
    # A few honest anchors are fine.
    path.write_text("defaults: &d {for: 5m}\ngroups:\n  - name: a\n    rules: []\n    x: *d\n    y: *d\n")
    assert load_document(path).data["groups"][0]["y"] == {"for": "5m"}


@pytest.mark.parametrize("suffix, text", [
    (".yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n"),
    (".yaml", "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, MAX_DEPTH + 5)) + "  " * (MAX_DEPTH + 5) + "v: 1\n"),
    (".toml", "a = " + "[" * 5000 + "]" * 5000 + "\n"),
    (".toml", "a = " + "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2) + "\n"),
])
def test_deep_nesting_is_one_error_not_a_crash(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text(text)
    with pytest.raises(ConfigError, match="nested"):
        load_document(path)


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    with open(path, "wb") as f:
        f.truncate(17 * 2**20)
    with pytest.raises(ConfigError, match="larger than 16 MiB"):
        load_document(path)
