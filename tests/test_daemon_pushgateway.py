"""Through the daemon's chain: a Pushgateway group that stops pushing reads as absent to rules, never as its last value."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, push_to_gateway

from alertd.clock import VirtualClock
from alertd.daemon import build
from alertd.models import AlertState
from tests.helpers import write
from tests.services import Pushgateway

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("debug_loop")]


def push(gateway: Pushgateway, pid: str, failures: int) -> None:
    registry = CollectorRegistry()
    failed = Counter("celery_tasks_failed_total", "Tasks failed", ["task_name", "exception_type"], registry=registry)
    failed.labels("tasks.report", "KeyError").inc(failures)
    push_to_gateway(gateway.url, job="celery", registry=registry, grouping_key={"instance": "w1", "pid": pid})


async def test_a_stale_group_is_absent_to_rules_and_alerts_on_itself(tmp_path: Path, pushgateway: Pushgateway) -> None:
    write(tmp_path / "rules" / "r.toml", """
        [[groups]]
        name = "g"
        [[groups.rules]]
        name = "FailuresSeen"
        select = 'celery_tasks_failed_total{pid="4242"}'
        condition = "value > 0"
        summary = "{{ value | int }} failures"
        [[groups.rules]]
        name = "PushgatewayGroupStale"
        select = "alertd_pushgateway_group_age_seconds"
        condition = "value > 300"
        """)
    cfg = write(tmp_path / "alertd.toml", f"""
        rule_files = ["rules/*.toml"]
        [state]
        url = "memory://"
        [events]
        enabled = false
        [collectors.pushgateway]
        url = "{pushgateway.url}"
        stale_after = "5m"
        [collectors.workers]
        enabled = false
        [collectors.inspect]
        enabled = false
        [collectors.queues]
        enabled = false
        [collectors.broker]
        enabled = false
        """)
    push(pushgateway, "4242", 3)
    clock = VirtualClock(time.time())
    daemon = build(str(cfg), clock)
    try:
        await daemon.collect("pushgateway")
        await daemon.evaluate_group(daemon.engine.rules.groups[0])
        firing = daemon.engine.alerts([AlertState.FIRING])
        assert [r.labels["alertname"] for r in firing] == ["FailuresSeen"]
        assert firing[0].annotations["summary"] == "3 failures"

        clock.advance(301)  # within the series lookback (5m): only staleness can hide the old value
        await daemon.collect("pushgateway")
        await daemon.evaluate_group(daemon.engine.rules.groups[0])
        states = {r.labels["alertname"]: r.state for r in daemon.engine.alerts()}
        assert states == {"FailuresSeen": AlertState.RESOLVED, "PushgatewayGroupStale": AlertState.FIRING}
    finally:
        await daemon.close()
