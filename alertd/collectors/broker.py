"""The broker URL in, whether the broker answers within the timeout and how fast out.

Samples, labelled ``broker`` = the URL without its password: ``celery_broker_up`` (1 or 0) and, when up,
``celery_broker_latency_seconds``: one round trip on an established connection (a Redis PING, or the opening of
an AMQP channel). Connecting is not timed, so that the figure means the same on every run; the connection is
kept between runs and made again after a failure. A broker that refuses, rejects the password or does not
answer is ``celery_broker_up 0``, not a failed collection: the error is logged once when it appears or changes
and kept in ``last_error``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import Field
from redis import Redis

from alertd.collectors.base import Collector, CollectorContext, CollectorSettings
from alertd.collectors.connection import (
    AmqpConnection,
    BrokerURL,
    RedisConnection,
    classify_broker_url,
    display_url,
)
from alertd.durations import Duration, Interval
from alertd.errors import CollectorError
from alertd.models import Sample
from alertd.owner import in_thread

log = logging.getLogger(__name__)


class BrokerSettings(CollectorSettings):
    enabled: bool = Field(True, description="run this collector")
    interval: Interval = Field(15.0, description="how often the broker is checked")
    timeout: Duration = Field(5.0, description="how long the broker may take to answer before it counts as down")


def check_timeout(timeout: float) -> float:
    """The time a check may take within a run of ``timeout``: a little less, so that a broker that does not
    answer is reported as ``celery_broker_up 0`` by this collector, not as a timed-out collection."""
    return max(timeout * 0.8, timeout - 1.0)


class BrokerCollector(Collector):
    """Can alertd reach the broker, and how long does a round trip take."""

    type_name: ClassVar[str] = "broker"
    Settings: ClassVar[type[CollectorSettings]] = BrokerSettings

    def __init__(self, settings: CollectorSettings, context: CollectorContext) -> None:
        super().__init__(settings, context)
        self.last_error: str | None = None
        self._broker: BrokerURL | None = None
        self._redis: RedisConnection | None = None
        self._amqp: AmqpConnection | None = None
        self._warmed: Redis | None = None

    @property
    def display(self) -> str:
        return self._broker.display if self._broker is not None else display_url(self.context.broker_url)

    async def collect(self) -> list[Sample]:
        latency: float | None = None
        error: str | None = None
        try:
            if self._broker is None:
                self._broker = classify_broker_url(self.context.broker_url)
            latency = await self._check(self._broker)
        except CollectorError as exc:
            error = str(exc)
        now = self.context.clock.now()
        self._note(error)
        labels = {"broker": self.display}
        out = [Sample("celery_broker_up", labels, 0.0 if error else 1.0, now)]
        if latency is not None:
            out.append(Sample("celery_broker_latency_seconds", labels, latency, now))
        return out

    async def _check(self, broker: BrokerURL) -> float:
        limit = check_timeout(self.settings.timeout)
        if broker.kind == "redis":
            if self._redis is None:
                self._redis = RedisConnection(broker, limit)
            connection: RedisConnection | AmqpConnection = self._redis
            check: Callable[[Any], float] = self._ping
        else:
            if self._amqp is None:
                self._amqp = AmqpConnection(broker, limit)
            connection, check = self._amqp, _open_channel
        try:
            return await asyncio.wait_for(in_thread(connection.run, check), limit)
        except TimeoutError:
            raise CollectorError(f"no answer from {broker.display} within {limit:g}s") from None

    def _ping(self, client: Redis) -> float:
        if client is not self._warmed:
            # A new client connects (and authenticates) on its first command: that PING is not timed, so that
            # the figure is one round trip on every run.
            client.ping()
            self._warmed = client
        started = time.perf_counter()
        client.ping()
        return time.perf_counter() - started

    def _note(self, error: str | None) -> None:
        if error == self.last_error:
            return
        if error is not None:
            log.warning("broker %s is down: %s", self.display, error)
        elif self.last_error is not None:
            log.info("broker %s is up again", self.display)
        self.last_error = error

    async def close(self) -> None:
        for connection in (self._redis, self._amqp):
            if connection is not None:
                await in_thread(connection.close)


def _open_channel(conn: Any) -> float:
    started = time.perf_counter()
    channel = conn.channel()
    took = time.perf_counter() - started
    channel.close()
    return took
