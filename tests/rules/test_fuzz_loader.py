"""No input makes the rule loader fail with anything but alertd's own error."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertd.errors import ConfigError
from alertd.rules.load import load_rules
from alertd.templating.env import make_environment

ENV = make_environment()
FIELDS = ["name", "select", "function", "window", "quantile", "aggregate", "by", "queries", "value", "condition",
          "for", "keep_firing_for", "severity", "labels", "summary", "description", "runbook_url", "annotations",
          "default", "groups", "rules", "interval"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.text(max_size=30),
    st.sampled_from(["5m", "value > 1", "{{ value }}", "{{ x }}", "rate", "increase", "histogram_quantile",
                     'x{a=~"("}', 'celery_queue_depth{queue="a"}', "sum", "critical", "{% if %}", "1 / 0"]),
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(FIELDS), children, max_size=6),
    max_leaves=25,
)


def _load(path: Path) -> None:
    try:
        load_rules([str(path)], ENV)
    except ConfigError as exc:
        assert str(exc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), values, max_size=4))
def test_structured_yaml(data: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.yaml"
        path.write_text(yaml.safe_dump(data))
        _load(path)


rule = st.fixed_dictionaries(
    {"name": st.sampled_from(["R", "bad name", ""]), "condition": st.sampled_from(["value > 1", "x", "", "value >"])},
    optional={k: values for k in FIELDS if k not in ("name", "condition")},
)


@settings(max_examples=300, deadline=None)
@given(st.lists(rule, max_size=3))
def test_rules_with_random_fields(rules: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.yaml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": rules}]}))
        _load(path)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["r.toml", "r.yaml"]))
def test_arbitrary_text(text: str, name: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        _load(path)
