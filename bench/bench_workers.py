"""Broadcasts per minute of the workers and inspect collectors, and the time of one collection with 4 real workers: run ``python bench/bench_workers.py``."""

from __future__ import annotations

import asyncio
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alertd.collectors.base import Collector, CollectorContext, CollectorRunner  # noqa: E402
from alertd.collectors.workers import (  # noqa: E402
    InspectCollector,
    InspectSettings,
    WorkersCollector,
    WorkersSettings,
    celery_app_for,
)
from tests import services  # noqa: E402
from tests.workers import CeleryWorker, start_worker  # noqa: E402

WORKERS = 4
SCALE = 10.0  # the schedule runs 10x faster than the defaults; the counts are scaled back to a minute


def count_broadcasts(app: Any) -> Callable[[], int]:
    """Wrap ``app.control.broadcast`` (ping and every inspect command go through it) with a counter."""
    control = app.control
    original = control.broadcast
    calls = [0]

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    control.broadcast = counting
    return lambda: calls[0]


async def schedule(collectors: list[Collector], seconds: float) -> None:
    """Run each collector every ``interval / SCALE`` seconds, without overlap, as the daemon's scheduler does."""

    async def every(c: Collector) -> None:
        runner = CollectorRunner(c)
        period = c.settings.interval / SCALE
        next_run = time.monotonic()
        end = next_run + seconds
        while next_run < end:
            await runner.run()
            next_run += period
            await asyncio.sleep(max(0.0, next_run - time.monotonic()))

    await asyncio.gather(*(every(c) for c in collectors))


def timings(values: list[float]) -> str:
    v = sorted(values)
    return f"median {statistics.median(v) * 1000:6.0f} ms  max {v[-1] * 1000:6.0f} ms  ({len(v)} runs)"


async def bench(redis: services.RedisServer, workers: list[CeleryWorker]) -> None:
    context = CollectorContext(broker_url=redis.url)
    broadcasts = count_broadcasts(celery_app_for(context))

    ping = WorkersCollector(WorkersSettings(), context)
    inspect = InspectCollector(InspectSettings(), context)
    window = 60.0 / SCALE
    started = time.monotonic()
    await schedule([ping, inspect], window)
    elapsed = time.monotonic() - started
    per_minute = broadcasts() * 60.0 / (window * SCALE)
    print(f"default settings (workers every {ping.settings.interval:g}s, inspect every {inspect.settings.interval:g}s), "
          f"one scaled minute ({elapsed:.1f}s at {SCALE:g}x):")
    print(f"  broadcasts: {broadcasts()} = {per_minute:.0f} per minute (expected 60/30 x 1 + 60/60 x 5 = 7), "
          f"whatever the number of workers")

    print(f"\none collection with {len(workers)} prefork workers (default timeout {ping.settings.timeout:g}s):")
    for label, collector in (("workers (ping)", WorkersCollector(WorkersSettings(), context)),
                             ("inspect (5 commands)", InspectCollector(InspectSettings(), context))):
        runner = CollectorRunner(collector)
        first = await runner.run()
        assert first.ok, first.error
        times = []
        for _ in range(10):
            run = await runner.run()
            assert run.ok, run.error
            times.append(run.duration)
        print(f"  {label:<22} first run (finds the workers, waits out the reply timeout) {first.duration * 1000:5.0f} ms")
        print(f"  {label:<22} next runs (stop when all {len(workers)} answered)  {timings(times)}")


def main() -> None:
    redis = services.start_redis()
    workers: list[CeleryWorker] = []
    try:
        for i in range(WORKERS):
            workers.append(start_worker(redis.url, f"bench-w{i}", concurrency=2, heartbeat_interval=2))
        asyncio.run(bench(redis, workers))
    finally:
        for w in workers:  # all at once: each warm shutdown takes a moment
            w.process.send_signal(signal.SIGTERM)
        for w in workers:
            w.stop()
            Path(w.log_path).unlink(missing_ok=True)
        redis.stop()


if __name__ == "__main__":
    main()
