"""Time and round trips of one queue-depth collection on Redis, 100 to 1,000 queues: run ``python bench/bench_queues.py``.

Starts its own redis-server (tests/services.py), fills it with real Celery task messages (no worker), and
times ``QueueCollector.collect`` with the default and with ten priority steps, depth alone and with the age of
the oldest message (``oldest_message_age``: the next message of every list read in the same pipeline). The
messages are sent with ``alertd.instrument.stamp_publish_time`` on, as a stamping producer sends them, so every
queue has an age. For comparison: one LLEN per list without a pipeline, which is what a naive exporter does.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from celery import Celery  # noqa: E402
from redis.connection import AbstractConnection  # noqa: E402

import alertd.instrument  # noqa: E402
from alertd.collectors.base import CollectorContext  # noqa: E402
from alertd.collectors.queues import QueueCollector, QueueSettings  # noqa: E402
from alertd.collectors.redis_keys import resolve_layout  # noqa: E402
from tests import services  # noqa: E402

RUNS = 200
TEN_STEPS = {"priority_steps": list(range(10)), "queue_order_strategy": "priority"}

_sends = [0]
_original_send = AbstractConnection.send_packed_command


def _counting_send(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
    _sends[0] += 1
    _original_send(self, command, check_health)


AbstractConnection.send_packed_command = _counting_send  # type: ignore[method-assign]


def fill(url: str, queues: list[str], options: dict[str, Any]) -> int:
    """One real Celery message per priority 0..9 in every queue, stamped with its publish time."""
    alertd.instrument.stamp_publish_time()
    app = Celery("bench-queues", broker=url, set_as_current=False)
    app.conf.broker_transport_options = options
    sent = 0
    with app.producer_or_acquire() as producer:
        for queue in queues:
            for priority in range(10):
                app.send_task("tasks.bench", args=(queue, priority), kwargs={"payload": "x" * 200},
                              queue=queue, priority=priority, producer=producer)
                sent += 1
    app.close()
    return sent


async def time_collect(
    url: str, queues: list[str], options: dict[str, Any], peek: bool
) -> tuple[list[float], float, int]:
    context = CollectorContext(broker_url=url, queues=queues, broker_transport_options=options)
    collector = QueueCollector(QueueSettings(oldest_message_age=peek), context)
    ages = sum(s.name == "celery_queue_oldest_message_age_seconds" for s in await collector.collect())  # connects
    times = []
    _sends[0] = 0
    for _ in range(RUNS):
        started = time.perf_counter()
        await collector.collect()
        times.append(time.perf_counter() - started)
    trips = _sends[0] / RUNS
    await collector.close()
    return times, trips, ages


def naive(url: str, queues: list[str], options: dict[str, Any]) -> list[float]:
    client = redis.Redis.from_url(url)
    keys = [k for q in queues for k in resolve_layout(options).queue_keys(q)]
    times = []
    for _ in range(20):
        started = time.perf_counter()
        for key in keys:
            client.llen(key)
        times.append(time.perf_counter() - started)
    client.close()
    return times


def ms(values: list[float], q: float) -> float:
    return 1000 * statistics.quantiles(values, n=100)[int(q) - 1] if q < 100 else 1000 * max(values)


async def main() -> None:
    server = services.start_redis()
    try:
        print(f"redis-server on port {server.port}; {RUNS} collections per row; real Celery messages (~1.1 KB)\n")
        print("| queues | steps | lists | oldest message age | ages | round trips | p50 ms | p99 ms | naive LLEN loop ms |")
        print("|---:|---:|---:|---|---:|---:|---:|---:|---:|")
        for count in (100, 1000):
            for name, options in (("4 (default)", {}), ("10", TEN_STEPS)):
                queues = [f"{name[:2].strip()}-q{i:04d}" for i in range(count)]
                fill(server.url, queues, options)
                lists = count * len(resolve_layout(options).priority_steps)
                loop = statistics.median(naive(server.url, queues, options)) * 1000
                for peek in (False, True):
                    times, trips, ages = await time_collect(server.url, queues, options, peek)
                    print(f"| {count:,} | {name} | {lists:,} | {'yes' if peek else 'no'} | {ages:,} | {trips:g} | "
                          f"{ms(times, 50):.2f} | {ms(times, 99):.2f} | {loop:.1f} |")
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
