"""Events from the receiving thread to the loop in batches, on a private redis-server with Celery's own
EventDispatcher as the producer: a burst crosses in far fewer loop callbacks than events and every event is
counted, and a single event after a quiet spell crosses at once, alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from kombu import Connection

from alertd.models import Sample
from tests.collectors.events.consumer_thread import ConsumerThread
from tests.collectors.events.junk import HOST
from tests.services import RedisServer, wait_until

pytestmark = pytest.mark.integration

BURST = 2400  # task-failed events, sent as prefork workers send them: 24 to a message


class Batches:
    """Wraps the sink: the events of each batch that reached it (one sink call per hand-off)."""

    def __init__(self, c: ConsumerThread) -> None:
        self.lock = threading.Lock()
        self.sizes: list[int] = []
        self.pending = 0
        self.inner = c.consumer.sink
        c.consumer.sink = self
        c.consumer.observe = self.observe

    def observe(self, event: dict[str, Any]) -> None:
        if event.get("type") == "task-failed":
            self.pending += 1

    def __call__(self, samples: list[Sample]) -> None:
        with self.lock:
            if self.pending:
                self.sizes.append(self.pending)
                self.pending = 0
        self.inner(samples)

    def total(self) -> int:
        with self.lock:
            return sum(self.sizes)


@pytest.fixture
def sender(redis_server: RedisServer) -> Iterator[tuple[Celery, Connection]]:
    app = Celery("handoff-sender", broker=redis_server.url, set_as_current=False)
    with app.connection_for_write() as conn:
        yield app, conn


def test_a_burst_crosses_in_far_fewer_loop_callbacks_than_events_and_every_event_counts(
    redis_server: RedisServer, sender: tuple[Celery, Connection]
) -> None:
    app, conn = sender
    with ConsumerThread(redis_server.url) as c:
        batches = Batches(c)
        handoff = c.consumer._handoff
        assert handoff is not None
        before = handoff.handoffs
        dispatcher = app.events.Dispatcher(conn, hostname=HOST, enabled=True, buffer_while_offline=False,
                                           buffer_group=["task"], buffer_limit=24)
        for n in range(BURST):
            dispatcher.send("task-failed", uuid=f"u-{n}", exception="CardDeclined('no funds')")
        dispatcher.flush()
        wait_until(lambda: batches.total() == BURST, timeout=20, what=f"{BURST} events through the sink")
        c.wait_value("celery_task_failures_total", BURST, timeout=5, task_name="unknown",
                     exception_type="CardDeclined")
        callbacks = handoff.handoffs - before
        with batches.lock:
            sizes = list(batches.sizes)
        print(f"\n{BURST} events in {callbacks} loop callbacks, {len(sizes)} sink calls; "
              f"largest batch {max(sizes)}, mean {BURST / len(sizes):.1f}")
        assert callbacks <= BURST // 10
        assert len(sizes) <= callbacks
        assert c.consumer.metrics.value("alertd_events_lost_total") == 0


def test_one_event_after_a_quiet_spell_is_handed_over_at_once_and_alone(
    redis_server: RedisServer, sender: tuple[Celery, Connection]
) -> None:
    app, conn = sender
    with ConsumerThread(redis_server.url) as c:
        batches = Batches(c)
        dispatcher = app.events.Dispatcher(conn, hostname=HOST, enabled=True, buffer_while_offline=False)
        latencies = []
        for n in range(5):
            sent = time.time()
            dispatcher.send("task-failed", uuid=f"u-{n}", exception="CardDeclined('no funds')")
            # The producer waits for it: it must arrive within the wait, handed over by itself.
            arrived = c.wait_value("celery_task_failures_total", n + 1, timeout=1.0, task_name="unknown",
                                   exception_type="CardDeclined")
            latencies.append(arrived - sent)
        print(f"\nsend -> sink after idle: {', '.join(f'{1000 * s:.1f} ms' for s in latencies)}")
        with batches.lock:
            assert batches.sizes == [1] * 5
        assert sorted(latencies)[2] < 0.05  # the median: one event costs a few milliseconds, not a poll
