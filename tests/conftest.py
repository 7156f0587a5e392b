from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import services
from tests.loop_debug import debug_mode
from tests.workers import CeleryWorker, start_worker


@pytest.fixture
def redis_server() -> Iterator[services.RedisServer]:
    """A private redis-server on a free port, stopped after the test."""
    server = services.start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def shared_redis() -> Iterator[services.RedisServer]:
    """One private redis-server for tests that only read and write their own keys."""
    server = services.start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pushgateway() -> Iterator[services.Pushgateway]:
    """A private prometheus-pushgateway on a free port, stopped after the test."""
    gw = services.start_pushgateway()
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The machine's RabbitMQ (scripts/test starts it when it is not running); tests use their own queue names."""
    return services.RABBITMQ_URL


@pytest.fixture(scope="module")
def module_redis() -> Iterator[services.RedisServer]:
    """A private redis-server for one test module: its Celery workers and broadcasts see no other module's."""
    server = services.start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def module_pushgateway() -> Iterator[services.Pushgateway]:
    """A private prometheus-pushgateway, in memory only, for one test module."""
    gw = services.start_pushgateway()
    try:
        yield gw
    finally:
        gw.stop()


def _workers() -> Iterator[Callable[..., CeleryWorker]]:
    started: list[CeleryWorker] = []

    def start(broker_url: str, name: str, **kwargs: Any) -> CeleryWorker:
        worker = start_worker(broker_url, name, **kwargs)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.kill()  # nothing is checked after the test: no need to wait for a warm shutdown
            Path(worker.log_path).unlink(missing_ok=True)


@pytest.fixture
def worker_factory() -> Iterator[Callable[..., CeleryWorker]]:
    """Start real Celery workers (``tests.workers.start_worker``) that are killed after the test."""
    yield from _workers()


@pytest.fixture(scope="module")
def module_worker_factory() -> Iterator[Callable[..., CeleryWorker]]:
    """Like ``worker_factory``, for workers that every test of a module shares (none of them kills one)."""
    yield from _workers()


@pytest.fixture
def password_redis() -> Iterator[tuple[services.RedisServer, str]]:
    """A private redis-server that requires a password (``requirepass``), and that password."""
    password = "s3cret-Pw-7731"
    server = services.start_redis("--requirepass", password)
    try:
        yield server, password
    finally:
        server.stop()


@pytest.fixture
async def debug_loop() -> AsyncIterator[asyncio.AbstractEventLoop]:
    """The test's event loop in asyncio's debug mode: the test fails when a callback holds the loop longer than
    100 ms or when a thread other than the loop's calls what the loop owns (``tests.loop_debug``)."""
    loop = asyncio.get_running_loop()
    with debug_mode(loop) as seen:
        yield loop
    assert not seen.problems, "the event loop was misused:\n" + "\n".join(seen.problems)
