"""The queues collector against a private redis-server filled by a real Celery app (no worker), and against RabbitMQ."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Connection

import alertd.instrument
from alertd.clock import VirtualClock
from alertd.collectors.base import CollectorContext, CollectorRunner
from alertd.collectors.queues import QueueCollector, QueueSettings
from alertd.collectors.redis_keys import (
    Peek,
    RedisLayout,
    Tails,
    as_timestamp,
    peek_message,
    read_tails,
    resolve_layout,
)
from alertd.models import Sample
from tests.services import RedisServer
from tests.workers import CeleryWorker

TEN_STEPS = {"priority_steps": list(range(10)), "queue_order_strategy": "priority"}


def by_queue(samples: list[Sample], name: str) -> dict[str, float]:
    return {s.labels["queue"]: s.value for s in samples if s.name == name}


def single(samples: list[Sample], name: str) -> float:
    found = [s.value for s in samples if s.name == name]
    assert len(found) == 1, (name, found)
    return found[0]


@pytest.fixture
def celery_app() -> Iterator[Callable[..., Celery]]:
    """Celery apps for a broker, with one task; closed after the test. No worker runs: messages stay queued."""
    apps: list[Celery] = []

    def make(broker_url: str, **transport_options: Any) -> Celery:
        app = Celery("alertd-tests-queues", broker=broker_url, set_as_current=False)
        app.conf.broker_transport_options = transport_options

        @app.task(name="tests.queues.noop", shared=False)
        def noop(*args: Any) -> None:
            """Never runs: no worker consumes these queues."""

        apps.append(app)
        return app

    try:
        yield make
    finally:
        for app in apps:
            app.close()


def publish(app: Celery, queue: str, priorities: range | list[int], copies: int = 1, **options: Any) -> int:
    task = app.tasks["tests.queues.noop"]
    for _ in range(copies):
        for p in priorities:
            task.apply_async(priority=p, queue=queue, **options)
    return copies * len(priorities)


def collector(url: str, *, clock: VirtualClock | None = None, transport: dict[str, Any] | None = None,
              app: Celery | None = None, queues: tuple[str, ...] = (), **settings: Any) -> QueueCollector:
    context = CollectorContext(broker_url=url, queues=queues, broker_transport_options=dict(transport or {}),
                               celery_app=app)
    if clock is not None:
        context.clock = clock
    return QueueCollector(QueueSettings.model_validate(settings), context)


@dataclass
class Trips:
    """What one block sent to Redis: packed sends (round trips) and the server's count of calls per command."""

    sends: int = 0
    calls: dict[str, int] = field(default_factory=dict)


@contextlib.contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch, server: RedisServer) -> Iterator[Trips]:
    """Count the round trips of redis-py clients, and the commands redis-server ran, within the block."""
    from redis.connection import AbstractConnection

    trips = Trips()
    original = AbstractConnection.send_packed_command

    def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        trips.sends += 1
        original(self, command, check_health)

    stats = redis.Redis(port=server.port)

    def calls() -> dict[str, int]:
        return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.info("commandstats").items()}

    before = calls()
    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    try:
        yield trips
    finally:
        monkeypatch.undo()
        trips.calls = {k: n - before.get(k, 0) for k, n in calls().items() if n != before.get(k, 0)}
        stats.close()


async def collect_once(c: QueueCollector) -> list[Sample]:
    try:
        return await c.collect()
    finally:
        await c.close()


# -- key layout ------------------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("options", [{}, TEN_STEPS, {"priority_steps": [0, 5], "global_keyprefix": "p:"},
                                     {"priority_steps": [2, 7], "sep": ":"}])
def test_the_key_layout_is_kombus_own(shared_redis: RedisServer, options: dict[str, Any]) -> None:
    with Connection(shared_redis.url, transport_options=options) as conn:
        channel = conn.default_channel
        expected = [channel.global_keyprefix + channel._q_for_pri("q:1 ü", step) for step in channel.priority_steps]
        layout = resolve_layout(options)
        assert layout.queue_keys("q:1 ü") == expected
        assert layout.unacked == channel.global_keyprefix + channel.unacked_key
        assert layout.unacked_index == channel.global_keyprefix + channel.unacked_index_key


