"""Cost of scraping Flower's ``/metrics`` for 1,000 task names on 10 workers: run ``python bench/bench_scrape.py``.

Driving 1,000 task names through 10 real workers and a real Flower takes minutes per run, so the exposition is
built with Flower's own metric definitions (``flower/events.py``: names, labels, its default runtime buckets)
in a prometheus_client registry, filled as Flower fills it for tasks that were received, started and
succeeded, rendered once, and served from a loopback HTTP server. Then, best of 5 (median in brackets):
``ScrapeCollector.collect`` (HTTP, parse, labels) with everything and with ``metric_prefixes``; the memory one
scrape allocates at its peak (tracemalloc, a separate run); and rendering the same registry, what Flower spends
on its side of each scrape.
"""

from __future__ import annotations

import asyncio
import http.server
import statistics
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest  # noqa: E402

from alertd.collectors.base import CollectorContext  # noqa: E402
from alertd.collectors.scrape import ScrapeCollector, ScrapeSettings  # noqa: E402
from tests.services import free_port  # noqa: E402

WORKERS = 10
TASKS = 1000
REPEAT = 5
EVENTS = ("task-received", "task-started", "task-succeeded")


def flower_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    events = Counter("flower_events", "Number of events", ["worker", "type", "task"], registry=registry)
    runtime = Histogram("flower_task_runtime_seconds", "Task runtime", ["worker", "task"], registry=registry)
    prefetch = Gauge("flower_task_prefetch_time_seconds", "Prefetch wait", ["worker", "task"], registry=registry)
    prefetched = Gauge("flower_worker_prefetched_tasks", "Prefetched", ["worker", "task"], registry=registry)
    online = Gauge("flower_worker_online", "Worker online status", ["worker"], registry=registry)
    busy = Gauge("flower_worker_number_of_currently_executing_tasks", "Executing", ["worker"], registry=registry)
    for w in range(WORKERS):
        worker = f"celery@worker{w:02d}"
        online.labels(worker).set(1)
        busy.labels(worker).set(w % 4)
        for t in range(TASKS):
            task = f"proj.tasks.task_{t:04d}"
            for kind in EVENTS:
                events.labels(worker, kind, task).inc(t + w)
            runtime.labels(worker, task).observe((t % 100) / 10)
            prefetch.labels(worker, task).set(0.01 * (t % 7))
            prefetched.labels(worker, task).set(t % 3)
    return registry


def serve(body: bytes) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def scrape(url: str, prefixes: list[str], *, trace: bool = False) -> tuple[list[float], int, int]:
    settings = ScrapeSettings.model_validate({
        "timeout": "120s", "max_bytes": 100 * 2**20,
        "targets": {"flower": {"url": url, "metric_prefixes": prefixes}},
    })
    (collector,) = ScrapeCollector.instances(settings, CollectorContext())
    times, samples, peak = [], 0, 0
    try:
        for _ in range(1 if trace else REPEAT):
            if trace:
                tracemalloc.start()
            started = time.perf_counter()
            out = await collector.collect()
            times.append(time.perf_counter() - started)
            if trace:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            samples = len(out)
            del out
    finally:
        await collector.close()
    return times, samples, peak


async def main() -> None:
    registry = flower_registry()
    started = time.perf_counter()
    body = generate_latest(registry)
    render = time.perf_counter() - started
    exposed = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    server = serve(body)
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    print(f"Flower-shaped exposition: {len(body) / 1e6:.1f} MB, {exposed:,} samples "
          f"({TASKS:,} task names x {WORKERS} workers); best of {REPEAT} (median)\n")
    print("| step | samples out | ms per scrape | peak memory per scrape (MiB) |")
    print("|---|---:|---:|---:|")
    try:
        for label, prefixes in (("everything", []), ('metric_prefixes = ["flower_events_total"]', ["flower_events_total"]),
                                ('metric_prefixes = ["flower_worker_online"]', ["flower_worker_online"])):
            times, samples, _ = await scrape(url, prefixes)
            _, _, peak = await scrape(url, prefixes, trace=True)
            print(f"| `ScrapeCollector.collect`, {label} | {samples:,} | {min(times) * 1000:,.0f} "
                  f"({statistics.median(times) * 1000:,.0f}) | {peak / 2**20:,.0f} |")
        print(f"| Flower's side: rendering the registry (`generate_latest`) | {exposed:,} | {render * 1000:,.0f} | |")
    finally:
        server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
