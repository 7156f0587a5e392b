from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import services


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
