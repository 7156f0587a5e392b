"""Cost of scraping a large Pushgateway (about 50,000 samples): run ``python bench/bench_pushgateway_parse.py``.

Starts its own prometheus-pushgateway (tests/services.py) and pushes what ``alertd.instrument`` pushes from
10 worker processes running 350 task names: the task-duration histogram (9 buckets), the started and completed
counters and their ``_created`` gauges. Then times, on the text the Pushgateway serves: the bare
prometheus_client parser, ``parse_exposition`` without and with a ``metric_prefixes`` pre-filter, the line
pre-filter alone, and a whole ``PushgatewayCollector.collect`` (HTTP, parse, groups).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from prometheus_client import CollectorRegistry, Counter, Histogram, push_to_gateway  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from alertd.collectors.base import CollectorContext  # noqa: E402
from alertd.collectors.pushgateway import PushgatewayCollector, PushgatewaySettings, parse_exposition  # noqa: E402
from alertd.instrument import DURATION_BUCKETS  # noqa: E402
from tests import services  # noqa: E402

PROCESSES = 10
TASKS = 350
REPEAT = 5


def push_all(url: str) -> None:
    for p in range(PROCESSES):
        registry = CollectorRegistry()
        started = Counter("celery_tasks_started_total", "Tasks started", ["task_name"], registry=registry)
        completed = Counter("celery_tasks_completed_total", "Tasks completed", ["task_name", "state"], registry=registry)
        duration = Histogram("celery_task_duration_seconds", "Task run time", ["task_name"],
                             buckets=DURATION_BUCKETS, registry=registry)
        for t in range(TASKS):
            name = f"proj.tasks.task_{t:03d}"
            started.labels(name).inc(t + p)
            completed.labels(name, "SUCCESS").inc(t)
            duration.labels(name).observe((t % 50) / 10)
        push_to_gateway(url, job="celery", registry=registry,
                        grouping_key={"instance": f"worker{p % 4}@host", "pid": str(1000 + p)})


def best(fn: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(REPEAT):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def bare_parse(text: str) -> int:
    return sum(len(f.samples) for f in text_string_to_metric_families(text))


async def main() -> None:
    gateway = services.start_pushgateway()
    try:
        push_all(gateway.url)
        text = httpx.get(gateway.url + "/metrics", headers={"Accept": "text/plain;version=0.0.4"}).text
        lines = text.count("\n")
        exposed = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        print(f"Pushgateway exposition: {len(text) / 1e6:.1f} MB, {lines:,} lines, {exposed:,} samples "
              f"({PROCESSES} processes x {TASKS} task names); best of {REPEAT}\n")
        print("| step | samples in | samples out | ms | samples in / s |")
        print("|---|---:|---:|---:|---:|")

        t, n = best(lambda: bare_parse(text))
        print(f"| prometheus_client parser alone | {exposed:,} | {n:,} | {t * 1000:.0f} | {exposed / t:,.0f} |")
        t, out = best(lambda: parse_exposition(text))
        print(f"| parse_exposition, everything | {exposed:,} | {len(out):,} | {t * 1000:.0f} | {exposed / t:,.0f} |")
        for prefixes in (["celery_tasks_"], ["celery_tasks_completed"]):
            t, out = best(lambda p=prefixes: parse_exposition(text, p))  # type: ignore[misc]
            print(f"| parse_exposition, metric_prefixes={prefixes} | {exposed:,} | {len(out):,} | {t * 1000:.0f} | "
                  f"{exposed / t:,.0f} |")
        keep = ("celery_tasks_completed", "push_time_seconds", "push_failure_time_seconds")
        t, kept = best(lambda: [ln for ln in text.splitlines() if ln.startswith(keep) or ln.startswith("#")])
        print(f"| the line pre-filter alone | {exposed:,} | {len(kept):,} lines | {t * 1000:.1f} | {exposed / t:,.0f} |")

        collector = PushgatewayCollector(PushgatewaySettings(url=gateway.url, timeout=30.0), CollectorContext())
        times = []
        for _ in range(REPEAT):
            started = time.perf_counter()
            samples = await collector.collect()
            times.append(time.perf_counter() - started)
        await collector.close()
        print(f"| PushgatewayCollector.collect (HTTP + parse + groups) | {exposed:,} | {len(samples):,} | "
              f"{min(times) * 1000:.0f} (median {statistics.median(times) * 1000:.0f}) | {exposed / min(times):,.0f} |")
    finally:
        gateway.stop()


if __name__ == "__main__":
    asyncio.run(main())
