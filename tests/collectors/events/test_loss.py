"""Loss is never silent, on a private redis-server with Celery's own EventDispatcher as the producer: a
subscription that Redis drops raises AlertdEventsLost and counts the reconnection and the events sent
meanwhile, and the stream goes on; a jump in a sender's event clock counts the events missing."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Connection

from alertd.collectors.events.clocks import CLOCK_SLACK
from alertd.collectors.events.consumer import EVENTS_LOST
from alertd.notify import InternalAlerts
from tests.collectors.events.consumer_thread import ConsumerThread
from tests.collectors.events.junk import HOST, send_failure
from tests.services import RedisServer, wait_until
from tests.workers import CeleryWorker

pytestmark = pytest.mark.integration


class Clocks:
    """The observe hook: the clock of every event that reached the loop, in order, and the count of each type."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[int] = []
        self.types: Counter[str] = Counter()

    def __call__(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.seen.append(event["clock"])
            self.types[event["type"]] += 1


@pytest.fixture
def sender(redis_server: RedisServer) -> Iterator[tuple[Celery, Connection]]:
    app = Celery("loss-sender", broker=redis_server.url, set_as_current=False)
    with app.connection_for_write() as conn:
        yield app, conn


def lost_alerts(internal: InternalAlerts) -> list[str]:
    return [a.labels["alertname"] for a in internal.firing() if a.labels["alertname"] == EVENTS_LOST]


def test_a_dropped_subscription_raises_the_loss_alert_counts_what_was_sent_meanwhile_and_the_stream_goes_on(
    redis_server: RedisServer, sender: tuple[Celery, Connection]
) -> None:
    app, conn = sender
    internal = InternalAlerts()
    with ConsumerThread(redis_server.url, internal=internal) as c:
        metrics = c.consumer.metrics
        first = send_failure(app, conn, 0)
        c.wait_value("celery_task_failures_total", 1, timeout=10, task_name=first, exception_type="CardDeclined")
        assert not lost_alerts(internal)

        # What Redis does to a subscriber past client-output-buffer-limit pubsub: it closes the connection.
        admin = redis.Redis.from_url(redis_server.url)
        assert admin.client_kill_filter(_type="pubsub") == 1
        lost = 5
        for n in range(1, 1 + lost):  # 2 events each, published while nobody is subscribed: gone
            send_failure(app, conn, n)

        wait_until(lambda: metrics.value("alertd_event_stream_reconnects_total") == 1, timeout=10,
                   what="the reconnection counted")
        assert lost_alerts(internal) == [EVENTS_LOST]
        # Until it subscribes again, events still go nowhere: the next one is resent until it is seen.
        after = f"tasks.payment.after_{lost}"
        wait_until(lambda: send_failure(app, conn, 99, after) and c.sink.latest(
            "celery_task_failures_total", task_name=after, exception_type="CardDeclined") is not None,
            timeout=10, interval=0.1, what="an event after the reconnection")
        wait_until(lambda: metrics.value("alertd_events_lost_total") > 0, timeout=10, what="the lost events")
        assert metrics.value("alertd_events_lost_total") >= 2 * lost - CLOCK_SLACK
        assert c.consumer.connects == 2
        for n in range(1, 1 + lost):
            assert c.sink.latest("celery_task_failures_total", task_name=f"tasks.payment.charge_{n}",
                                 exception_type="CardDeclined") is None
        print(f"\nlost {metrics.value('alertd_events_lost_total'):g} events, "
              f"summary: {[a.annotations for a in internal.firing()]}")


def test_a_gap_in_a_workers_clock_counts_the_events_missing_without_paging(
    redis_server: RedisServer, sender: tuple[Celery, Connection]
) -> None:
    app, conn = sender
    internal = InternalAlerts()
    clocks = Clocks()
    with ConsumerThread(redis_server.url, internal=internal, observe=clocks, loss_resolve_after=1.0) as c:
        metrics = c.consumer.metrics
        dispatcher = app.events.Dispatcher(conn, hostname=HOST, enabled=True, buffer_while_offline=False)
        dispatcher.send("task-failed", uuid="u-0", exception="CardDeclined('no funds')")
        wait_until(lambda: len(clocks.seen) == 1, timeout=10, what="the first event")
        app.clock.adjust(app.clock.value + 40)  # as if 40 events were sent that never arrived
        dispatcher.send("task-failed", uuid="u-1", exception="CardDeclined('no funds')")
        wait_until(lambda: len(clocks.seen) == 2, timeout=10, what="the second event")

        missing = clocks.seen[1] - clocks.seen[0] - 1
        assert missing >= 40
        wait_until(lambda: metrics.value("alertd_events_lost_total") > 0, timeout=10, what="the gap counted")
        assert metrics.value("alertd_events_lost_total") == missing - CLOCK_SLACK
        # An estimate (remote control commands move clocks unseen, alertd's own broadcasts among them): counted
        # and logged, never an alert.
        assert lost_alerts(internal) == [] and internal.alerts() == []
        assert metrics.value("alertd_event_stream_reconnects_total") == 0


def test_a_real_prefork_workers_events_and_heartbeats_are_not_counted_lost(
    redis_server: RedisServer, worker_factory: Callable[..., CeleryWorker]
) -> None:
    worker = worker_factory(redis_server.url, "loss-none", heartbeat_interval=1)
    internal = InternalAlerts()
    clocks = Clocks()
    with ConsumerThread(redis_server.url, internal=internal, observe=clocks) as c:
        c.wait_value("celery_worker_up", 1, timeout=10, worker=worker.name)
        for _ in range(40):
            worker.send("tasks.fail", "CardDeclined")
        c.wait_value("celery_task_failures_total", 40, timeout=20, task_name="tasks.fail",
                     exception_type="CardDeclined")
        heartbeats = clocks.types["worker-heartbeat"]
        wait_until(lambda: clocks.types["worker-heartbeat"] >= heartbeats + 3, timeout=10, what="3 more heartbeats")
        wait_until(lambda: not any(s.gaps for s in list(c.consumer.gaps.senders.values())), timeout=10,
                   what="every gap settled")
        with clocks.lock:
            in_order = clocks.seen == sorted(clocks.seen)
        print(f"\n{len(clocks.seen)} events, {'in' if in_order else 'out of'} clock order")
        assert c.consumer.metrics.value("alertd_events_lost_total") == 0
        assert not lost_alerts(internal)


def test_a_reconnection_after_a_broker_outage_is_counted_without_the_loss_alert(redis_server: RedisServer) -> None:
    internal = InternalAlerts()
    with ConsumerThread(redis_server.url, internal=internal) as c:
        redis_server.stop()
        c.wait_value("alertd_event_stream_up", 0, timeout=10)
        wait_until(lambda: c.consumer._failed_attempts >= 1, timeout=10, what="a failed connection attempt")
        redis_server.start()
        wait_until(lambda: c.consumer.connects == 2 and c.consumer.connected, timeout=10, what="the reconnection")
        wait_until(lambda: c.consumer.metrics.value("alertd_event_stream_reconnects_total") == 1, timeout=5,
                   what="the reconnection counted")
        assert not lost_alerts(internal)  # the outage is the broker's alerts' to tell
