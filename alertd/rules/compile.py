"""Validated rule specs in, compiled rules out: selectors parsed, expressions and templates compiled once."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Template
from jinja2.sandbox import SandboxedEnvironment

from alertd.models import LabelsKey, fingerprint
from alertd.rules.model import GroupSpec, RuleSpec
from alertd.rules.query import CompiledQuery, QueryResults
from alertd.templating.env import compile_expression


@dataclass(frozen=True, slots=True)
class Candidate:
    """One label set of one rule, with everything its condition read."""

    labels: Mapping[str, str]
    variables: dict[str, float]
    value: float


@dataclass
class CompiledRule:
    """A rule ready to evaluate; ``id`` (group/name) keys its alerts' state."""

    spec: RuleSpec
    group: str
    file: str
    queries: dict[str, CompiledQuery]
    value_expr: Callable[..., Any] | None
    condition: Callable[..., Any]
    annotations: dict[str, Template]
    static_labels: dict[str, str]
    line: int | None = None
    id: str = field(init=False)

    def __post_init__(self) -> None:
        self.id = f"{self.group}/{self.spec.name}"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def metrics(self) -> set[str]:
        return {q.metric for q in self.queries.values()}

    @property
    def longest_window(self) -> float:
        return max((q.window for q in self.queries.values()), default=0.0)

    def alert_labels(self, series_labels: Mapping[str, str]) -> dict[str, str]:
        labels = dict(series_labels)
        labels.update(self.static_labels)
        return labels

    def fingerprint(self, alert_labels: Mapping[str, str]) -> str:
        return fingerprint(self.id, alert_labels)

    def candidates(self, results: Mapping[str, QueryResults], now: float) -> list[Candidate]:
        """Join the queries' results on label sets and compute each one's value (errors propagate)."""
        keys: set[LabelsKey] = set()
        for res in results.values():
            keys.update(res)
        out = []
        for key in keys:
            variables: dict[str, float] = {}
            labels: Mapping[str, str] | None = None
            for qname, res in results.items():
                r = res.get(key)
                if r is not None:
                    variables[qname] = r.value
                    labels = r.labels
                else:
                    default = self.queries[qname].spec.default
                    if default is None:
                        break
                    variables[qname] = default
            else:
                assert labels is not None
                if self.value_expr is not None:
                    value = float(self.value_expr({**variables, "labels": labels, "now": now}))
                else:
                    value = variables.get("value", next(iter(variables.values())))
                out.append(Candidate(labels, variables, value))
        return out

    def is_active(self, candidate: Candidate, labels: Mapping[str, str], now: float) -> bool:
        value = candidate.value
        if math.isnan(value):
            return False
        return bool(self.condition({**candidate.variables, "value": value, "labels": labels, "now": now}))

    def render_context(self, candidate: Candidate, labels: Mapping[str, str], now: float) -> dict[str, Any]:
        return {
            **candidate.variables,
            "value": candidate.value,
            "labels": labels,
            "now": now,
            "rule": self.spec.name,
            "severity": self.spec.severity,
        }


def compile_rule(
    env: SandboxedEnvironment, spec: RuleSpec, group: GroupSpec, file: str, line: int | None = None
) -> CompiledRule:
    """Compile one rule; raises (field, message) as RuleCompileError for the first thing that fails."""
    queries = {}
    for qname, qspec in spec.query_specs().items():
        try:
            queries[qname] = CompiledQuery.compile(qspec)
        except ValueError as exc:
            where = "select" if qname == "value" and spec.select is not None else f"queries.{qname}.select"
            raise RuleCompileError(where, str(exc)) from None
    value_expr = None
    if spec.value is not None:
        value_expr = _expression(env, spec.value, "value")
    condition = _expression(env, spec.condition, "condition")
    annotations: dict[str, Template] = {}
    for key, source in spec.annotation_sources().items():
        try:
            annotations[key] = env.from_string(source)
        except Exception as exc:  # jinja raises TemplateSyntaxError and friends
            raise RuleCompileError(_annotation_field(key), f"template does not compile: {exc}") from None
        annotations[key].name = f"{file}: {spec.name}: {_annotation_field(key)}"  # named in logs and tracebacks
    static_labels = {**group.labels, **spec.labels, "alertname": spec.name, "severity": spec.severity}
    return CompiledRule(
        spec=spec,
        group=group.name,
        file=file,
        queries=queries,
        value_expr=value_expr,
        condition=condition,
        annotations=annotations,
        static_labels=static_labels,
        line=line,
    )


def _annotation_field(key: str) -> str:
    return key if key in ("summary", "description", "runbook_url") else f"annotations.{key}"


def _expression(env: SandboxedEnvironment, source: str, field_name: str) -> Callable[..., Any]:
    try:
        return compile_expression(env, source)
    except Exception as exc:
        raise RuleCompileError(field_name, f"does not compile: {exc}") from None


class RuleCompileError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
