"""The daemon's jobs on APScheduler: a coroutine function and an interval in; a job on the event loop out.

APScheduler's asyncio scheduler runs a coroutine function as a task on the loop, but a plain function on the
loop's thread pool, from where it would change the rule engine, the series store and the dispatcher while the
loop changes them too (``alertd.owner``). Every job is therefore added here, which accepts coroutines only.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger("alertd")


def add_loop_job(
    scheduler: AsyncIOScheduler,
    func: Callable[..., Coroutine[Any, Any, object]],
    job_id: str,
    seconds: float,
    args: Sequence[object] = (),
    **options: Any,
) -> None:
    """Run ``func(*args)`` on the loop every ``seconds``, never two runs of it at once."""
    if not inspect.iscoroutinefunction(func):
        raise TypeError(f"job {job_id}: {func!r} is not a coroutine function; APScheduler would run it on a thread")
    scheduler.add_job(func, "interval", args=list(args), seconds=seconds, id=job_id, max_instances=1, **options)


def log_skipped_runs(scheduler: AsyncIOScheduler) -> None:
    """Say so when a run is skipped because the previous one was still going."""

    def skipped(event: JobExecutionEvent) -> None:
        log.warning("job %s skipped: the previous run was still going (running behind)", event.job_id)

    scheduler.add_listener(skipped, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
