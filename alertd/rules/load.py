"""Rule file globs in, a validated and compiled RuleSet out, or every problem as one ``file:line`` error."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2.sandbox import SandboxedEnvironment
from pydantic import ValidationError

from alertd.errors import ConfigError, ConfigErrors
from alertd.rules.compile import Candidate, CompiledRule, RuleCompileError, compile_rule
from alertd.rules.model import GroupSpec, RuleFileSpec, RuleSpec
from alertd.sources import Document, get_path, load_document, validation_errors
from alertd.templating.env import PermissiveLabels, expression_names, render_bounded


@dataclass
class RuleGroup:
    name: str
    file: str
    interval: float
    rules: list[CompiledRule]


@dataclass
class RuleSet:
    """Every compiled rule, by group, with an index from metric name to the rules that read it."""

    groups: list[RuleGroup] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_metric: dict[str, list[CompiledRule]] = {}
        for rule in self.rules:
            for metric in rule.metrics:
                self.by_metric.setdefault(metric, []).append(rule)

    @property
    def rules(self) -> list[CompiledRule]:
        return [r for g in self.groups for r in g.rules]

    @property
    def longest_window(self) -> float:
        return max((r.longest_window for r in self.rules), default=0.0)

    def rules_reading(self, metrics: Iterable[str]) -> list[CompiledRule]:
        seen: dict[str, CompiledRule] = {}
        for metric in metrics:
            for rule in self.by_metric.get(metric, ()):
                seen[rule.id] = rule
        return list(seen.values())


def rule_files_or_errors(patterns: Sequence[str], base_dir: str | Path, *, file: str) -> list[str]:
    """``find_rule_files``, where every pattern that matches no file is a ConfigError (a typo loses rules
    silently otherwise); ``file`` is the file that names the patterns."""
    missing = [p for p in patterns if not find_rule_files([p], base_dir)]
    if missing:
        raise ConfigErrors(ConfigError(f"{p!r} matches no file", file=file, field="rule_files")
                           for p in missing)
    return find_rule_files(patterns, base_dir)


def find_rule_files(patterns: Sequence[str], base_dir: str | Path) -> list[str]:
    """Expand globs relative to ``base_dir`` (the configuration file's folder), sorted, without duplicates."""
    found: dict[str, None] = {}
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else os.path.join(base_dir, pattern)
        for path in sorted(glob.glob(full, recursive=True)):
            if os.path.isfile(path):
                found.setdefault(os.path.normpath(path), None)
    return list(found)


def load_rules(
    files: Sequence[str], env: SandboxedEnvironment, *, default_interval: float = 15.0
) -> RuleSet:
    """Load, validate and compile every file; raises ConfigErrors listing every problem in every file."""
    errors: list[ConfigError] = []
    groups: list[RuleGroup] = []
    group_files: dict[str, str] = {}
    for path in files:
        try:
            doc = load_document(path)
        except ConfigError as exc:
            errors.append(exc)
            continue
        file_groups, file_errors = _load_file(doc, env, default_interval)
        errors.extend(file_errors)
        for g in file_groups:
            if g.name in group_files:
                errors.append(
                    ConfigError(
                        f"group {g.name!r} is defined twice"
                        + ("" if group_files[g.name] == path else f" (first in {group_files[g.name]})"),
                        file=path,
                        line=None,
                    )
                )
                continue
            group_files[g.name] = path
            groups.append(g)
    if errors:
        raise ConfigErrors(errors)
    return RuleSet(groups, list(files))


def _rule_locator(data: dict[str, Any]) -> Any:
    def rule_of(loc: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]] | None:
        if len(loc) >= 4 and loc[0] == "groups" and loc[2] == "rules":
            prefix, rest = loc[:4], loc[4:]
        elif len(loc) >= 2 and loc[0] == "rules":
            prefix, rest = loc[:2], loc[2:]
        else:
            return None
        name = get_path(data, (*prefix, "name"))
        return (name if isinstance(name, str) else f"{prefix[-2]}[{prefix[-1]}]"), rest

    return rule_of


