"""A template reads the alert's labels and annotations and cannot change them."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.sandbox import SecurityError

from alertd.alerts.engine import RuleEngine
from alertd.models import Sample
from alertd.series.store import SeriesStore
from alertd.state.memory import MemoryStateStore
from alertd.templating.env import make_environment
from tests.helpers import ruleset

MUTATIONS = [
    "{{ labels.update({'severity': 'info'}) }}",
    "{% set _ = labels.pop('severity') %}",
    "{{ labels.clear() }}",
    "{{ labels.setdefault('team', 'nobody') }}",
    "{% set ns = namespace(l=labels) %}{{ ns.l.update({'x': '1'}) }}",
    "{{ labels|attr('update') }}",
    "{{ alerts[0].labels.update({'x': '1'}) }}{{ alerts.append(1) }}",
]


@pytest.mark.parametrize("template", MUTATIONS)
def test_the_context_is_read_only(template: str) -> None:
    labels = {"alertname": "Backlog", "severity": "page"}
    alerts = [{"labels": dict(labels)}]
    with pytest.raises(SecurityError, match="is unsafe"):
        make_environment().from_string(template).render(labels=labels, alerts=alerts)
    assert labels == {"alertname": "Backlog", "severity": "page"}
    assert alerts == [{"labels": labels}]


def test_a_rule_whose_summary_changes_labels_at_run_time_keeps_its_labels(tmp_path: Path) -> None:
    # Harmless on check's sample data (value 1); at run time it tries to drop the severity that routing reads.
    rules = ruleset(tmp_path, """
        [[groups]]
        name = "q"
        [[groups.rules]]
        name = "Backlog"
        select = 'celery_queue_depth{queue="critical"}'
        condition = "value > 100"
        severity = "critical"
        summary = "{% if value > 100 %}{% set _ = labels.pop('severity') %}{% endif %}depth {{ value | int }}"
        """)
    store = SeriesStore(retention=3600, lookback=300)
    store.add(Sample("celery_queue_depth", {"queue": "critical"}, 500.0, 100.0))
    engine = RuleEngine(rules, store, MemoryStateStore())
    engine.evaluate(100.0)
    [record] = engine.alerts()
    assert record.labels["severity"] == "critical"
    assert record.annotations["summary"].startswith("[summary template failed: SecurityError")
