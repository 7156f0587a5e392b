"""Junk on the event exchange, published with kombu between real events from Celery's own dispatcher, on a
private redis-server (and on RabbitMQ, on an exchange of the test's own): every real failure before and after
the junk arrives, each piece of junk is counted by its reason, and the consumer keeps its one connection."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.events import get_exchange
from kombu import Connection, Producer

from alertd.collectors.events import validate
from alertd.collectors.events.consumer import LABEL_OVERFLOW
from alertd.collectors.events.labels import OVERFLOW
from alertd.notify import InternalAlerts
from tests.collectors.events.consumer_thread import ConsumerThread
from tests.collectors.events.junk import junk_messages, send_failure
from tests.services import RedisServer, wait_until

pytestmark = pytest.mark.integration

ROUNDS = 3


class Observed:
    """The observe hook: the type label of every event that reached the loop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.types: Counter[str] = Counter()

    def __call__(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.types[validate.event_type_label(event.get("type"))] += 1


@pytest.fixture
def sender(redis_server: RedisServer) -> Iterator[tuple[Celery, Connection]]:
    app = Celery("junk-sender", broker=redis_server.url, set_as_current=False)
    with app.connection_for_write() as conn:
        yield app, conn


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> Iterator[tuple[Celery, Connection]]:
    """The app both sides use, and the sender's connection: celeryev on a private redis-server, or an exchange
    of this test's own on the machine's RabbitMQ, where other tests' events would be counted too."""
    if request.param == "redis":
        app = Celery("junk", broker=request.getfixturevalue("redis_server").url, set_as_current=False)
    else:
        app = Celery("junk", broker=request.getfixturevalue("rabbitmq_url"), set_as_current=False)
        app.conf.event_exchange = f"celeryev.junk.{uuid.uuid4().hex[:8]}"
    with app.connection_for_write() as conn:
        yield app, conn


def test_junk_between_real_failures_is_counted_and_dropped_without_a_reconnect(
    broker: tuple[Celery, Connection],
) -> None:
    app, conn = broker
    observed = Observed()
    with ConsumerThread(app.conf.broker_url, observe=observed, app=app) as c:
        metrics = c.consumer.metrics
        junk_producer = Producer(conn.default_channel, exchange=get_exchange(conn, name=app.conf.event_exchange))
        names = [send_failure(app, conn, 0)]
        expected: Counter[str] = Counter()
        for round_ in range(ROUNDS):
            for i, (reason, publish) in enumerate(junk_messages(time.time())):
                junk_producer.publish(routing_key="task.failed", **publish)
                if reason is not None:
                    expected[reason] += 1
                names.append(send_failure(app, conn, 1 + round_ * 100 + i))

        for name in names:  # every real failure, the one before the first junk and each one after
            c.wait_value("celery_task_failures_total", 1, timeout=10, task_name=name, exception_type="CardDeclined")
        wait_until(lambda: all(metrics.value("alertd_events_malformed_total", reason=r) == n
                               for r, n in expected.items()), timeout=5, what=f"malformed counts {dict(expected)}")

        assert {r: metrics.value("alertd_events_malformed_total", reason=r) for r in validate.REASONS} == {
            r: expected[r] for r in validate.REASONS
        }
        assert c.consumer.connects == 1, "the junk cost a reconnection"
        up = [s.value for _, s in c.sink.matching("alertd_event_stream_up")]
        assert 0 not in up[up.index(1):], "the stream went down"
        with observed.lock:
            assert observed.types[validate.OTHER] == ROUNDS  # the unknown type went through, counted as other
            assert observed.types["task-failed"] == len(names)
            assert observed.types["task-received"] == len(names)
        assert c.sink.latest("celery_task_failures_total", task_name=OVERFLOW,
                             exception_type="CardDeclined") is None


def test_an_event_with_too_long_a_hostname_is_dropped_and_the_next_one_counts(
    redis_server: RedisServer, sender: tuple[Celery, Connection]
) -> None:
    app, conn = sender
    with ConsumerThread(redis_server.url) as c:
        long_host = app.events.Dispatcher(conn, hostname="w" * 300, enabled=True, buffer_while_offline=False)
        long_host.send("task-failed", uuid="u-long", task_name="tasks.long", exception="Boom()")
        name = send_failure(app, conn, 1)
        c.wait_value("celery_task_failures_total", 1, timeout=10, task_name=name, exception_type="CardDeclined")
        wait_until(lambda: c.consumer.metrics.value("alertd_events_malformed_total", reason=validate.BAD_FIELD) == 1,
                   timeout=5, what="the long hostname counted")
        assert c.sink.latest("celery_task_failures_total", task_name="tasks.long", exception_type="Boom") is None
        assert c.consumer.connects == 1



def test_task_names_past_the_cap_fire_the_overflow_alert_until_they_go_idle(
    redis_server: RedisServer, sender: tuple[Celery, Connection]
) -> None:
    app, conn = sender
    internal = InternalAlerts()
    with ConsumerThread(redis_server.url, internal=internal, max_label_values=10, label_idle_after=1.0) as c:
        names = [send_failure(app, conn, n) for n in range(15)]
        for name in names[:10]:
            c.wait_value("celery_task_failures_total", 1, timeout=10, task_name=name, exception_type="CardDeclined")
        c.wait_value("celery_task_failures_total", 5, timeout=10, task_name=OVERFLOW, exception_type="CardDeclined")
        assert c.consumer.metrics.value("alertd_event_label_overflow_total", label="task_name") == 5
        assert all(c.sink.latest("celery_task_failures_total", task_name=n, exception_type="CardDeclined") is None
                   for n in names[10:])
        firing = [a.labels for a in internal.firing()]
        assert firing == [{"alertname": LABEL_OVERFLOW, "severity": "warning", "label": "task_name"}]

        # A second past the last event the names are forgotten, the alert resolves and a new name is held.
        wait_until(lambda: not internal.firing(), timeout=10, what="the overflow alert to resolve")
        assert [a.labels["label"] for a in internal.alerts() if a.resolved] == ["task_name"]
        name = send_failure(app, conn, 99)
        c.wait_value("celery_task_failures_total", 1, timeout=10, task_name=name, exception_type="CardDeclined")
