"""Test file runs (and, optionally, a configuration's rules) in, the rules that no test names out.

A rule is tested when a test of a file that loads it names it: in an alert expectation (``rule = ...``, an empty
``firing = []`` included, since expecting silence is a test too) or as an alert's ``name`` in a notification
expectation. Failing tests count: coverage says where tests are missing, not whether they pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from jinja2.sandbox import SandboxedEnvironment

from alertd.config import load_config
from alertd.rules.compile import CompiledRule
from alertd.rules.load import load_rules
from alertd.ruletest.model import RuleTest
from alertd.ruletest.runner import FileRun


@dataclass(frozen=True)
class UntestedRule:
    file: str
    line: int | None
    name: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.name}"


@dataclass(frozen=True)
class Coverage:
    total: int
    untested: list[UntestedRule]

    @property
    def tested(self) -> int:
        return self.total - len(self.untested)

    @property
    def percent(self) -> float:
        return 100.0 * self.tested / self.total if self.total else 100.0


def rules_named(test: RuleTest) -> set[str]:
    """The rule names that one test's expectations name."""
    names = {exp.rule for exp in test.alerts}
    for expectation in test.notifications:
        for notification in expectation.notifications:
            names.update(a.name for a in notification.alerts or () if a.name)
    return names


def _key(rule: CompiledRule) -> tuple[str, str]:
    return os.path.realpath(rule.file), rule.name


def rule_coverage(runs: Iterable[FileRun], also: Sequence[CompiledRule] = ()) -> Coverage:
    """Every rule that the runs loaded, and ``also`` (a configuration's rules, which no test file may load)."""
    every: dict[tuple[str, str], CompiledRule] = {}
    tested: set[tuple[str, str]] = set()
    for run in runs:
        if run.spec is None or run.rules is None:
            continue
        loaded = run.rules.rules
        every.update((_key(r), r) for r in loaded)
        named = set().union(*(rules_named(t) for t in run.spec.tests))
        tested.update(_key(r) for r in loaded if r.name in named)
    every.update((_key(r), r) for r in also if _key(r) not in every)
    untested = [UntestedRule(r.file, r.line, r.name) for key, r in every.items() if key not in tested]
    untested.sort(key=lambda u: (u.file, u.line or 0, u.name))
    return Coverage(len(every), untested)


def configured_rules(config_path: str, env: SandboxedEnvironment) -> list[CompiledRule]:
    """The rules of a configuration's ``rule_files``; raises ConfigError when they do not load."""
    loaded = load_config(config_path)
    return load_rules(loaded.rule_files, env, default_interval=loaded.config.evaluation_interval).rules
