"""Queue names (configured and discovered) in, the depth of each Celery queue on Redis or RabbitMQ out.

Redis: a queue is one list per priority step (``redis_keys``); every list of every queue is read in ONE
pipelined round trip: LLEN and the tail (the next message a worker takes) of each list, and the unacked hash
and index. Samples: ``celery_queue_depth{queue}`` (the sum of the lists), ``celery_queue_oldest_message_age_seconds``
(the oldest of the lists' next messages, which are each list's oldest: needs the publish time that
``alertd.instrument.stamp_publish_time`` puts in the headers, which stock Celery messages lack; 0 for an empty
queue, 0 for a publish time in the future), ``celery_queue_head_unstamped{queue}`` (next messages without a
publish time: never given an age), ``celery_queue_head_rejected{queue,reason}`` (next messages whose publish
time is in the ``future``, ``invalid``, or that are ``oversized``: over 1 MiB, never decoded),
``celery_queue_head_wait_seconds`` (how long the message
next in line has been next in line, as seen by this collector: a lower bound of its age that needs no publish
time, 0 when the head changes), ``celery_queue_unacked`` and ``celery_queue_unacked_oldest_age_seconds``
(messages workers hold unacknowledged, which includes tasks with an ETA or countdown).

RabbitMQ: a passive ``queue_declare`` per queue gives ``celery_queue_depth{queue}`` (ready messages) and
``celery_queue_consumers{queue}``; a queue that does not exist gives ``celery_queue_missing{queue} 1`` and no
depth at all (absent, not zero). RabbitMQ tells no message age without consuming, so there is none.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field
from redis import Redis

from alertd.collectors.base import Collector, CollectorContext, CollectorSettings
from alertd.collectors.connection import AmqpConnection, BrokerURL, RedisConnection, classify_broker_url
from alertd.collectors.redis_keys import RedisLayout, Tails, read_tails, resolve_layout
from alertd.durations import Duration, Interval
from alertd.models import Sample
from alertd.owner import in_thread

log = logging.getLogger(__name__)

# A publish time at most this far ahead of alertd's clock is clock skew between hosts, not a forgery.
_CLOCK_SKEW = 1.0

# After a failed discovery, try again sooner than discover_interval: the workers may just have been restarting.
_DISCOVER_RETRY = 60.0


@dataclass(frozen=True)
class _Read:
    """One queue as read from Redis: its depth (None after an error) and the tails of its lists, read."""

    depth: int | None
    error: str | None
    tails: Tails | None = None


class QueueSettings(CollectorSettings):
    enabled: bool = Field(True, description="run this collector")
    interval: Interval = Field(15.0, description="how often queue depths are read")
    timeout: Duration = Field(5.0, description="how long one reading of every queue may take")
    queues: list[str] = Field(default_factory=list, description="queues to watch, in addition to [celery] queues")
    priority_steps: list[int] | None = Field(
        None, description="Redis priority steps; default: the broker_transport_options of the app, else 0,3,6,9"
    )
    global_keyprefix: str | None = Field(
        None, description="Redis key prefix; default: global_keyprefix of broker_transport_options, else none"
    )
    oldest_message_age: bool = Field(
        True, description="Redis: read the next message of each queue for its age (same round trip)"
    )
    publish_time_header: str | None = Field(
        "alertd_published_at",
        description="message header holding the publish time (epoch seconds or ISO 8601), when publishers set one",
    )
    discover_queues: bool = Field(
        True, description="with a Celery app configured, also watch the queues its workers consume (active_queues)"
    )
    discover_interval: Duration = Field(300.0, description="how often the workers are asked for their queues")
    discover_timeout: Duration = Field(1.0, description="how long to wait for the workers' answers")


class QueueCollector(Collector):
    """The depth of each configured or discovered Celery queue, in one round trip on Redis."""

    type_name: ClassVar[str] = "queues"
    Settings: ClassVar[type[CollectorSettings]] = QueueSettings

    def __init__(self, settings: CollectorSettings, context: CollectorContext) -> None:
        super().__init__(settings, context)
        self.opts = settings if isinstance(settings, QueueSettings) else QueueSettings(**settings.model_dump())
        self._broker: BrokerURL | None = None
        self._redis: RedisConnection | None = None
        self._amqp: AmqpConnection | None = None
        self._heads: dict[str, tuple[str, float]] = {}
        self._discovered: dict[str, None] = {}
        self._discover_at = 0.0
        self._reported: dict[str, str | None] = {}

    # -- the queues ------------------------------------------------------------------------------------------

    async def queue_names(self) -> list[str]:
        """Configured queues, then discovered ones, each once, in that order."""
        names = dict.fromkeys([*self.opts.queues, *self.context.queues])
        names.update(await self._discover())
        return list(names)

    async def _discover(self) -> dict[str, None]:
        app = self.context.celery_app
        if app is None or not self.opts.discover_queues or time.monotonic() < self._discover_at:
            return self._discovered
        timeout = self.opts.discover_timeout
        try:
            replies = await in_thread(lambda: app.control.inspect(timeout=timeout).active_queues())
        except Exception as exc:
            self._report("discovery", f"cannot discover the workers' queues, keeping {len(self._discovered)} known: {exc}")
            self._discover_at = time.monotonic() + min(_DISCOVER_RETRY, self.opts.discover_interval)
            return self._discovered
        self._report("discovery", None)
        self._discover_at = time.monotonic() + self.opts.discover_interval
        # Queues are only ever added: a queue that no worker consumes any more is the one that backs up.
        for queues in (replies or {}).values():
            for queue in queues or ():
                exchange = queue.get("exchange") or {}
                if queue.get("name") and not (isinstance(exchange, dict) and exchange.get("type") == "fanout"):
                    self._discovered[str(queue["name"])] = None
        return self._discovered

    def layout(self) -> RedisLayout:
        """Priority steps, separator and key prefix: these settings, then the context's, then the app's options."""
        own = {"priority_steps": self.opts.priority_steps, "global_keyprefix": self.opts.global_keyprefix}
        app = self.context.celery_app
        app_options = getattr(app.conf, "broker_transport_options", None) if app is not None else None
        return resolve_layout(own, self.context.broker_transport_options, app_options)

    # -- collection ------------------------------------------------------------------------------------------

    def broker(self) -> BrokerURL:
        if self._broker is None:
            self._broker = classify_broker_url(self.context.broker_url)
        return self._broker

    async def collect(self) -> list[Sample]:
        broker = self.broker()
        queues = await self.queue_names()
        if broker.kind == "redis":
            return await self._collect_redis(broker, queues)
        if self._amqp is None:
            self._amqp = AmqpConnection(broker, self.opts.timeout)
        amqp = self._amqp
        found = await in_thread(amqp.run, lambda conn: self._declare_all(conn, queues))
        return self._amqp_samples(queues, found)

    async def _collect_redis(self, broker: BrokerURL, queues: Sequence[str]) -> list[Sample]:
        layout = self.layout()
        if self._redis is None:
            self._redis = RedisConnection(broker, self.opts.timeout)
        peek = self.opts.oldest_message_age
        plan = [(queue, layout.queue_keys(queue)) for queue in queues]
        header = self.opts.publish_time_header
        step = 2 if peek else 1

        def read(client: Redis) -> tuple[list[_Read], Any, Any]:
            pipe = client.pipeline(transaction=False)
            for _, keys in plan:
                for key in keys:
                    pipe.llen(key)
                    if peek:
                        pipe.lindex(key, -1)  # kombu LPUSHes and BRPOPs: the tail is the next message out
            pipe.hlen(layout.unacked)
            pipe.zrange(layout.unacked_index, 0, 0, withscores=True)
            results = pipe.execute(raise_on_error=False)
            reads, at = [], 0
            for _, keys in plan:
                chunk = results[at : at + step * len(keys)]
                at += step * len(keys)
                bad = next((r for r in chunk if isinstance(r, Exception)), None)
                if bad is not None:
                    reads.append(_Read(None, str(bad)))
                    continue
                tails = read_tails(chunk[1::2], header) if peek else None
                reads.append(_Read(sum(int(n) for n in chunk[::step]), None, tails))
            return reads, results[at], results[at + 1]

        # One pipelined round trip, and the decoding of its answer, in a thread: redis-py's blocking client
        # handles a long pipeline in half the time of its asyncio client, and the event loop stays free.
        reads, unacked, oldest = await in_thread(self._redis.run, read)
        now = self.context.clock.now()
        out: list[Sample] = []
        heads: dict[str, tuple[str, float]] = {}
        problems: list[str] = []
        for (queue, _), got in zip(plan, reads, strict=True):
            if got.depth is None:
                problems.append(f"queue {queue!r}: {got.error}")
                continue
            labels = {"queue": queue}
            out.append(Sample("celery_queue_depth", labels, float(got.depth), now))
            if peek:
                out.extend(self._ages(queue, labels, got, now, heads))
        self._heads = heads
        self._report("redis", "; ".join(problems) or None)
        if isinstance(unacked, Exception) or isinstance(oldest, Exception):
            self._report("unacked", f"cannot read {layout.unacked!r}: {unacked if isinstance(unacked, Exception) else oldest}")
        else:
            self._report("unacked", None)
            out.append(Sample("celery_queue_unacked", {}, float(unacked), now))
            age = max(now - float(oldest[0][1]), 0.0) if oldest else 0.0
            out.append(Sample("celery_queue_unacked_oldest_age_seconds", {}, age, now))
        return out

    def _ages(
        self, queue: str, labels: dict[str, str], got: _Read, now: float, heads: dict[str, tuple[str, float]]
    ) -> list[Sample]:
        # Lists are read one command after the other, not atomically: a list may have emptied between its LLEN
        # and its LINDEX, so the tails themselves say whether anything waits.
        tails = got.tails or Tails()
        # A publish time ahead of this clock by more than a skew allowance is forged or from a broken clock:
        # counted, and worth an age of 0 (never negative).
        future = sum(1 for published in tails.published if published > now + _CLOCK_SKEW)
        out = [
            Sample("celery_queue_head_unstamped", labels, float(tails.missing), now),
            Sample("celery_queue_head_rejected", {**labels, "reason": "future"}, float(future), now),
            Sample("celery_queue_head_rejected", {**labels, "reason": "invalid"}, float(tails.invalid), now),
            Sample("celery_queue_head_rejected", {**labels, "reason": "oversized"}, float(tails.oversized), now),
        ]
        if tails.head is None:
            out.append(Sample("celery_queue_oldest_message_age_seconds", labels, 0.0, now))
            out.append(Sample("celery_queue_head_wait_seconds", labels, 0.0, now))
            return out
        oldest = tails.oldest
        if oldest is not None:
            out.append(Sample("celery_queue_oldest_message_age_seconds", labels, max(now - oldest, 0.0), now))
        seen = self._heads.get(queue)
        since = seen[1] if seen is not None and seen[0] == tails.head.ident else now
        heads[queue] = (tails.head.ident, since)
        out.append(Sample("celery_queue_head_wait_seconds", labels, max(now - since, 0.0), now))
        return out

    @staticmethod
    def _declare_all(conn: Any, queues: Sequence[str]) -> dict[str, tuple[int, int] | str | None]:
        """Passive declares on the (blocking) kombu connection: counts, None when missing, or an error text."""
        found: dict[str, tuple[int, int] | str | None] = {}
        channel = None
        try:
            for queue in queues:
                if channel is None:
                    channel = conn.channel()
                try:
                    ok = channel.queue_declare(queue=queue, passive=True)
                    found[queue] = (int(ok.message_count), int(ok.consumer_count))
                except conn.channel_errors as exc:
                    # The broker closes the channel on a failed declare: the next queue gets a fresh one.
                    _close_quietly(channel)
                    channel = None
                    found[queue] = None if getattr(exc, "reply_code", None) == 404 else str(exc)
        finally:
            if channel is not None:
                _close_quietly(channel)
        return found

    def _amqp_samples(self, queues: Sequence[str], found: dict[str, tuple[int, int] | str | None]) -> list[Sample]:
        now = self.context.clock.now()
        out: list[Sample] = []
        problems = []
        for queue in queues:
            labels = {"queue": queue}
            result = found.get(queue)
            if isinstance(result, str):
                problems.append(f"queue {queue!r}: {result}")
            elif result is None:
                out.append(Sample("celery_queue_missing", labels, 1.0, now))
            else:
                out.append(Sample("celery_queue_missing", labels, 0.0, now))
                out.append(Sample("celery_queue_depth", labels, float(result[0]), now))
                out.append(Sample("celery_queue_consumers", labels, float(result[1]), now))
        self._report("amqp", "; ".join(problems) or None)
        return out

    def _report(self, topic: str, problem: str | None) -> None:
        """Log a problem once when it appears or changes, and once when it is gone."""
        before = self._reported.get(topic)
        if problem == before:
            return
        self._reported[topic] = problem
        if problem is not None:
            log.warning("queues collector: %s", problem)
        elif before is not None:
            log.info("queues collector: %s problem gone", topic)

    async def close(self) -> None:
        for connection in (self._redis, self._amqp):
            if connection is not None:
                await in_thread(connection.close)


def _close_quietly(channel: Any) -> None:
    # The broker may have closed it already.
    with contextlib.suppress(Exception):
        channel.close()

