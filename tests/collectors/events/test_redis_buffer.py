"""The start-up check of the broker's client-output-buffer-limit for pub/sub, against private redis-servers."""

from __future__ import annotations

import logging

import pytest
import redis

from alertd.collectors.events import redis_buffer
from tests.services import RedisServer, start_redis

pytestmark = pytest.mark.integration


def test_the_default_limit_is_read_and_warned_about_with_the_recommended_value(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=redis_buffer.__name__):
        assert redis_buffer.check(redis_server.url) == redis_buffer.DEFAULT
    assert len(caplog.records) == 1
    assert redis_buffer.RECOMMENDED in caplog.records[0].getMessage()


def test_a_big_enough_limit_passes_quietly(caplog: pytest.LogCaptureFixture) -> None:
    server = start_redis("--client-output-buffer-limit", "pubsub 256mb 64mb 60")
    try:
        with caplog.at_level(logging.WARNING, logger=redis_buffer.__name__):
            assert redis_buffer.check(server.url) == (256 * 2**20, 64 * 2**20, 60)
        assert not caplog.records
    finally:
        server.stop()


def test_a_user_without_config_gets_a_hint_not_an_error(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    admin = redis.Redis.from_url(redis_server.url)
    admin.acl_setuser("events", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
                      commands=["+@all", "-config"])
    url = f"redis://events:pw@127.0.0.1:{redis_server.port}/0"
    with caplog.at_level(logging.INFO, logger=redis_buffer.__name__):
        assert redis_buffer.check(url) is None
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "NOPERM" in caplog.records[0].getMessage() or "permission" in caplog.records[0].getMessage()
    assert "pw@" not in caplog.records[0].getMessage()


@pytest.mark.parametrize(("config", "small"), [
    ("normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60", True),
    ("normal 0 0 0 replica 268435456 67108864 60 pubsub 16777216 4194304 30", True),
    ("normal 0 0 0 pubsub 0 0 0", False),
    ("pubsub 268435456 67108864 60", False),
])
def test_limits_at_or_below_the_default_are_too_small(config: str, small: bool) -> None:
    limit = redis_buffer.pubsub_limit(config)
    assert limit is not None
    assert redis_buffer.too_small(limit) is small


def test_brokers_that_are_not_redis_are_not_checked() -> None:
    assert redis_buffer.check("amqp://guest:guest@127.0.0.1:5672//") is None
    assert redis_buffer.check(None) is None
