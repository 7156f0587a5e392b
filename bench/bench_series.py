"""Timings of the series store and functions on 10,000 series: run ``python bench/bench_series.py``."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable

from alertd.models import Sample
from alertd.series.functions import increase, instant, rate
from alertd.series.selector import parse_selector
from alertd.series.store import SeriesStore

METRIC = "celery_task_succeeded_total"
TASKS = 1_000
WORKERS = 10
SAMPLES = 60
STEP = 15.0


def build() -> tuple[SeriesStore, float]:
    store = SeriesStore(retention=600)
    labels = [
        {"task_name": f"tasks.t{t}", "worker": f"celery@w{w}", "queue": "default" if t % 2 else "high"}
        for t in range(TASKS)
        for w in range(WORKERS)
    ]
    now = 0.0
    for i in range(SAMPLES):
        now = i * STEP
        store.add_many(Sample(METRIC, lb, float(i * (n % 7 + 1)), now) for n, lb in enumerate(labels))
    return store, now


def timed(fn: Callable[[], object], calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def row(name: str, times: list[float], note: str = "") -> None:
    times = sorted(times)
    mean = sum(times) / len(times) * 1e6
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1e6
    print(f"{name:<44} {len(times):>6} {mean:>12.1f} {p99:>12.1f}  {note}")


def main() -> None:
    t0 = time.perf_counter()
    store, now = build()
    built = time.perf_counter() - t0
    print(
        f"store: {store.series_count} series, {store.sample_count} samples, "
        f"built in {built:.2f}s ({built / store.sample_count * 1e6:.2f} µs/sample)\n"
    )
    print(f"{'operation':<44} {'calls':>6} {'mean µs':>12} {'p99 µs':>12}  result")

    eq = [parse_selector(f'{METRIC}{{task_name="tasks.t{t}"}}') for t in range(TASKS)]
    it = iter(range(10**9))
    times = timed(lambda: store.select(eq[next(it) % TASKS]), 2000)
    row('select {task_name="…"}', times, f"{len(store.select(eq[0]))} series")

    two = parse_selector(f'{METRIC}{{task_name="tasks.t7",worker="celery@w3"}}')
    row('select {task_name="…",worker="…"}', timed(lambda: store.select(two), 2000), "1 series")

    rx = parse_selector(f'{METRIC}{{task_name=~"tasks\\\\.t1[0-9]"}}')
    row(
        'select {task_name=~"tasks\\.t1[0-9]"}',
        timed(lambda: store.select(rx), 200),
        f"{len(store.select(rx))} series",
    )

    alt = parse_selector(f'{METRIC}{{task_name=~"tasks\\\\.t1|tasks\\\\.t2|tasks\\\\.t3"}}')
    row(
        'select {task_name=~"a|b|c"} (literals)',
        timed(lambda: store.select(alt), 2000),
        f"{len(store.select(alt))} series",
    )

    neg = parse_selector(f'{METRIC}{{worker!~"celery@w0"}}')
    row(
        'select {worker!~"…"} (filters all)',
        timed(lambda: store.select(neg), 20),
        f"{len(store.select(neg))} series",
    )

    ten = store.select(eq[1])
    thousand = store.select(parse_selector(f'{METRIC}{{worker="celery@w1"}}'))
    row("increase[10m] over 10 series", timed(lambda: increase(ten, now, 600), 2000), f"{len(ten)} results")
    row("increase[10m] over 1,000 series", timed(lambda: increase(thousand, now, 600), 50))
    row("instant over 1,000 series", timed(lambda: instant(thousand, now, 300), 50))

    def cycle() -> None:
        # One evaluation cycle of 1,000 rules like rate(metric{task_name="…"}[5m]).
        for sel in eq:
            rate(store.select(sel), now, 300)

    row("rule cycle: 1,000 x rate(select[5m])", timed(cycle, 5), "10,000 series read")

    store.gc(now)  # the first collection trims the 900s built above down to the 600s retention
    everything = store.select(parse_selector(METRIC))
    gc_times = []
    for i in range(10):
        now += STEP
        store.add_many(Sample(METRIC, s.labels, float(i), now) for s in everything)
        started = time.perf_counter()
        store.gc(now)
        gc_times.append(time.perf_counter() - started)
    row("gc (trims one sample from each series)", gc_times, f"{store.sample_count} samples kept")

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    print(f"\npeak RSS: {rss * scale / 2**20:.0f} MiB; total {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
