"""Junk on the event exchange, published with kombu between real events from Celery's own dispatcher, on a
private redis-server: every real failure before and after the junk arrives, each piece of junk is counted by
its reason, and the consumer keeps its one connection."""

from __future__ import annotations

import pickle
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.events import get_exchange
from kombu import Connection, Producer

from alertd.collectors.events import validate
from tests.collectors.events.consumer_thread import ConsumerThread
from tests.services import RedisServer, wait_until

pytestmark = pytest.mark.integration

ROUNDS = 3
HOST = "producer@junk"


def _junk(now: float) -> list[tuple[str | None, dict[str, Any]]]:
    """(the reason it is dropped, or None when it is not junk to drop; kombu publish() arguments)."""
    json_raw = {"content_type": "application/json", "content_encoding": "utf-8"}
    return [
        (validate.UNDECODABLE, {"body": b"{this is not json", **json_raw}),
        (validate.NOT_AN_OBJECT, {"body": [1], "serializer": "json"}),
        (validate.MISSING_FIELD, {"body": {"hostname": HOST, "timestamp": now}, "serializer": "json"}),
        (validate.BAD_FIELD, {"body": {"type": "task-failed", "timestamp": "yesterday", "hostname": HOST, "uuid": "x"},
                     "serializer": "json"}),
        (validate.TOO_LARGE, {"body": {"type": "task-failed", "timestamp": now, "hostname": HOST,
                              "traceback": "x" * 2_000_000}, "serializer": "json"}),
        (validate.TOO_DEEP, {"body": "[" * 5000 + "]" * 5000, **json_raw}),
        (validate.CONTENT_TYPE, {"body": pickle.dumps({"type": "task-failed", "timestamp": now, "hostname": HOST}),
                        "content_type": "application/x-python-serialize", "content_encoding": "binary"}),
        (None, {"body": {"type": "mallory-was-here", "timestamp": now, "hostname": HOST}, "serializer": "json"}),
    ]


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


def _send_failure(app: Celery, conn: Connection, n: int) -> str:
    """A real task-received and task-failed pair through Celery's EventDispatcher; returns the task name."""
    name = f"tasks.payment.charge_{n}"
    dispatcher = app.events.Dispatcher(conn, hostname=HOST, enabled=True, buffer_while_offline=False)
    dispatcher.send("task-received", uuid=f"u-{n}", name=name, args="()", kwargs="{}", retries=0)
    dispatcher.send("task-failed", uuid=f"u-{n}", exception="CardDeclined('no funds')", traceback="Traceback ...")
    return name


def test_junk_between_real_failures_is_counted_and_dropped_without_a_reconnect(
    redis_server: RedisServer, sender: tuple[Celery, Connection]
) -> None:
    app, conn = sender
    observed = Observed()
    with ConsumerThread(redis_server.url, observe=observed) as c:
        metrics = c.consumer.metrics
        junk_producer = Producer(conn.default_channel, exchange=get_exchange(conn, name=app.conf.event_exchange))
        names = [_send_failure(app, conn, 0)]
        expected: Counter[str] = Counter()
        for round_ in range(ROUNDS):
            for i, (reason, publish) in enumerate(_junk(time.time())):
                junk_producer.publish(routing_key="task.failed", **publish)
                if reason is not None:
                    expected[reason] += 1
                names.append(_send_failure(app, conn, 1 + round_ * 100 + i))

        for name in names:  # every real failure, the one before the first junk and each one after
            c.wait_value("celery_task_failures_total", 1, timeout=10, task_name=name, exception_type="CardDeclined")
        wait_until(lambda: all(metrics.value("alertd_events_malformed_total", reason=r) == n
                               for r, n in expected.items()), timeout=5, what=f"malformed counts {dict(expected)}")

        assert {r: metrics.value("alertd_events_malformed_total", reason=r) for r in validate.REASONS} == {
            r: expected[r] for r in validate.REASONS
        }
        assert c.consumer.connects == 1, "the junk cost a reconnection"
        assert [s.value for _, s in c.sink.matching("alertd_event_stream_up")].count(0) == 1  # only the start
        with observed.lock:
            assert observed.types[validate.OTHER] == ROUNDS  # the unknown type went through, counted as other
            assert observed.types["task-failed"] == len(names)
            assert observed.types["task-received"] == len(names)
        assert c.sink.latest("celery_task_failures_total", task_name="__overflow__",
                             exception_type="CardDeclined") is None


def test_an_event_with_too_long_a_hostname_is_dropped_and_the_next_one_counts(
    redis_server: RedisServer, sender: tuple[Celery, Connection]
) -> None:
    app, conn = sender
    with ConsumerThread(redis_server.url) as c:
        long_host = app.events.Dispatcher(conn, hostname="w" * 300, enabled=True, buffer_while_offline=False)
        long_host.send("task-failed", uuid="u-long", task_name="tasks.long", exception="Boom()")
        name = _send_failure(app, conn, 1)
        c.wait_value("celery_task_failures_total", 1, timeout=10, task_name=name, exception_type="CardDeclined")
        wait_until(lambda: c.consumer.metrics.value("alertd_events_malformed_total", reason=validate.BAD_FIELD) == 1,
                   timeout=5, what="the long hostname counted")
        assert c.sink.latest("celery_task_failures_total", task_name="tasks.long", exception_type="Boom") is None
        assert c.consumer.connects == 1

