"""Notification pipeline cost: 10,000 firing alerts in 500 groups through routing, 50 inhibit rules, silences
and dedup, every group flushed each cycle.

Run: .venv/bin/python bench/bench_pipeline.py [--cycles 50] [--store memory|sqlite]
Prints the first cycle (every group notified: render, outbox, delivery to a recording notifier), the time of
a steady cycle (p50/p99: the daemon's put of every active alert, then a flush of every group, where dedup finds
nothing new), and peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alertd.config.model import Config  # noqa: E402
from alertd.models import Alert  # noqa: E402
from alertd.notify.pipeline import NotificationPipeline, build_pipeline  # noqa: E402
from alertd.state.base import StateStore  # noqa: E402
from alertd.state.memory import MemoryStateStore  # noqa: E402
from alertd.state.sqlite import SQLiteStateStore  # noqa: E402
from alertd.testing import RecordingNotifier, VirtualClock, make_alert  # noqa: E402

RULES = 50
QUEUES = 10
WORKERS = 20  # alerts per group: 50 rules x 10 queues = 500 groups of 20
START = 1_700_000_000.0
GROUP_INTERVAL = 300.0


def settings() -> Config:
    return Config.model_validate({
        "receivers": {name: {"type": "recording"} for name in ("ops", "payments", "queues", "audit")},
        "route": {
            "receiver": "ops",
            "group_by": ["alertname", "queue"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "1000h",
            "routes": [
                {"matchers": ['team="payments"'], "receiver": "payments", "group_wait": "0s",
                 "routes": [{"matchers": ['severity="critical"'], "receiver": "audit"}]},
                {"matchers": ['queue=~"q[0-4]"'], "receiver": "queues"},
            ],
        },
        # 50 rules: a broker alert per rule mutes that rule's alerts on the same queue.
        "inhibit_rules": [
            {"source_matchers": [f'alertname="BrokerDown{i}"'], "target_matchers": [f'alertname="Rule{i}"'],
             "equal": ["queue"]}
            for i in range(RULES)
        ],
    })


def alerts() -> list[Alert]:
    out = []
    for r in range(RULES):
        team = "payments" if r % 5 == 0 else "platform"
        severity = "critical" if r % 2 == 0 else "warning"
        for q in range(QUEUES):
            for w in range(WORKERS):
                out.append(make_alert(
                    name=f"Rule{r}", rule=f"group/Rule{r}", starts_at=START,
                    labels={"queue": f"q{q}", "worker": f"celery@w{w}", "team": team, "severity": severity},
                ))
    # Five broker alerts, firing: they mute Rule0..Rule4 on queue q0 (100 alerts).
    out += [make_alert(name=f"BrokerDown{i}", labels={"queue": "q0"}, starts_at=START) for i in range(5)]
    return out


def silence(pipeline: NotificationPipeline) -> None:
    # 20 silences: some match (a rule's workers 10-19), most match nothing.
    for i in range(20):
        matchers = [f'alertname="Rule{i + 10}"', 'worker=~"celery@w1[0-9]"'] if i < 5 else [f'ticket="T-{i}"']
        pipeline.silences.add(matchers, ends_at=START + 10**7, created_by="bench", comment="")


async def run(cycles: int, store: StateStore) -> dict[str, float]:
    clock = VirtualClock(START)
    notifiers = {name: RecordingNotifier(name) for name in ("ops", "payments", "queues", "audit")}
    pipeline = build_pipeline(settings(), notifiers, store, clock, rng=random.Random(1))
    silence(pipeline)
    batch = alerts()

    clock.set(START + 60)  # the alerts fired a minute ago: no group waits
    started = time.perf_counter()
    pipeline.put(batch, complete=True)
    await pipeline.tick()
    first = time.perf_counter() - started
    sent = sum(len(n.sent) for n in notifiers.values())

    gc.collect()
    gc.freeze()  # as the daemon does after start-up
    times = []
    for _ in range(cycles):
        clock.advance(GROUP_INTERVAL)
        started = time.perf_counter()
        pipeline.put(batch, complete=True)
        flushed = await pipeline.dispatcher.flush_due()
        await pipeline.retry.run_due()
        times.append(time.perf_counter() - started)
    again = sum(len(n.sent) for n in notifiers.values()) - sent
    times.sort()
    return {
        "alerts": len(batch),
        "groups": len(pipeline.dispatcher.groups),
        "flushed": flushed,
        "first_ms": first * 1000,
        "first_sent": sent,
        "repeat_sent": again,
        "p50_ms": statistics.median(times) * 1000,
        "p99_ms": times[min(len(times) - 1, round(len(times) * 0.99))] * 1000,
        "max_ms": times[-1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    args = parser.parse_args()

    def make_store() -> StateStore:
        if args.store == "memory":
            return MemoryStateStore()
        return SQLiteStateStore(Path(tempfile.mkdtemp(prefix="alertd-bench-")) / "state.db")

    r = asyncio.run(run(args.cycles, make_store()))
    print(f"{r['alerts']:,} alerts in {r['groups']} groups ({len(settings().receivers)} receivers by route), "
          f"50 inhibit rules, 20 silences, {args.store} store")
    print(f"first cycle (every group notified, {r['first_sent']} notifications): {r['first_ms']:.1f} ms")
    print(f"steady cycle, {r['flushed']} groups flushed, {args.cycles} cycles: p50 {r['p50_ms']:.1f} ms, "
          f"p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms ({r['repeat_sent']} notifications: dedup)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")

    gc.unfreeze()
    tracemalloc.start()
    asyncio.run(run(3, make_store()))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"peak traced Python memory of a run (alerts, groups, caches, log): {peak / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
