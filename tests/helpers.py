"""Small builders shared by the unit tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from alertd.rules.load import RuleSet, load_rules
from alertd.templating.env import make_environment


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def ruleset(tmp_path: Path, text: str, name: str = "rules.toml") -> RuleSet:
    return load_rules([str(write(tmp_path / name, text))], make_environment())


# A daemon configuration with nothing reaching out (no broker, no event stream): the tests feed it samples.
OFFLINE = """
rule_files = ["rules/*.toml"]
[state]
url = "memory://"
[events]
enabled = false
[collectors.broker]
enabled = false
[collectors.queues]
enabled = false
[collectors.workers]
enabled = false
[collectors.inspect]
enabled = false
"""
