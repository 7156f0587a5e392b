"""The daemon's scheduled jobs run on the event loop, through a real APScheduler; the owner check refuses calls
from any other thread."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from alertd.daemon import Daemon, build
from alertd.daemon.jobs import add_loop_job
from alertd.models import AlertState, Sample
from alertd.owner import WrongThreadError, in_thread
from tests.helpers import OFFLINE, write
from tests.loop_debug import debug_mode


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    write(tmp_path / "rules" / "q.toml", """
        [[groups]]
        name = "fast"
        interval = "0.1s"
        [[groups.rules]]
        name = "QueueDeep"
        select = "queue_depth"
        condition = "value > 10"
        summary = "deep"
        """)
    cfg = write(tmp_path / "alertd.toml", OFFLINE + f"""
        [http]
        enabled = false
        [receivers.console]
        type = "console"
        path = "{tmp_path / 'pages.log'}"
        [route]
        receiver = "console"
        group_wait = "0s"
        """)
    built = build(str(cfg))
    try:
        yield built
    finally:
        await built.close()


class Runs:
    """What APScheduler reports of each job: runs that ended, and errors with their exception."""

    def __init__(self, scheduler: AsyncIOScheduler) -> None:
        self.done: Counter[str] = Counter()
        self.errors: list[tuple[str, BaseException | None]] = []
        self.changed = asyncio.Event()
        scheduler.add_listener(self._seen, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def _seen(self, event: JobExecutionEvent) -> None:
        self.done[event.job_id] += 1
        if event.exception is not None:
            self.errors.append((event.job_id, event.exception))
        self.changed.set()

    async def until(self, enough: dict[str, int], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while any(self.done[job] < n for job, n in enough.items()):
                self.changed.clear()
                await self.changed.wait()


async def test_scheduled_jobs_run_on_the_loop_thread(
    daemon: Daemon, debug_loop: asyncio.AbstractEventLoop
) -> None:
    daemon.ingest([Sample("queue_depth", {"queue": "payments"}, 50.0, time.time())])
    scheduler = AsyncIOScheduler(event_loop=debug_loop)
    daemon.schedule(scheduler, housekeeping_interval=0.05)
    runs = Runs(scheduler)
    scheduler.start()
    try:
        # Each run of these touches the rule engine, the series store or the dispatcher, whose owner check
        # raises on any thread but the loop's: an error event would say so.
        await runs.until({"evaluate:fast": 3, "housekeeping": 3})
    finally:
        scheduler.shutdown(wait=False)
    assert runs.errors == []
    assert {job.id for job in scheduler.get_jobs()} == {"evaluate:fast", "housekeeping"}
    assert all(inspect.iscoroutinefunction(job.func) for job in scheduler.get_jobs())
    assert daemon.counters.evaluations >= 3
    assert [r.labels["alertname"] for r in daemon.engine.alerts([AlertState.FIRING])] == ["QueueDeep"]


async def test_a_plain_function_job_would_run_on_a_thread_and_the_owner_check_stops_it(daemon: Daemon) -> None:
    # What the daemon did before its jobs were coroutines: APScheduler runs a plain function on a thread.
    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
    runs = Runs(scheduler)
    scheduler.add_job(lambda: daemon.series.gc(time.time()), "interval", seconds=0.05, id="gc-on-a-thread")
    with pytest.raises(TypeError, match="not a coroutine function"):
        add_loop_job(scheduler, lambda: daemon.series.gc(time.time()), "refused", 1.0)  # type: ignore[arg-type]
    scheduler.start()
    try:
        await runs.until({"gc-on-a-thread": 1})
    finally:
        scheduler.shutdown(wait=False)
    job, error = runs.errors[0]
    assert job == "gc-on-a-thread"
    assert isinstance(error, WrongThreadError)
    assert "the series store belongs to thread 'MainThread'" in str(error)


async def test_the_owner_check_refuses_calls_from_another_thread(daemon: Daemon) -> None:
    now = time.time()
    assert daemon.pipeline is not None
    calls = {
        "the rule engine": lambda: daemon.engine.evaluate(now),
        "the series store": lambda: daemon.series.add_many([Sample("queue_depth", {}, 1.0, now)]),
        "the dispatcher": lambda: daemon.pipeline.put([]) if daemon.pipeline else None,
    }
    for what, call in calls.items():
        with pytest.raises(WrongThreadError, match=f"{what} belongs to thread 'MainThread'.*called from thread"):
            await in_thread(call)
    assert daemon.series.series_count == 0  # nothing got in
    daemon.evaluate_all()  # from the loop's own thread all is well
    assert daemon.counters.evaluations == 1


async def test_debug_mode_reports_a_callback_that_holds_the_loop() -> None:
    loop = asyncio.get_running_loop()
    with debug_mode(loop) as seen:
        loop.call_soon(time.sleep, 0.15)  # a blocking call, as a synchronous SQLite or DNS call would be
        await asyncio.sleep(0.01)
    slow = [p for p in seen.problems if "<Handle sleep(0.15)" in p]
    assert len(slow) == 1 and " took " in slow[0]
