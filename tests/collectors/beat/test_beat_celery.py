"""Real celery beat (PersistentScheduler) and a real prefork worker (-E) on a private redis-server.

An entry every second runs and its series follow it; beat frozen with SIGSTOP pages PeriodicTaskMissed and
CeleryBeatDown through a real alertd within the entry's period plus its grace plus one evaluation interval.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alertd.collectors.base import CollectorContext
from alertd.collectors.beat import BeatSettings, beat_tracker_for
from alertd.collectors.events import EventConsumer, EventSettings
from tests.alertd_process import AlertdProcess
from tests.celeryapp.beat import EVERY_SECOND, make_beat_app
from tests.collectors.events.consumer_thread import Recorder
from tests.services import RedisServer, wait_until
from tests.test_daemon import firing
from tests.workers import CeleryBeat, CeleryWorker, start_beat

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
LABELS = {"entry": EVERY_SECOND, "task": "tasks.payment.charge"}


@pytest.fixture(scope="module")
def worker(module_redis: RedisServer, module_worker_factory: Callable[..., CeleryWorker]) -> CeleryWorker:
    return module_worker_factory(module_redis.url, "beat", heartbeat_interval=1)


@pytest.fixture
def beat(tmp_path: Path, worker: CeleryWorker) -> Iterator[Callable[[], CeleryBeat]]:
    started: list[CeleryBeat] = []

    def start() -> CeleryBeat:
        started.append(start_beat(worker.broker_url, worker.queue, tmp_path))
        return started[-1]

    try:
        yield start
    finally:
        for b in started:
            b.kill()


def test_an_entry_every_second_is_tracked_run_by_run(
    worker: CeleryWorker, beat: Callable[[], CeleryBeat]
) -> None:
    app = make_beat_app(worker.broker_url, worker.queue)
    tracker = beat_tracker_for(app, BeatSettings(refresh_interval=0.5), time.time())
    assert tracker is not None
    sink = Recorder()
    consumer = EventConsumer(
        EventSettings(tick_interval=0.2), CollectorContext(broker_url=worker.broker_url, celery_app=app), sink,
        beat=tracker,
    )
    thread = threading.Thread(target=lambda: asyncio.run(consumer.run()), daemon=True)
    thread.start()
    try:
        wait_until(lambda: sink.latest("alertd_event_stream_up") == 1, timeout=15, what="the event stream")
        beat()
        runs = lambda: {s.value for _, s in sink.matching("celery_beat_entry_last_run_timestamp_seconds", **LABELS)}  # noqa: E731
        wait_until(lambda: len(runs()) >= 3, timeout=30, what="three runs of the entry")
        last_run = max(runs())
        # Runs a second apart, each one the start of a run that beat sent on time and that succeeded.
        ordered = sorted(runs())
        assert all(0.3 < b - a < 3.0 for a, b in itertools.pairwise(ordered)), ordered
        due = sink.latest("celery_beat_entry_next_due_timestamp_seconds", **LABELS)
        assert due is not None and 0.5 < due - last_run <= 1.0
        assert sink.latest("celery_beat_entry_period_seconds", **LABELS) == 1.0
        assert sink.latest("celery_beat_entry_last_run_failed", **LABELS) == 0
        assert sink.latest("celery_beat_entry_consecutive_failures", **LABELS) == 0
        delay = sink.latest("celery_beat_entry_last_run_delay_seconds", **LABELS)
        assert delay is not None and delay < 1.0
        sent = sink.latest("celery_beat_last_sent_timestamp_seconds")
        assert sent is not None and abs(sent - last_run) < 1.0
    finally:
        consumer.stop()
        thread.join(10)
    assert not thread.is_alive()


def write_config(workdir: Path, broker_url: str, queue: str) -> Path:
    (workdir / "rules").mkdir()
    shutil.copy(ROOT / "rules" / "celery-beat.toml", workdir / "rules")
    cfg = workdir / "alertd.toml"
    cfg.write_text(f"""
rule_files = ["rules/*.toml"]
evaluation_interval = "1s"
[state]
url = "state.db"
[celery]
broker_url = "{broker_url}"
app = "tests.celeryapp.beat:app"
queues = ["{queue}"]
[events]
tick_interval = "0.2s"
[beat]
refresh_interval = "1s"
[collectors.inspect]
enabled = false
[collectors.workers]
enabled = false
[receivers.pages]
type = "console"
path = "pages.log"
[route]
receiver = "pages"
group_wait = "0s"
[http]
enabled = false
""")
    return cfg


def test_beat_frozen_pages_missed_and_down_within_the_grace(
    tmp_path: Path, worker: CeleryWorker, beat: Callable[[], CeleryBeat], monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = beat()
    wait_until(lambda: scheduler.sends() >= 2, timeout=30, what="beat sending")
    # alertd imports tests.celeryapp.beat:app, which reads its broker and queue from the environment.
    monkeypatch.setenv("ALERTD_TEST_BROKER_URL", worker.broker_url)
    monkeypatch.setenv("ALERTD_TEST_BEAT_QUEUE", worker.queue)
    with AlertdProcess(write_config(tmp_path, worker.broker_url, worker.queue)) as alertd:
        alertd.started()
        db = tmp_path / "state.db"
        # Healthy: runs keep coming, and neither alert is firing (one that fired while the stream was still
        # connecting has resolved with the first runs seen).
        sends = scheduler.sends()
        wait_until(lambda: scheduler.sends() >= sends + 3 and db.exists(), timeout=30, what="three more sends")
        wait_until(lambda: not firing(db, "PeriodicTaskMissed") and not firing(db, "CeleryBeatDown"),
                   timeout=10, what="no beat alert while beat runs")

        scheduler.pause()
        stopped = time.time()
        missed = wait_until(lambda: firing(db, "PeriodicTaskMissed"), timeout=15, what="PeriodicTaskMissed")
        missed_after = time.time() - stopped
        wait_until(lambda: firing(db, "CeleryBeatDown"), timeout=15, what="CeleryBeatDown")
        down_after = time.time() - stopped
        print(f"beat frozen -> PeriodicTaskMissed firing {missed_after:.2f}s, CeleryBeatDown {down_after:.2f}s")
        assert isinstance(missed, list)
        assert {k: missed[0][k] for k in ("entry", "task")} == LABELS
        # The last run came at most a period before the freeze; due a period after it, a grace of one period,
        # then at most one evaluation interval (1s), and a second of slack for a loaded machine.
        assert missed_after < 1 + 1 + 1 + 1
        assert down_after < 1 + 1 + 1 + 1
        pages = tmp_path / "pages.log"
        wait_until(lambda: pages.exists() and "PeriodicTaskMissed" in pages.read_text(), timeout=10, what="the page")
        page = pages.read_text()
        print(page)
        assert f"Periodic task {EVERY_SECOND} (tasks.payment.charge) did not start" in page
