"""``alertd ack`` reaches the receivers that were paged: PagerDuty gets an ``acknowledge`` for the incident's
dedup_key, the webhook gets the status and a typed reason; escalation stops. A real daemon on loopback, the
CLI as an operator runs it, and loopback PagerDuty and webhook peers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from click.testing import CliRunner

from alertd.cli import main
from alertd.config.model import HttpSettings
from alertd.daemon import build
from alertd.http.server import start_http_server
from alertd.models import Sample
from alertd.notifiers.reasons import Reason, ReasonKind
from tests.helpers import OFFLINE, write
from tests.peers.pagerduty import PagerDutyPeer
from tests.peers.webhook import WebhookPeer

RULES = """
[[groups]]
name = "payments"
[[groups.rules]]
name = "PaymentTaskFailed"
select = 'celery_task_failures_total'
condition = "value > 0"
severity = "critical"
summary = "payment failed"
"""
KEY = "R0UT1NGKEY0123456789abcdef012345"


async def wait_for(condition: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_alertd_ack_sends_pagerduty_an_acknowledge_and_the_webhook_the_reason(tmp_path: Path) -> None:
    with PagerDutyPeer() as pager, WebhookPeer() as hook:
        write(tmp_path / "rules" / "p.toml", RULES)
        cfg = write(tmp_path / "alertd.toml", OFFLINE + f"""
[receivers.pager]
type = "pagerduty"
url = "{pager.enqueue_url}"
routing_key = "{KEY}"
[receivers.hook]
type = "webhook"
url = "{hook.hook_url}"
[route]
receiver = "pager"
group_wait = "0s"
group_by = ["alertname"]
[[route.routes]]
matchers = ['alertname="PaymentTaskFailed"']
receiver = "pager"
continue = true
[[route.routes]]
matchers = ['alertname="PaymentTaskFailed"']
receiver = "hook"
""")
        daemon = build(str(cfg))
        server = await start_http_server(daemon, HttpSettings(listen="127.0.0.1:0"))
        daemon.start_tasks()
        try:
            daemon.ingest([Sample("celery_task_failures_total", {"task_name": "tasks.payment.charge"}, 1.0,
                                  time.time())])
            daemon.evaluate_all()
            await wait_for(lambda: len(pager.events) == 1 and len(hook.payloads) == 1)
            trigger = pager.events[0]
            assert trigger["event_action"] == "trigger"
            [fingerprint] = [a.fingerprint for a in daemon.notifiable_alerts(daemon.pipeline)  # type: ignore[arg-type]
                             if a.labels["alertname"] == "PaymentTaskFailed"]

            result = await asyncio.to_thread(CliRunner().invoke, main, [
                "ack", fingerprint, "--comment", "on it", "--url", server.url, "--json"])
            assert result.exit_code == 0, result.output

            await wait_for(lambda: len(pager.events) == 2 and len(hook.payloads) == 2)
            ack = pager.events[1]
            assert ack["event_action"] == "acknowledge" and ack["dedup_key"] == trigger["dedup_key"]
            told = hook.payloads[1]
            assert told["status"] == "firing"
            assert told["alertd"]["reason"].startswith("acknowledged by ") and told["alertd"]["reason"].endswith(
                ": on it")
            assert told["alertd"]["reasonKind"] == "acknowledged"
            assert pager.incidents[trigger["dedup_key"]] == "acknowledged"
        finally:
            await daemon.stop(grace=5)
            await server.close()


def test_reasons_are_typed_and_read_back_from_their_text() -> None:
    assert Reason(ReasonKind.FIRST) == "first notification"
    escalated = Reason.escalation(2, "15m")
    assert (escalated.kind, escalated.level, str(escalated)) == (
        ReasonKind.ESCALATION, 2, "escalated to level 2: unacknowledged for 15m")
    for text, kind in (("acknowledged by ann", ReasonKind.ACKNOWLEDGED), ("alerts resolved", ReasonKind.RESOLVED),
                       ("escalated to level 3: unacknowledged for 1h", ReasonKind.ESCALATION),
                       ("fallback for pager: first notification", ReasonKind.FALLBACK),
                       ("something an older alertd wrote", ReasonKind.OTHER)):
        assert Reason.parse(text).kind is kind, text
    assert Reason.parse("escalated to level 3: x").level == 3
    assert Reason.parse("whatever", "repeat").kind is ReasonKind.REPEAT  # the kind stored beside the text wins
