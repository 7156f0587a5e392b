"""The daemon's own event consumer on a private redis-server, fed a burst by Celery's EventDispatcher from
another thread the way prefork workers send it: the burst is ingested and evaluated per batch, so the payment
rule it wakes is evaluated far fewer times than there are events, and every failure is counted."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from celery import Celery

from alertd.daemon import build
from tests.helpers import OFFLINE, write
from tests.services import RedisServer

pytestmark = pytest.mark.integration

BURST = 480  # payment tasks, a task-received and a task-failed each
RULES = """
[[groups]]
name = "payments"
[[groups.rules]]
name = "PaymentFailed"
select = 'celery_task_failures_total{task_name="tasks.payment.capture"}'
condition = "value > 0"
"""


def send_burst(broker: str) -> None:
    app = Celery("burst", broker=broker, set_as_current=False)
    with app.connection_for_write() as conn:
        d = app.events.Dispatcher(conn, hostname="busy@burst", enabled=True, buffer_while_offline=False,
                                  buffer_group=["task"], buffer_limit=24)
        for n in range(BURST):
            d.send("task-received", uuid=f"b-{n}", name="tasks.payment.capture", args="()", kwargs="{}", retries=0)
            d.send("task-failed", uuid=f"b-{n}", exception="CardDeclined('no funds')")
        d.flush()


def send_one(broker: str, n: int) -> None:
    app = Celery("prime", broker=broker, set_as_current=False)
    with app.connection_for_write() as conn:
        app.events.Dispatcher(conn, hostname="prime@burst", enabled=True).send("task-started", uuid=f"p-{n}")


async def until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_a_burst_is_evaluated_per_batch_not_per_event(tmp_path: Path, redis_server: RedisServer) -> None:
    write(tmp_path / "rules" / "r.toml", RULES)
    config = OFFLINE.replace("[events]\nenabled = false", "[events]\ntick_interval = \"0.2s\"") + f"""
[celery]
broker_url = "{redis_server.url}"
"""
    daemon = build(str(write(tmp_path / "alertd.toml", config)))
    assert daemon.events is not None
    consumer = daemon.events
    task = asyncio.create_task(consumer.run())
    registry = daemon.metrics.registry

    def events(kind: str) -> float:
        return registry.get_sample_value("alertd_events_total", {"type": kind}) or 0.0

    try:
        await until(lambda: consumer.connected, 10, "the event stream")
        n = 0
        while not events("task-started"):  # the subscription takes effect a moment after the stream is up
            await asyncio.to_thread(send_one, redis_server.url, n)
            n += 1
            await asyncio.sleep(0.05)  # pacing the resends, not waiting for a condition
        before = daemon.counters.evaluations

        await asyncio.to_thread(send_burst, redis_server.url)  # the loop runs on while the thread sends
        await until(lambda: events("task-failed") == BURST, 20, f"{BURST} failures")

        woken = daemon.counters.evaluations - before
        handoff = consumer._handoff
        assert handoff is not None
        print(f"\n{2 * BURST} events, {handoff.handoffs} hand-offs, {woken} evaluations of the payment rule")
        assert 1 <= woken <= BURST // 10
        [alert] = [r for r in daemon.engine.alerts() if r.labels["alertname"] == "PaymentFailed"]
        assert alert.state.value == "firing" and alert.value == BURST
    finally:
        consumer.stop()
        await task
        await daemon.close()
