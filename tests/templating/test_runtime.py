"""At run time a template past its budget is sent cut short with a marker, counted and alerted on, and the other
alerts' notifications go out as usual."""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, push_to_gateway

from alertd.clock import VirtualClock
from alertd.daemon import build
from alertd.notifiers.base import ReceiverSettings
from alertd.notify.render import TEMPLATE_BUDGET_EXCEEDED
from alertd.templating.budget import MARKER
from alertd.testing import RecordingNotifier, make_alert
from tests.helpers import write
from tests.notify.helpers import harness
from tests.services import Pushgateway

# Cheap on check's sample data (value 1), 10^10 iterations for a value of 99999.
NESTED = "{% for i in range(N|int) %}{% for j in range(N|int) %}{% endfor %}{% endfor %}"
SLOW_TEXT = "{% for a in alerts %}{{ a.name }}" + NESTED.replace("N", "a.value") + "{% endfor %}"


class ChatNotifier(RecordingNotifier):
    type_name = "chat"
    templates: ClassVar[dict[str, str]] = {"text": "{% for a in alerts %}{{ a.name }} {% endfor %}"}


async def test_a_breaching_receiver_template_does_not_hold_back_another_receiver() -> None:
    route = {"receiver": "pages", "group_wait": "0s",
             "routes": [{"matchers": ['alertname="Stuck"'], "receiver": "slow", "group_wait": "0s"}]}
    h = harness({"route": route}, notifiers={
        "pages": ChatNotifier("pages", ReceiverSettings()),
        "slow": ChatNotifier("slow", ReceiverSettings(templates={"text": SLOW_TEXT})),
    })
    h.fire_many([make_alert(name="Stuck", value=99999.0, starts_at=h.now)])
    h.fire("PaymentFailed", task_name="tasks.payment.charge")
    started = time.perf_counter()
    await h.tick()
    took = time.perf_counter() - started
    [page] = h["pages"].sent
    assert page.rendered["text"] == "PaymentFailed "
    [cut] = h["slow"].sent
    assert cut.rendered["text"] == "Stuck" + MARKER.format(limit="loop iterations")
    assert h.pipeline.metrics.value("alertd_template_budget_exceeded_total", receiver="slow", template="text",
                                    limit="loop iterations") == 1
    [internal] = h.pipeline.internal.firing()
    assert internal.labels["alertname"] == TEMPLATE_BUDGET_EXCEEDED
    assert internal.labels["receiver"] == "slow"
    assert took < 5, f"one flush took {took:.1f}s"  # unbounded, the slow template alone runs for hours


def push(gateway: Pushgateway) -> None:
    registry = CollectorRegistry()
    Gauge("stuck_value", "A value that makes a template loop", registry=registry).set(99999)
    failed = Counter("celery_tasks_failed_total", "Tasks failed", ["task_name"], registry=registry)
    failed.labels("tasks.payment.charge").inc()
    push_to_gateway(gateway.url, job="celery", registry=registry, grouping_key={"instance": "w1", "pid": "1"})


@pytest.mark.integration
async def test_the_daemon_pages_a_payment_failure_while_a_rule_and_a_receiver_template_breach(
    tmp_path: Path, pushgateway: Pushgateway
) -> None:
    write(tmp_path / "rules" / "r.toml", f"""
        [[groups]]
        name = "g"
        [[groups.rules]]
        name = "Stuck"
        select = "stuck_value"
        condition = "value > 0"
        summary = "stuck {NESTED.replace("N", "value")}"
        [[groups.rules]]
        name = "PaymentFailed"
        select = 'celery_tasks_failed_total{{task_name="tasks.payment.charge"}}'
        condition = "value > 0"
        severity = "critical"
        summary = "a payment failed"
        """)
    cfg = write(tmp_path / "alertd.toml", f"""
        rule_files = ["rules/*.toml"]
        [state]
        url = "memory://"
        [events]
        enabled = false
        [collectors.pushgateway]
        url = "{pushgateway.url}"
        [collectors.workers]
        enabled = false
        [collectors.inspect]
        enabled = false
        [collectors.queues]
        enabled = false
        [collectors.broker]
        enabled = false
        [http]
        enabled = false
        [receivers.pages]
        type = "console"
        path = "{tmp_path / 'pages.log'}"
        [receivers.slow]
        type = "console"
        path = "{tmp_path / 'slow.log'}"
        [receivers.slow.templates]
        text = "{SLOW_TEXT}"
        [route]
        receiver = "pages"
        group_wait = "0s"
        [[route.routes]]
        matchers = ['alertname="Stuck"']
        receiver = "slow"
        group_wait = "0s"
        """)
    push(pushgateway)
    clock = VirtualClock(time.time())
    daemon = build(str(cfg), clock)
    assert daemon.pipeline is not None
    try:
        await daemon.collect("pushgateway")
        started = time.perf_counter()
        daemon.evaluate_all()
        await daemon.pipeline.tick()
        took = time.perf_counter() - started
        pages = (tmp_path / "pages.log").read_text()
        assert "PaymentFailed (critical): a payment failed" in pages
        assert "Stuck" + MARKER.format(limit="loop iterations") in (tmp_path / "slow.log").read_text()
        summary = {r.labels["alertname"]: r.annotations["summary"] for r in daemon.engine.alerts()}["Stuck"]
        assert summary == "stuck " + MARKER.format(limit="loop iterations")
        assert took < 5, f"an evaluation and a flush took {took:.1f}s"
        # The next evaluation hands the receiver's breach, as an internal alert, to the root receiver.
        clock.advance(1)
        daemon.evaluate_all()
        await daemon.pipeline.tick()
        assert TEMPLATE_BUDGET_EXCEEDED in (tmp_path / "pages.log").read_text()
    finally:
        await daemon.close()
