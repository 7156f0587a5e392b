"""Periodic tasks: time from a missed run's deadline to the page, and what watching beat entries costs.

Run ``python bench/bench_beat.py [--rounds 8] [--evaluation-interval 2] [--refresh-interval 30]``.

Deadline to page: a real ``celery beat`` sends ``tasks.payment.charge`` every second to a real prefork worker
(-E) on a private redis-server; ``alertd run`` watches the entry with the shipped ``rules/celery-beat.toml`` and
pages a loopback PagerDuty. Each round freezes beat (SIGSTOP) at a random moment, reads the time of beat's last
send from its log, and measures from the deadline that PeriodicTaskMissed states (last send + period + grace,
here 1 s + 1 s) to the trigger read by the peer; then beat is thawed (SIGCONT) and the alert resolves.

Costs (in process, no I/O): ``BeatTracker.tick`` restating 10,000 entries, one run's three events, and
``next_due`` per schedule type.
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from celery import Celery  # noqa: E402
from celery.schedules import crontab, solar  # noqa: E402

from alertd.collectors.beat import BeatTracker, next_due, read_beat_schedule  # noqa: E402
from tests.alertd_process import AlertdProcess  # noqa: E402
from tests.peers.pagerduty import PagerDutyPeer  # noqa: E402
from tests.services import start_redis, wait_until  # noqa: E402
from tests.workers import start_beat, start_worker  # noqa: E402

KEY = "R0UT1NGKEY0123456789abcdef012345"
PERIOD = GRACE = 1.0


def config(workdir: Path, broker: str, queue: str, pagerduty: str, interval: float, refresh: float) -> Path:
    (workdir / "rules").mkdir()
    shutil.copy(ROOT / "rules" / "celery-beat.toml", workdir / "rules")
    cfg = workdir / "alertd.toml"
    cfg.write_text(f"""
rule_files = ["rules/*.toml"]
evaluation_interval = "{interval}s"
[state]
url = "state.db"
[celery]
broker_url = "{broker}"
app = "tests.celeryapp.beat:app"
queues = ["{queue}"]
[beat]
refresh_interval = "{refresh}s"
[collectors.inspect]
enabled = false
[http]
listen = "127.0.0.1:0"
[reload]
watch = false
[receivers.pager]
type = "pagerduty"
url = "{pagerduty}"
routing_key = "{KEY}"
[route]
receiver = "pager"
group_by = ["alertname", "entry"]
group_wait = "0s"
group_interval = "1s"
""")
    return cfg


def deadline_to_page(rounds: int, interval: float, refresh: float) -> None:
    import os

    redis = start_redis()
    worker = start_worker(redis.url, "bench-beat", concurrency=2)
    workdir = Path(tempfile.mkdtemp(prefix="alertd-bench-beat-"))
    beat = start_beat(redis.url, worker.queue, workdir)
    peer = PagerDutyPeer().start()
    os.environ["ALERTD_TEST_BROKER_URL"] = redis.url
    os.environ["ALERTD_TEST_BEAT_QUEUE"] = worker.queue
    alertd = AlertdProcess(config(workdir, redis.url, worker.queue, peer.enqueue_url, interval, refresh))

    def missed_triggers() -> list[tuple[float, str]]:
        return [(r.time, str(r.json.get("dedup_key"))) for r in peer.requests
                if r.json and r.json.get("event_action") == "trigger"
                and "did not start" in str(r.json.get("payload", {}).get("summary", ""))]

    def resolved(key: str) -> bool:
        return any(r.json and r.json.get("event_action") == "resolve" and r.json.get("dedup_key") == key
                   for r in peer.requests)

    try:
        alertd.start().started()
        latencies: list[float] = []
        for _ in range(rounds):
            sends = beat.sends()
            wait_until(lambda s=sends: beat.sends() >= s + 3, timeout=30, what="beat sending")  # type: ignore[misc]
            before = len(missed_triggers())
            time.sleep(random.uniform(0, interval))  # freeze at a random phase of the evaluation tick
            beat.pause()
            wait_until(lambda n=before: len(missed_triggers()) > n, timeout=30, what="the page")  # type: ignore[misc]
            last = beat.last_send()
            assert last is not None
            paged_at, key = missed_triggers()[-1]
            latencies.append(paged_at - (last + PERIOD + GRACE))
            beat.resume()
            wait_until(lambda k=key: resolved(k), timeout=30, what="the resolve")  # type: ignore[misc]
        latencies.sort()
        print(f"missed run's deadline -> PagerDuty trigger read, {rounds} rounds, evaluation every {interval:g}s, "
              f"series restated every {refresh:g}s:")
        print(f"  p50 {statistics.median(latencies):.2f} s   max {latencies[-1]:.2f} s   min {latencies[0]:.2f} s   "
              f"(goal: under {interval + 1:g} s)")
    finally:
        alertd.kill()
        beat.kill()
        peer.stop()
        worker.kill()
        redis.stop()


def costs() -> None:
    app = Celery("bench-beat", set_as_current=False)
    app.conf.timezone = "UTC"
    now = time.time()
    for label, sched in [("interval", 60), ("crontab */5", crontab(minute="*/5")),
                         ("crontab weekly", crontab(minute=0, hour=9, day_of_week="mon")),
                         ("solar sunrise", solar("sunrise", 52.5, 13.4))]:
        app.conf.beat_schedule = {"e": {"task": "t", "schedule": sched}}
        entries, _, _ = read_beat_schedule(app, now)
        n = 2000
        started = time.perf_counter()
        for i in range(n):
            next_due(entries[0].schedule, now + i * 7.0)
        print(f"next_due, {label}: {(time.perf_counter() - started) / n * 1e6:.1f} µs")

    app.conf.beat_schedule = {f"e{i}": {"task": f"tasks.t{i}", "schedule": crontab(minute=f"*/{1 + i % 30}")}
                              for i in range(10_000)}
    started = time.perf_counter()
    entries, _, _ = read_beat_schedule(app, now)
    tracker = BeatTracker(entries, now=now)
    built = time.perf_counter() - started
    tracemalloc.start()
    kept = BeatTracker(entries, now=now)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    print(f"10,000 crontab entries: read and first due times {built * 1000:.0f} ms; tracker state {size / 2**20:.1f} MiB")
    gc.freeze()  # as the daemon does after start-up
    times = []
    for i in range(5):
        started = time.perf_counter()
        samples = tracker.tick(now + 60 * (i + 1))
        times.append(time.perf_counter() - started)
    print(f"tick restating 10,000 entries: {statistics.median(times) * 1000:.1f} ms (median of 5), "
          f"{len(samples)} samples")
    n = 5000
    started = time.perf_counter()
    for i in range(n):
        at = now + 61 + i * 0.01
        uuid = f"u{i}"
        task = f"tasks.t{i % 10_000}"
        tracker.task_event("task-received", uuid, task, {"args": "()"}, at)
        tracker.task_event("task-started", uuid, None, {}, at + 0.001)
        tracker.task_event("task-succeeded", uuid, None, {}, at + 0.002)
    print(f"one run (received, started, succeeded): {(time.perf_counter() - started) / n * 1e6:.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--evaluation-interval", type=float, default=2.0)
    parser.add_argument("--refresh-interval", type=float, default=30.0, help="[beat] refresh_interval")
    parser.add_argument("--costs-only", action="store_true")
    args = parser.parse_args()
    costs()
    if not args.costs_only:
        deadline_to_page(args.rounds, args.evaluation_interval, args.refresh_interval)


if __name__ == "__main__":
    main()
