"""Event path latency, from a task failing in a real worker to its sample in the sink: run ``python bench/bench_events.py``."""

from __future__ import annotations

import asyncio
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alertd.collectors.base import CollectorContext  # noqa: E402
from alertd.collectors.events import EventConsumer, EventSettings, EventTranslator  # noqa: E402
from alertd.models import Sample  # noqa: E402
from tests import services  # noqa: E402
from tests.workers import start_worker  # noqa: E402

SEQUENTIAL = 1000
BURST = 500
SYNTHETIC = 100_000
LABELS = {"task_name": "tasks.payment.refund", "exception_type": "RefundDeclined"}


class Sink:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.failures = 0.0
        self.last_failure_at = 0.0  # the worker's own time of the newest failure
        self.arrived = 0.0
        self.workers_up = 0.0

    def __call__(self, samples: list[Sample]) -> None:
        now = time.time()
        with self.cond:
            for s in samples:
                if s.name == "celery_task_failures_total" and dict(s.labels) == LABELS:
                    self.failures, self.arrived = s.value, now
                elif s.name == "celery_task_last_failure_timestamp_seconds":
                    self.last_failure_at = s.value
                elif s.name == "celery_workers_online":
                    self.workers_up = s.value
            self.cond.notify_all()

    def wait(self, predicate: object, timeout: float = 30.0) -> None:
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):  # type: ignore[arg-type]
                raise TimeoutError("the bench waited too long")


def percentiles(values: list[float]) -> str:
    v = sorted(values)
    pick = lambda q: v[min(len(v) - 1, int(len(v) * q))] * 1000  # noqa: E731
    return (f"p50 {statistics.median(v) * 1000:7.1f} ms  p95 {pick(0.95):7.1f} ms  "
            f"p99 {pick(0.99):7.1f} ms  max {v[-1] * 1000:7.1f} ms")


def translator_throughput() -> None:
    t = EventTranslator()
    events = []
    for i in range(SYNTHETIC // 2):
        events.append({"type": "task-received", "uuid": f"u{i}", "name": f"tasks.t{i % 50}", "timestamp": float(i),
                       "hostname": "w@h"})
        events.append({"type": "task-failed", "uuid": f"u{i}", "exception": "ValueError('x')",
                       "timestamp": float(i) + 0.5, "hostname": "w@h"})
    started = time.perf_counter()
    for e in events:
        t.feed(e)
    took = time.perf_counter() - started
    print(f"translator: {len(events)} events in {took:.2f}s = {took / len(events) * 1e6:.1f} µs/event")


def main() -> None:
    translator_throughput()
    redis = services.start_redis()
    worker = None
    sink = Sink()
    consumer = EventConsumer(EventSettings(), CollectorContext(broker_url=redis.url), sink)
    thread = threading.Thread(target=lambda: asyncio.run(consumer.run()), daemon=True)
    try:
        worker = start_worker(redis.url, "bench-events", concurrency=2)
        thread.start()
        sink.wait(lambda: sink.workers_up >= 1)

        send_to_sample, failure_to_sample = [], []
        for _ in range(SEQUENTIAL):
            before = sink.failures
            sent = time.time()
            worker.send("tasks.payment.refund")
            sink.wait(lambda b=before: sink.failures > b)
            send_to_sample.append(sink.arrived - sent)
            failure_to_sample.append(sink.arrived - sink.last_failure_at)
        print(f"\none failure at a time, {SEQUENTIAL} failures of tasks.payment.refund (prefork, concurrency 2):")
        print(f"  apply_async -> sample in sink   {percentiles(send_to_sample)}")
        print(f"  task failed -> sample in sink   {percentiles(failure_to_sample)}")

        before = sink.failures
        sent = time.time()
        for _ in range(BURST):
            worker.send("tasks.payment.refund")
        sink.wait(lambda: sink.failures >= before + BURST, timeout=120)
        took = sink.arrived - sent
        print(f"\nburst of {BURST} failures: all counted {took:.2f}s after the first was sent "
              f"({BURST / took:.0f} failures/s through worker, broker and consumer)")
    finally:
        consumer.stop()
        thread.join(10)
        if worker is not None:
            worker.stop()
            Path(worker.log_path).unlink(missing_ok=True)
        redis.stop()


if __name__ == "__main__":
    main()