def test_options_come_from_settings_then_context_then_app() -> None:
    layout = resolve_layout({"priority_steps": None, "global_keyprefix": "own:"},
                            {"priority_steps": [9, 0, 5], "global_keyprefix": "ctx:", "sep": "|"},
                            {"priority_steps": [1], "sep": "#", "unacked_key": "u2"})
    assert layout == RedisLayout(priority_steps=(0, 5, 9), sep="|", global_keyprefix="own:", unacked_key="u2")
    assert resolve_layout() == RedisLayout()


def test_publish_times_are_read_from_a_header_or_the_timestamp_property() -> None:
    assert as_timestamp(1700000000) == 1700000000.0
    assert as_timestamp("1700000000.5") == 1700000000.5
    assert as_timestamp("2023-11-14T22:13:20") == 1700000000.0
    assert as_timestamp("2023-11-14T23:13:20+01:00") == 1700000000.0
    assert as_timestamp("soon") is None and as_timestamp(True) is None and as_timestamp(None) is None
    raw = b'{"headers": {"id": "t1", "sent": 1700000000}, "properties": {"delivery_tag": "d1", "timestamp": 5}}'
    assert peek_message(raw, "sent") == peek_message(raw.replace(b"5}}", b"1700000000}}"), None)
    assert peek_message(raw, None).published == 5.0
    assert peek_message(b"not json", "sent").published is None
    plain = b'{"headers": {"id": "t2"}, "properties": {"delivery_tag": "d2"}}'
    tails = read_tails([None, plain, raw, None, raw.replace(b"1700000000", b"1600000000")], "sent")
    assert tails.head == Peek("d2", None, "missing") and tails.oldest == 1600000000.0
    assert (tails.missing, tails.invalid, tails.oversized) == (1, 0, 0)
    assert read_tails([None, None], "sent") == Tails()


def test_forged_and_huge_messages_are_counted_never_trusted() -> None:
    for forged in ("yesterday", -5, 0, 10**400, "9" * 100, "NaN", "inf", [1], {"t": 1}):
        assert as_timestamp(forged) is None, forged
    def message(stamp: str) -> bytes:
        return b'{"body": "eyJ9", "headers": {"id": "t", "sent": ' + stamp.encode() + b'}, "properties": {}}'
    assert peek_message(message("1e999"), "sent").stamp == "invalid"  # JSON's float overflow is infinity
    assert peek_message(message('"2023-13-45"'), "sent").stamp == "invalid"
    assert peek_message(message("1700000000"), "sent") == Peek("t", 1700000000.0, "ok")
    huge = message("1700000000").replace(b"eyJ9", b"A" * 2_000_000)
    peek = peek_message(huge, "sent")
    assert peek.stamp == "oversized" and peek.published is None and peek.ident.startswith("size:2000")
    assert peek_message(huge, "sent", limit=3_000_000).published == 1700000000.0
    tails = read_tails([huge, message('"soon"'), b"not json", message("1700000000")], "sent")
    assert (tails.oversized, tails.invalid, tails.missing, tails.published) == (1, 1, 1, [1700000000.0])
    # Behind the next message, a number is read where it stands; anything else is decoded, with the same result.
    behind = [message("1700000000.5"), message("1e999"), message("1" * 5000), message('"2023-11-14T22:13:20"'),
              message("-3"), b'{"body": "", "headers": {"sent": 1, "x": {"sent": 2}}}', b'{"headers": {}}']
    quick = read_tails([b'{"headers": {}}', *behind], "sent")
    assert sorted(quick.published) == [1.0, 1700000000.0, 1700000000.5]
    assert (quick.invalid, quick.missing) == (2, 3)  # 1e999 and -3; the two without it, and 5000 digits (not JSON)


