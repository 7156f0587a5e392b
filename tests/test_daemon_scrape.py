"""Through the daemon's chain: scrape targets' series reach rules; a series a target stops exposing, and every
series of a target that fails, read as absent; the failing target alerts on itself while the others go on."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from alertd.clock import VirtualClock
from alertd.daemon import build
from alertd.models import AlertState
from tests.helpers import write
from tests.peers.exposition import ExpositionPeer

pytestmark = pytest.mark.usefixtures("debug_loop")

TWO_QUEUES = 'jobs_waiting{queue="a"} 5\njobs_waiting{queue="b"} 2\n'


async def test_vanished_series_and_failed_targets_are_absent_and_the_failure_alerts(tmp_path: Path) -> None:
    write(tmp_path / "rules" / "r.toml", """
        [[groups]]
        name = "g"
        [[groups.rules]]
        name = "JobsWaiting"
        select = "jobs_waiting"
        condition = "value > 0"
        [[groups.rules]]
        name = "TargetDown"
        select = "scrape_up"
        condition = "value == 0"
        [[groups.rules]]
        name = "CollectorFailing"
        select = "alertd_collector_success"
        condition = "value == 0"
        """)
    with ExpositionPeer(TWO_QUEUES) as exporter, ExpositionPeer('node_load1 0.25\n') as node:
        cfg = write(tmp_path / "alertd.toml", f"""
            rule_files = ["rules/*.toml"]
            [state]
            url = "memory://"
            [events]
            enabled = false
            [collectors.workers]
            enabled = false
            [collectors.inspect]
            enabled = false
            [collectors.queues]
            enabled = false
            [collectors.broker]
            enabled = false
            [collectors.scrape.targets.exporter]
            url = "{exporter.url}/metrics"
            [collectors.scrape.targets.node]
            url = "{node.url}/metrics"
            """)
        clock = VirtualClock(time.time())
        daemon = build(str(cfg), clock)

        async def cycle() -> dict[tuple[str, str], AlertState]:
            clock.advance(15)  # well within the series lookback (5m): only staleness hides an old value
            await daemon.collect_all()
            await daemon.evaluate_group(daemon.engine.rules.groups[0])
            return {
                (r.labels["alertname"], r.labels.get("queue") or r.labels.get("target") or r.labels.get("collector", "")):
                r.state for r in daemon.engine.alerts()
            }

        try:
            assert sorted(daemon.runners) == ["scrape:exporter", "scrape:node"]
            assert await cycle() == {("JobsWaiting", "a"): AlertState.FIRING, ("JobsWaiting", "b"): AlertState.FIRING}

            exporter.text = 'jobs_waiting{queue="a"} 5\n'  # queue b is gone from the page
            assert await cycle() == {("JobsWaiting", "a"): AlertState.FIRING, ("JobsWaiting", "b"): AlertState.RESOLVED}

            exporter.script(503)
            states = await cycle()
            assert states[("JobsWaiting", "a")] == AlertState.RESOLVED  # absent, not frozen at 5
            assert states[("TargetDown", "exporter")] == AlertState.FIRING
            assert states[("CollectorFailing", "scrape:exporter")] == AlertState.FIRING
            assert ("TargetDown", "node") not in states and ("CollectorFailing", "scrape:node") not in states
            load = daemon.series.get("node_load1", {"job": "node", "instance": f"127.0.0.1:{node.port}"})
            assert load is not None and not load.stale and load.newest() == (clock.now(), 0.25)
        finally:
            await daemon.close()
