"""docs/ci.md's workflows are valid YAML, every alertd command in them runs as written on a repository laid
out as they assume, and its pre-commit examples name the hooks and options of .pre-commit-hooks.yaml."""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from alertd.cli import main
from tests.helpers import OFFLINE

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))


def yaml_blocks() -> list[Any]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", DOC, re.S)]


def commands(block: Any) -> list[str]:
    """Every ``alertd ...`` command in a workflow's run steps or a job's script."""
    lines: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("run", "script"):
                    lines.extend(item if isinstance(item, list) else [item])
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(block)
    return [line for line in lines if line.startswith("alertd ")]


def test_the_workflows_are_yaml_and_their_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ALERTD_CONFIG", raising=False)
    (tmp_path / "alertd.toml").write_text(OFFLINE)
    (tmp_path / "rules").mkdir()
    for name in ("celery-queues.toml", "celery-workers.toml"):
        (tmp_path / "rules" / name).write_bytes((ROOT / "rules" / name).read_bytes())
        test = name.replace(".toml", "_test.toml")
        (tmp_path / "rules" / "tests").mkdir(exist_ok=True)
        (tmp_path / "rules" / "tests" / test).write_bytes((ROOT / "rules" / "tests" / test).read_bytes())
    blocks = yaml_blocks()
    github, gitlab = blocks[0], blocks[1]
    assert set(github["jobs"]) == {"rules"} and "alertd" in gitlab
    assert gitlab["alertd"]["artifacts"]["reports"]["junit"] == "alertd-junit.xml"
    ran = []
    for command in commands(github) + commands(gitlab):
        result = CliRunner().invoke(main, shlex.split(command)[1:], catch_exceptions=False)
        assert result.exit_code == 0, f"{command}: {result.output}"
        ran.append(command)
    assert len(ran) == 4
    assert ET.parse(tmp_path / "alertd-junit.xml").getroot().get("failures") == "0"


def test_the_pre_commit_examples_use_the_hooks_as_they_are() -> None:
    ids = {hook["id"]: hook for hook in HOOKS}
    assert set(ids) == {"alertd-check", "alertd-test"}
    assert all(not hook["pass_filenames"] and hook["language"] == "python" for hook in HOOKS)
    remote, local = [b for b in yaml_blocks() if "repos" in b]
    assert {hook["id"] for hook in remote["repos"][0]["hooks"]} == set(ids)
    assert local["repos"][0]["hooks"][0]["files"] == ids["alertd-check"]["files"]
    for hook in HOOKS:  # the default args run as they are
        args = [*shlex.split(hook["entry"])[1:], *hook["args"]]
        assert CliRunner().invoke(main, [*args, "--help"]).exit_code == 0
