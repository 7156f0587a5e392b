"""The broker collector against a private redis-server (with and without a password, stopped and started) and RabbitMQ."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from alertd.collectors.base import CollectorContext, CollectorRunner
from alertd.collectors.broker import BrokerCollector, BrokerSettings, check_timeout
from alertd.collectors.connection import display_url
from alertd.models import Sample
from tests.services import RedisServer


def value(samples: list[Sample], name: str) -> float | None:
    found = [s.value for s in samples if s.name == name]
    assert len(found) <= 1
    return found[0] if found else None


def broker(url: str, **settings: object) -> BrokerCollector:
    return BrokerCollector(BrokerSettings.model_validate(settings), CollectorContext(broker_url=url))


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "alertd.collectors.broker" and r.levelno >= logging.WARNING]


@pytest.mark.integration
async def test_redis_up_through_the_runner(redis_server: RedisServer) -> None:
    collector = broker(redis_server.url)
    try:
        run = await CollectorRunner(collector).run()
    finally:
        await collector.close()
    assert run.ok, run.error
    assert value(run.samples, "alertd_collector_success") == 1.0
    up = [s for s in run.samples if s.name == "celery_broker_up"]
    assert [(s.labels, s.value) for s in up] == [({"broker": f"redis://127.0.0.1:{redis_server.port}/0"}, 1.0)]
    latency = value(run.samples, "celery_broker_latency_seconds")
    assert latency is not None and 0 < latency < 1


@pytest.mark.integration
async def test_rabbitmq_up_through_the_runner(rabbitmq_url: str) -> None:
    collector = broker(rabbitmq_url)
    try:
        first = await CollectorRunner(collector).run()
        second = await CollectorRunner(collector).run()  # on the connection of the first run
    finally:
        await collector.close()
    for run in (first, second):
        assert run.ok, run.error
        assert value(run.samples, "alertd_collector_success") == 1.0
        assert value(run.samples, "celery_broker_up") == 1.0
        latency = value(run.samples, "celery_broker_latency_seconds")
        assert latency is not None and 0 < latency < 1
    labels = next(s.labels for s in first.samples if s.name == "celery_broker_up")
    assert labels == {"broker": display_url(rabbitmq_url)}
    assert "guest:" not in labels["broker"]


@pytest.mark.integration
async def test_a_wrong_redis_password_is_down_with_a_clear_error_logged_once(
    password_redis: tuple[RedisServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, password = password_redis
    caplog.set_level(logging.INFO)
    collector = broker(f"redis://:wrong-{password}@127.0.0.1:{server.port}/0")
    try:
        runs = [await CollectorRunner(collector).run() for _ in range(3)]
    finally:
        await collector.close()
    for run in runs:
        assert run.ok  # the broker being down is a reading, not a failed collection
        assert value(run.samples, "celery_broker_up") == 0.0
        assert value(run.samples, "celery_broker_latency_seconds") is None
    expected = f"authentication failed for redis://127.0.0.1:{server.port}/0"
    assert collector.last_error is not None and collector.last_error.startswith(expected)
    assert warnings(caplog) == [f"broker redis://127.0.0.1:{server.port}/0 is down: {collector.last_error}"]
    assert password not in caplog.text and password not in collector.last_error


@pytest.mark.integration
async def test_a_password_redis_with_the_right_password_is_up(password_redis: tuple[RedisServer, str]) -> None:
    server, password = password_redis
    collector = broker(f"redis://:{password}@127.0.0.1:{server.port}/0")
    try:
        samples = await collector.collect()
    finally:
        await collector.close()
    assert value(samples, "celery_broker_up") == 1.0
    assert all(password not in s.labels.get("broker", "") for s in samples)


@pytest.mark.integration
async def test_a_wrong_rabbitmq_password_is_down(rabbitmq_url: str, caplog: pytest.LogCaptureFixture) -> None:
    url = rabbitmq_url.replace("guest:guest@", "guest:not-the-pw-55@")
    assert url != rabbitmq_url
    collector = broker(url)
    try:
        samples = await collector.collect()
    finally:
        await collector.close()
    assert value(samples, "celery_broker_up") == 0.0
    assert collector.last_error is not None
    assert collector.last_error.startswith("authentication failed for amqp://guest@")
    assert "not-the-pw-55" not in caplog.text + collector.last_error


@pytest.mark.integration
async def test_the_same_collector_sees_redis_go_down_and_come_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    collector = broker(redis_server.url)
    runner = CollectorRunner(collector)
    try:
        assert value((await runner.run()).samples, "celery_broker_up") == 1.0
        redis_server.stop()
        down = await runner.run()
        assert value(down.samples, "celery_broker_up") == 0.0
        assert collector.last_error == (
            f"connection refused by {redis_server.url}: is the server running and listening there?"
        )
        redis_server.start()
        back = await runner.run()
        assert value(back.samples, "celery_broker_up") == 1.0, collector.last_error
        assert collector.last_error is None
    finally:
        await collector.close()
    assert f"broker {redis_server.url} is up again" in caplog.text


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose connections the kernel accepts (backlog) and nobody answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


@pytest.mark.integration
async def test_a_broker_that_does_not_answer_is_down_before_the_collection_times_out(silent_port: int) -> None:
    collector = broker(f"redis://127.0.0.1:{silent_port}/0", timeout="1s")
    try:
        run = await CollectorRunner(collector).run()
    finally:
        await collector.close()
    assert run.ok, run.error
    assert value(run.samples, "celery_broker_up") == 0.0
    assert collector.last_error == f"no answer from redis://127.0.0.1:{silent_port}/0 within {check_timeout(1.0):g}s"


async def test_an_unusable_url_is_down_with_the_reason() -> None:
    collector = broker("sqs://key:secret@")
    samples = await collector.collect()
    assert [(s.name, s.labels, s.value) for s in samples] == [("celery_broker_up", {"broker": "sqs://key@"}, 0.0)]
    assert collector.last_error is not None and "unsupported broker URL" in collector.last_error
    assert "secret" not in collector.last_error