# -- Redis -------------------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("options", [TEN_STEPS, {}], ids=["ten-steps", "default-steps"])
async def test_depth_sums_every_priority_list(
    redis_server: RedisServer, celery_app: Callable[..., Celery], options: dict[str, Any]
) -> None:
    app = celery_app(redis_server.url, **options)
    sent = {"alpha": publish(app, "alpha", range(10), copies=3), "beta": publish(app, "beta", [0, 9])}
    lists = redis.Redis(port=redis_server.port).keys("alpha*")
    assert len(lists) == (10 if options else 4)  # the messages are really spread over the priority lists
    for c in (collector(redis_server.url, transport=options, queues=("alpha", "beta", "gamma")),
              collector(redis_server.url, app=app, queues=("alpha", "beta", "gamma"), discover_queues=False)):
        samples = await collect_once(c)
        assert by_queue(samples, "celery_queue_depth") == {**sent, "gamma": 0.0}
    # Reading with the wrong (default) steps misses the lists of steps 1, 2, 4, 5, 7 and 8.
    if options:
        samples = await collect_once(collector(redis_server.url, queues=("alpha",)))
        assert by_queue(samples, "celery_queue_depth") == {"alpha": 12.0}


@pytest.mark.integration
async def test_a_hundred_queues_are_read_in_one_round_trip(
    redis_server: RedisServer, celery_app: Callable[..., Celery], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = celery_app(redis_server.url, **TEN_STEPS)
    queues = tuple(f"q{i:03d}" for i in range(100))
    expected = {q: float(publish(app, q, range(i % 10 + 1))) for i, q in enumerate(queues)}
    c = collector(redis_server.url, transport=TEN_STEPS, queues=queues)
    runner = CollectorRunner(c)
    try:
        await runner.run()  # connects: the handshake is not a collection's round trip
        with round_trips(monkeypatch, redis_server) as trips:
            run = await runner.run()
    finally:
        await c.close()
    assert run.ok, run.error
    assert single(run.samples, "alertd_collector_success") == 1.0
    assert by_queue(run.samples, "celery_queue_depth") == expected
    assert trips.sends == 1
    assert trips.calls["llen"] == 100 * 10 and trips.calls["lindex"] == 100 * 10


@pytest.mark.integration
async def test_global_keyprefix_is_honoured(redis_server: RedisServer, celery_app: Callable[..., Celery]) -> None:
    options = {"global_keyprefix": "proj:"}
    app = celery_app(redis_server.url, **options)
    publish(app, "jobs", range(10))
    assert all(k.startswith(b"proj:") for k in redis.Redis(port=redis_server.port).keys("*jobs*"))
    variants = {
        "context": collector(redis_server.url, transport=options, queues=("jobs",)),
        "settings": collector(redis_server.url, queues=("jobs",), global_keyprefix="proj:"),
        "app": collector(redis_server.url, app=app, queues=("jobs",), discover_queues=False),
        "none": collector(redis_server.url, queues=("jobs",)),
    }
    depths = {name: by_queue(await collect_once(c), "celery_queue_depth") for name, c in variants.items()}
    assert depths == {"context": {"jobs": 10.0}, "settings": {"jobs": 10.0}, "app": {"jobs": 10.0}, "none": {"jobs": 0.0}}


@pytest.mark.integration
async def test_queue_names_with_odd_characters(redis_server: RedisServer, celery_app: Callable[..., Celery]) -> None:
    app = celery_app(redis_server.url)
    names = {"with space": 2, "ünïcødé ✓ queue": 3, "a:b:c": 4, "tab\tand\nnewline": 1}
    for name, n in names.items():
        publish(app, name, [0, 5, 9][:n] if n <= 3 else [0, 3, 6, 9])
    # A name holding kombu's separator cannot be bound through an exchange; kombu's own _put stores it.
    sep_name = "before\x06\x16after"
    with Connection(redis_server.url) as conn:
        for p in (0, 4, 8):
            conn.default_channel._put(sep_name, {"body": "", "headers": {}, "properties": {"priority": p, "delivery_tag": str(p)}})
    queues = (*names, sep_name)
    samples = await collect_once(collector(redis_server.url, queues=queues))
    assert by_queue(samples, "celery_queue_depth") == {**{k: float(v) for k, v in names.items()}, sep_name: 3.0}


@pytest.mark.integration
async def test_a_key_that_is_not_a_list_breaks_only_its_own_queue(
    redis_server: RedisServer, celery_app: Callable[..., Celery], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    publish(celery_app(redis_server.url), "good", [0, 9])
    redis.Redis(port=redis_server.port).set("clobbered\x06\x166", "not a list")
    c = collector(redis_server.url, queues=("clobbered", "good"))
    try:
        runs = [await c.collect() for _ in range(2)]
    finally:
        await c.close()
    for samples in runs:
        assert by_queue(samples, "celery_queue_depth") == {"good": 2.0}
    logged = [r.getMessage() for r in caplog.records if "clobbered" in r.getMessage()]
    assert len(logged) == 1 and "WRONGTYPE" in logged[0], logged


@pytest.mark.integration
async def test_unacked_messages_are_reported(redis_server: RedisServer) -> None:
    clock = VirtualClock(time.time() + 100)
    with Connection(redis_server.url) as conn:
        q = conn.SimpleQueue("held")
        for i in range(3):
            q.put({"i": i})
        taken = [q.get(timeout=5), q.get(timeout=5)]  # delivered, not acknowledged: kombu keeps them in "unacked"
        samples = await collect_once(collector(redis_server.url, queues=("held",), clock=clock))
        for message in taken:
            message.ack()
        q.close()
    assert by_queue(samples, "celery_queue_depth") == {"held": 1.0}
    assert single(samples, "celery_queue_unacked") == 2.0
    assert 99.0 < single(samples, "celery_queue_unacked_oldest_age_seconds") < 110.0


@pytest.mark.integration
async def test_message_ages(redis_server: RedisServer, celery_app: Callable[..., Celery]) -> None:
    app = celery_app(redis_server.url)
    t0 = 1_800_000_000.0
    for offset in (0, 10, 20):
        publish(app, "stamped", [5], headers={"alertd_published_at": t0 + offset})
    publish(app, "stamped", [0], headers={"alertd_published_at": "2027-01-15T08:00:25+00:00"})  # t0 + 25
    publish(app, "plain", [5], copies=2)
    clock = VirtualClock(t0 + 120)
    c = collector(redis_server.url, queues=("stamped", "plain", "empty"), clock=clock)
    try:
        first = await c.collect()
        clock.advance(30)
        later = await c.collect()
        publish(app, "plain", [0])  # a higher priority message jumps the line: a new head
        clock.advance(5)
        jumped = await c.collect()
    finally:
        await c.close()
    assert by_queue(first, "celery_queue_oldest_message_age_seconds") == {"stamped": 120.0, "empty": 0.0}
    assert by_queue(later, "celery_queue_oldest_message_age_seconds") == {"stamped": 150.0, "empty": 0.0}
    assert by_queue(first, "celery_queue_head_wait_seconds") == {"stamped": 0.0, "plain": 0.0, "empty": 0.0}
    assert by_queue(later, "celery_queue_head_wait_seconds") == {"stamped": 30.0, "plain": 30.0, "empty": 0.0}
    assert by_queue(jumped, "celery_queue_head_wait_seconds") == {"stamped": 35.0, "plain": 0.0, "empty": 0.0}


@pytest.fixture
def stamping() -> Iterator[None]:
    """This process stamps the publish time on the task messages it sends, as a producer with alertd installed."""
    alertd.instrument.stamp_publish_time()
    try:
        yield
    finally:
        alertd.instrument.stop_stamping()


def rejected(samples: list[Sample], reason: str) -> dict[str, float]:
    return {s.labels["queue"]: s.value for s in samples
            if s.name == "celery_queue_head_rejected" and s.labels["reason"] == reason}


@pytest.mark.integration
async def test_a_stamping_producers_oldest_message_grows_older_read_in_one_round_trip(
    redis_server: RedisServer, celery_app: Callable[..., Celery], stamping: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = celery_app(redis_server.url, **TEN_STEPS)
    before = time.time()
    publish(app, "aged", [9])  # the lowest priority goes out last: the oldest message waits behind the others
    after = time.time()
    publish(app, "aged", [0, 5, 5])
    publish(app, "other", range(10))
    raw = redis.Redis(port=redis_server.port).lindex("aged\x06\x169", -1)
    assert raw is not None and before <= json.loads(raw)["headers"]["alertd_published_at"] <= after
    clock = VirtualClock(after + 10)
    c = collector(redis_server.url, transport=TEN_STEPS, queues=("aged", "other"), clock=clock)
    try:
        await c.collect()  # connects
        clock.advance(5)
        with round_trips(monkeypatch, redis_server) as trips:
            first = await c.collect()
        clock.advance(30)
        later = await c.collect()
    finally:
        await c.close()
    assert trips.sends == 1
    assert trips.calls["llen"] == 20 and trips.calls["lindex"] == 20
    age = by_queue(first, "celery_queue_oldest_message_age_seconds")["aged"]
    assert 15.0 <= age <= 15.0 + (after - before)
    assert by_queue(later, "celery_queue_oldest_message_age_seconds")["aged"] == pytest.approx(age + 30)
    assert by_queue(first, "celery_queue_depth") == {"aged": 4.0, "other": 10.0}
    assert by_queue(first, "celery_queue_head_unstamped") == {"aged": 0.0, "other": 0.0}
    assert rejected(first, "future") == rejected(first, "invalid") == {"aged": 0.0, "other": 0.0}


@pytest.mark.integration
async def test_unstamped_and_forged_messages_are_counted_and_get_no_age_or_zero(
    redis_server: RedisServer, celery_app: Callable[..., Celery]
) -> None:
    app = celery_app(redis_server.url)
    now = time.time()
    publish(app, "plain", [0, 9], copies=2)
    publish(app, "forged", [0], headers={"alertd_published_at": now + 3600})
    publish(app, "mixed", [0], headers={"alertd_published_at": now + 3600})
    publish(app, "mixed", [9], headers={"alertd_published_at": now - 60})
    publish(app, "garbage", [0], headers={"alertd_published_at": "tomorrow"})
    publish(app, "garbage", [9], headers={"alertd_published_at": 10**400})
    redis.Redis(port=redis_server.port).lpush("garbage\x06\x163", b"\xff not a kombu message")
    c = collector(redis_server.url, queues=("plain", "forged", "mixed", "garbage"), clock=VirtualClock(now))
    samples = await collect_once(c)
    assert by_queue(samples, "celery_queue_oldest_message_age_seconds") == {"forged": 0.0, "mixed": 60.0}
    assert by_queue(samples, "celery_queue_head_unstamped") == {"plain": 2.0, "forged": 0.0, "mixed": 0.0, "garbage": 1.0}
    assert rejected(samples, "future") == {"plain": 0.0, "forged": 1.0, "mixed": 1.0, "garbage": 0.0}
    assert rejected(samples, "invalid") == {"plain": 0.0, "forged": 0.0, "mixed": 0.0, "garbage": 2.0}
    assert by_queue(samples, "celery_queue_depth") == {"plain": 4.0, "forged": 1.0, "mixed": 2.0, "garbage": 3.0}


@pytest.mark.integration
async def test_a_5mb_message_is_counted_not_decoded(
    redis_server: RedisServer, celery_app: Callable[..., Celery], stamping: None
) -> None:
    app = celery_app(redis_server.url)
    publish(app, "big", [0], args=("x" * 5_000_000,))
    publish(app, "big", [9])
    size = len(redis.Redis(port=redis_server.port).lindex("big", -1) or b"")
    assert size > 5_000_000
    c = collector(redis_server.url, queues=("big",), clock=VirtualClock(time.time() + 10))
    try:
        await c.collect()  # connects
        tracemalloc.start()
        samples = await c.collect()
        kept, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        await c.close()
    assert rejected(samples, "oversized") == {"big": 1.0}
    # The other list's message is read as usual; the big one is not decoded, and nothing of it is kept.
    assert 10.0 <= by_queue(samples, "celery_queue_oldest_message_age_seconds")["big"] < 20.0
    print(f"message {size / 1e6:.1f} MB, peak traced memory of a collection {peak / 1e6:.1f} MB")
    # LINDEX has no byte limit: redis-py reads the message whole (its reader holds about three copies at once).
    assert peak < 4 * size and kept < 1_000_000


@pytest.mark.integration
async def test_without_oldest_message_age_no_message_is_read(redis_server: RedisServer, celery_app: Callable[..., Celery]) -> None:
    publish(celery_app(redis_server.url), "q", [1, 2])
    samples = await collect_once(collector(redis_server.url, queues=("q",), oldest_message_age=False))
    assert {s.name for s in samples} == {"celery_queue_depth", "celery_queue_unacked", "celery_queue_unacked_oldest_age_seconds"}
    assert redis.Redis(port=redis_server.port).info("commandstats").get("cmdstat_lindex") is None


@pytest.mark.integration
async def test_queues_are_discovered_from_the_workers_and_kept(
    redis_server: RedisServer, worker_factory: Callable[..., CeleryWorker], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    queue = f"disc-{uuid.uuid4().hex[:8]}"
    worker = worker_factory(redis_server.url, "disc", queue=queue, task_events=False)
    c = collector(redis_server.url, app=worker.client, queues=("fixed",), discover_interval="0s")
    dead = Celery("dead", broker="redis://127.0.0.1:1/0", set_as_current=False)
    dead.conf.update(broker_connection_retry=False, broker_connection_max_retries=0, broker_connection_timeout=0.5)
    try:
        assert by_queue(await c.collect(), "celery_queue_depth") == {"fixed": 0.0, queue: 0.0}
        worker.kill()
        # No worker answers now: the queue is still watched (a queue nobody consumes is one that backs up).
        assert by_queue(await c.collect(), "celery_queue_depth") == {"fixed": 0.0, queue: 0.0}
        # Discovery itself fails (its broker is gone): logged once, and what was discovered is kept.
        c.context.celery_app = dead
        for _ in range(2):
            assert by_queue(await c.collect(), "celery_queue_depth") == {"fixed": 0.0, queue: 0.0}
    finally:
        await c.close()
        dead.close()
    logged = [r.getMessage() for r in caplog.records if "cannot discover" in r.getMessage()]
    assert len(logged) == 1 and "keeping 1 known" in logged[0], logged


# -- RabbitMQ ----------------------------------------------------------------------------------------------


@pytest.mark.integration
async def test_rabbitmq_depth_consumers_and_a_missing_queue(rabbitmq_url: str) -> None:
    tag = uuid.uuid4().hex[:10]
    a, missing, c = f"alertd-test-{tag}-a", f"alertd-test-{tag}-missing", f"alertd-test-{tag}-c"
    with Connection(rabbitmq_url, transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        try:
            for name, count in ((a, 3), (c, 5)):
                channel.queue_declare(queue=name, durable=False, auto_delete=False)
                producer = conn.Producer(channel)
                for i in range(count):
                    producer.publish({"i": i}, routing_key=name)  # confirmed: counted once this returns
            col = collector(rabbitmq_url, queues=(a, missing, c))
            try:
                run = await CollectorRunner(col).run()
                again = await col.collect()  # the missing queue broke no channel for the next run
            finally:
                await col.close()
        finally:
            for name in (a, c):
                channel.queue_delete(name)
            channel.close()
    assert run.ok, run.error
    assert single(run.samples, "alertd_collector_success") == 1.0
    for samples in (run.samples, again):
        assert by_queue(samples, "celery_queue_depth") == {a: 3.0, c: 5.0}
        assert by_queue(samples, "celery_queue_consumers") == {a: 0.0, c: 0.0}
        assert by_queue(samples, "celery_queue_missing") == {a: 0.0, missing: 1.0, c: 0.0}
