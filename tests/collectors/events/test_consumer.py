"""The event consumer against a real redis-server and real prefork workers sending events (-E)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from celery import Celery

from tests.collectors.events.consumer_thread import MULTIPLIER, TICK, ConsumerThread
from tests.services import RedisServer, wait_until
from tests.workers import CeleryWorker

pytestmark = pytest.mark.integration

HEARTBEAT = 1  # seconds between a test worker's heartbeats


@pytest.fixture(scope="module")
def shared_worker(module_redis: RedisServer, module_worker_factory: Callable[..., CeleryWorker]) -> CeleryWorker:
    return module_worker_factory(module_redis.url, "events-shared", heartbeat_interval=HEARTBEAT)


@pytest.fixture
def consumer(module_redis: RedisServer) -> Iterator[ConsumerThread]:
    with ConsumerThread(module_redis.url) as c:
        yield c


def test_payment_failure_reaches_the_sink_within_a_second(shared_worker: CeleryWorker, consumer: ConsumerThread) -> None:
    consumer.wait_value("celery_worker_up", 1, timeout=10, worker=shared_worker.name)
    sent = time.time()
    shared_worker.send("tasks.payment.refund", 12.5)
    labels = {"task_name": "tasks.payment.refund", "exception_type": "RefundDeclined"}
    arrived = consumer.wait_value("celery_task_failures_total", 1, timeout=5, **labels)
    failed_at = consumer.sink.latest("celery_task_last_failure_timestamp_seconds", **labels)
    assert failed_at is not None
    print(f"\nsend -> sample {1000 * (arrived - sent):.1f} ms; task failure -> sample {1000 * (arrived - failed_at):.1f} ms")
    assert arrived - sent < 2.0
    assert arrived - failed_at < 1.0
    zero = consumer.sink.matching("celery_task_failures_total", **labels)[0][1]
    assert zero.value == 0  # the injected zero came first, in the same batch


def test_a_worker_killed_with_sigkill_is_lost_within_its_heartbeat_window(
    module_redis: RedisServer, worker_factory: Callable[..., CeleryWorker], consumer: ConsumerThread
) -> None:
    worker = worker_factory(module_redis.url, "events-killed", heartbeat_interval=HEARTBEAT)
    consumer.wait_value("celery_worker_up", 1, timeout=10, worker=worker.name)
    worker.kill()
    killed = time.time()
    lost = consumer.wait_value("celery_worker_lost", 1, timeout=10, worker=worker.name)
    window = HEARTBEAT * MULTIPLIER
    print(f"\nkilled -> lost {lost - killed:.2f}s (window {window:g}s, tick {TICK:g}s)")
    assert lost - killed <= window + TICK + 0.5
    assert consumer.sink.latest("celery_worker_offline", worker=worker.name) == 0
    assert consumer.sink.latest("celery_worker_up", worker=worker.name) == 0


def test_a_worker_stopped_gracefully_is_offline_not_lost(
    module_redis: RedisServer, worker_factory: Callable[..., CeleryWorker], consumer: ConsumerThread
) -> None:
    worker = worker_factory(module_redis.url, "events-stopped", heartbeat_interval=HEARTBEAT)
    consumer.wait_value("celery_worker_up", 1, timeout=10, worker=worker.name)
    worker.stop()
    offline = consumer.wait_value("celery_worker_offline", 1, timeout=10, worker=worker.name)
    # Past the heartbeat window the worker must still be offline and not lost.
    past_window = offline + HEARTBEAT * MULTIPLIER + TICK

    def evaluated_past_window() -> bool:
        return any(at > past_window for at, _ in consumer.sink.matching("celery_worker_lost", worker=worker.name))

    wait_until(evaluated_past_window, timeout=10, what="a tick past the heartbeat window")
    assert {s.value for _, s in consumer.sink.matching("celery_worker_lost", worker=worker.name)} == {0}
    assert consumer.sink.latest("celery_worker_offline", worker=worker.name) == 1


def test_enable_task_events_switches_them_on_in_a_worker_started_without_e(
    module_redis: RedisServer, worker_factory: Callable[..., CeleryWorker]
) -> None:
    worker = worker_factory(module_redis.url, "events-quiet", task_events=False)
    with ConsumerThread(module_redis.url, enable_task_events=True) as c:
        c.wait_value("celery_worker_up", 1, timeout=10, worker=worker.name)

        def failure_counted() -> bool:
            # enable_events races with the first task: send until a failure event arrives.
            worker.send("tasks.fail", "CardDeclined")
            return c.sink.first_arrival("celery_task_failures_total", 1, task_name="tasks.fail",
                                        exception_type="CardDeclined") is not None

        wait_until(failure_counted, timeout=10, interval=0.2, what="a task event from a worker started without -E")


def test_stream_goes_down_with_the_broker_and_comes_back(redis_server: RedisServer) -> None:
    with ConsumerThread(redis_server.url) as c:
        redis_server.stop()
        c.wait_value("alertd_event_stream_up", 0, timeout=10)
        connects = c.consumer.connects
        redis_server.start()
        wait_until(lambda: c.consumer.connects > connects and c.consumer.connected, timeout=10,
                   what="the consumer to reconnect")
        assert c.sink.latest("alertd_event_stream_up") == 1

        # Events flow again: a failure sent through Celery's own event dispatcher arrives.
        app = Celery("sender", broker=redis_server.url, set_as_current=False)

        def send_failure() -> bool:
            with app.connection_for_write() as conn:
                dispatcher = app.events.Dispatcher(conn, hostname="sender@test", enabled=True)
                dispatcher.send("task-failed", uuid="u-1", task_name="tasks.payment.charge", exception="Declined()")
                dispatcher.close()
            count = c.sink.latest("celery_task_failures_total", task_name="tasks.payment.charge",
                                  exception_type="Declined")
            return count is not None and count >= 1

        # Pub/sub delivers only to a subscriber that is already listening: resend until one lands.
        wait_until(send_failure, timeout=10, interval=0.2, what="an event after the broker came back")
