"""End to end: a private redis-server, a real prefork worker running the test app, a loopback PagerDuty, and
``alertd run`` as a subprocess, configured the way a user would for a payments team."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.peers.pagerduty import PagerDutyPeer
from tests.services import RedisServer
from tests.workers import CeleryWorker

ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345"

PAYMENT_RULE = """
[[groups]]
name = "payments"
interval = "{interval}"

[[groups.rules]]
name = "PaymentTaskFailed"
select = 'celery_task_failures_total{{task_name=~"tasks\\\\.payment\\\\..*"}}'
function = "increase"
window = "{window}"
aggregate = "sum"
by = ["task_name", "exception_type"]
condition = "value > 0"
keep_firing_for = "{keep}"
severity = "critical"
summary = "Payment task {{{{ labels.task_name }}}} failed: {{{{ labels.exception_type }}}}"
"""


def write_config(
    workdir: Path, broker_url: str, queue: str, pagerduty_url: str, *, window: str = "4s", keep: str = "0s", extra: str = ""
) -> Path:
    """alertd.toml and rules/payments.toml in ``workdir``: payment failures page PagerDuty at once."""
    (workdir / "rules").mkdir(exist_ok=True)
    (workdir / "rules" / "payments.toml").write_text(PAYMENT_RULE.format(interval="0.5s", window=window, keep=keep))
    cfg = workdir / "alertd.toml"
    cfg.write_text(f"""
rule_files = ["rules/*.toml"]
evaluation_interval = "0.5s"
shutdown_grace = "2s"
[state]
url = "state.db"
[celery]
broker_url = "{broker_url}"
queues = ["{queue}"]
[events]
tick_interval = "0.2s"
[collectors.inspect]
enabled = false
[http]
listen = "127.0.0.1:0"
[reload]
watch = false
[receivers.pager]
type = "pagerduty"
url = "{pagerduty_url}"
routing_key = "{ROUTING_KEY}"
[route]
receiver = "pager"
group_by = ["alertname", "task_name"]
group_wait = "0s"
group_interval = "1s"
[notify]
retry_base = "0.2s"
retry_max = "1s"
{extra}
""")
    return cfg


def actions(peer: PagerDutyPeer) -> list[str]:
    """The accepted PagerDuty events' actions, oldest first."""
    return [event["event_action"] for event in peer.events]


def outbox(db: Path) -> list[tuple[str, str]]:
    """(status, receiver) of every outbox row."""
    with sqlite3.connect(db) as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT status, receiver FROM outbox ORDER BY created_at")]


def firing(db: Path, alertname: str) -> list[dict[str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT labels FROM alerts WHERE state = 'firing'").fetchall()
    return [lab for lab in (json.loads(r[0]) for r in rows) if lab.get("alertname") == alertname]


def metrics(url: str) -> dict[str, float]:
    """alertd's own metrics from ``GET /metrics``, by sample name and labels (``name{a="b"}``)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=5).text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def evaluations(url: str) -> float:
    """How many evaluations alertd has run (every group and every event-woken one)."""
    return sum(v for k, v in metrics(url).items() if k.startswith("alertd_evaluation_duration_seconds_count"))


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyPeer]:
    with PagerDutyPeer() as peer:
        yield peer


@pytest.fixture(scope="module")
def worker(module_redis: RedisServer, module_worker_factory: Callable[..., CeleryWorker]) -> CeleryWorker:
    return module_worker_factory(module_redis.url, "e2e")