def _load_file(
    doc: Document, env: SandboxedEnvironment, default_interval: float
) -> tuple[list[RuleGroup], list[ConfigError]]:
    try:
        spec = RuleFileSpec.model_validate(doc.data)
    except ValidationError as exc:
        return [], validation_errors(exc, doc, rule_of=_rule_locator(doc.data))
    errors: list[ConfigError] = []
    group_specs: list[tuple[GroupSpec, tuple[Any, ...]]] = [(g, ("groups", i)) for i, g in enumerate(spec.groups)]
    if spec.rules:
        group_specs.append((GroupSpec(name=Path(doc.path).stem, rules=spec.rules), ()))
    if not group_specs:
        errors.append(ConfigError("no rules: a rule file needs [[groups]] or [[rules]]", file=doc.path, line=1))
    groups = []
    for gspec, gloc in group_specs:
        compiled: list[CompiledRule] = []
        names: set[str] = set()
        for i, rspec in enumerate(gspec.rules):
            rloc = (*gloc, "rules", i)
            line = doc.line_of((*rloc, "name"))

            def err(field_name: str, message: str, rspec: RuleSpec = rspec, rloc: tuple[Any, ...] = rloc) -> None:
                floc = (*rloc, *field_name.replace("for_", "for").split("."))
                errors.append(
                    ConfigError(message, file=doc.path, line=doc.line_of(floc), rule=rspec.name, field=field_name)
                )

            if rspec.name in names:
                err("name", f"rule {rspec.name!r} appears twice in group {gspec.name!r}")
                continue
            names.add(rspec.name)
            try:
                rule = compile_rule(env, rspec, gspec, doc.path, line)
            except RuleCompileError as exc:
                err(exc.field, exc.message)
                continue
            problems = check_rule(rule, env)
            for field_name, message in problems:
                err(field_name, message)
            if not problems:
                compiled.append(rule)
        groups.append(RuleGroup(gspec.name, doc.path, gspec.interval or default_interval, compiled))
    return groups, errors


def check_rule(rule: CompiledRule, env: SandboxedEnvironment) -> list[tuple[str, str]]:
    """Names the condition reads that nothing defines, and templates that fail on sample data."""
    problems: list[tuple[str, str]] = []
    qnames = set(rule.queries)
    known = {*qnames, "labels", "now"}
    if rule.spec.value is not None:
        for name in sorted(expression_names(env, rule.spec.value) - known):
            problems.append(("value", f"{name!r} is undefined: the value may read {sorted(known)}"))
    known_cond = known | {"value"}
    for name in sorted(expression_names(env, rule.spec.condition) - known_cond):
        problems.append(("condition", f"{name!r} is undefined: the condition may read {sorted(known_cond)}"))
    if problems:
        return problems
    series_labels = sample_labels(rule)
    labels = rule.alert_labels(series_labels)
    if isinstance(series_labels, PermissiveLabels):
        labels = PermissiveLabels(labels)
    candidate = Candidate(labels, dict.fromkeys(qnames, 1.0), 1.0)
    context = rule.render_context(candidate, labels, 0.0)
    try:
        rule.is_active(candidate, labels, 0.0)
    except Exception as exc:
        problems.append(("condition", f"fails on sample data: {type(exc).__name__}: {exc}"))
    for key, template in rule.annotations.items():
        field_name = key if key in ("summary", "description", "runbook_url") else f"annotations.{key}"
        try:
            rendered = render_bounded(template, context, report=False)
        except Exception as exc:
            problems.append((field_name, f"template fails on sample data: {exc}"))
            continue
        if rendered.breach is not None:
            problems.append((field_name, f"template fails on sample data: {rendered.breach.describe()}"))
    return problems


def sample_labels(rule: CompiledRule) -> dict[str, str]:
    """Labels a rule's alerts may carry: exact when every query aggregates ``by``, permissive otherwise."""
    specs = [q.spec for q in rule.queries.values()]
    if all(s.aggregate is not None for s in specs):
        names = {label for s in specs for label in (s.by or ())}
        return {n: f"<{n}>" for n in sorted(names)}
    labels: dict[str, str] = PermissiveLabels()
    for q in rule.queries.values():
        labels.update(q.selector.equality_labels())
    return labels
