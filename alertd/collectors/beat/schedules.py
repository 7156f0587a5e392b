"""A Celery app's ``beat_schedule`` in, entries whose due times alertd can compute out (or one problem per entry).

Due times come from Celery's own schedule classes: ``maybe_schedule`` turns a number or a ``timedelta`` into
``celery.schedules.schedule`` as beat does, and ``remaining_estimate(last_run_at)`` with the schedule's clock
pinned to a given instant gives the next due time after it, for ``schedule``, ``crontab``, ``solar`` and any
subclass of ``BaseSchedule`` that reads its clock through ``now()``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.schedules import BaseSchedule, maybe_schedule

# Probing a schedule at load: two consecutive due times after this many instants must be computable.
_PROBES = 2


@dataclass(frozen=True)
class BeatEntry:
    """One schedule entry: its name in ``beat_schedule``, the task it sends and its Celery schedule."""

    name: str
    task: str
    schedule: BaseSchedule
    args_repr: str | None = None
    """The repr of the entry's args, as a task-received event shows them, to tell apart entries of one task."""


@dataclass(frozen=True)
class ScheduleProblem:
    """An entry alertd cannot watch, and why, in one line."""

    entry: str
    message: str

    @property
    def field(self) -> str:
        return f"beat_schedule[{self.entry!r}]"


def _datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def next_due(schedule: BaseSchedule, after: float) -> float:
    """The first due time of ``schedule`` after a run at ``after`` (seconds since the epoch).

    Raises whatever the schedule raises, and ``ValueError`` for a due time that is not after ``after``.
    """
    at = _datetime(after)
    saved = schedule.nowfun
    schedule.nowfun = lambda: at  # the estimate is "from now"; pin now to the run so that it is exact
    try:
        remaining = schedule.remaining_estimate(at)
    finally:
        schedule.nowfun = saved
    seconds = remaining.total_seconds()
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"next due time is not after the last run ({seconds:g}s)")
    return after + seconds


def period(schedule: BaseSchedule, around: float) -> float:
    """The time between the two due times that follow ``around``: the entry's period there."""
    first = next_due(schedule, around)
    return next_due(schedule, first) - first


def _args_repr(args: object) -> str | None:
    if args is None:
        return "()"
    if isinstance(args, list | tuple):
        # The worker shows ``saferepr(args)`` of the tuple it received; short args repr the same way.
        return repr(tuple(args))
    return None


def read_beat_schedule(
    app: Any, now: float, max_entries: int = 10_000
) -> tuple[list[BeatEntry], list[ScheduleProblem], int]:
    """The app's beat entries, the problems of those alertd cannot evaluate, and how many were left out."""
    raw = getattr(getattr(app, "conf", None), "beat_schedule", None) or {}
    if not isinstance(raw, Mapping):
        return [], [ScheduleProblem("*", f"beat_schedule must be a mapping, got {type(raw).__name__}")], 0
    entries: list[BeatEntry] = []
    problems: list[ScheduleProblem] = []
    overflow = 0
    try:
        items = list(raw.items())
    except Exception as exc:  # a mapping of the user's own making
        return [], [ScheduleProblem("*", f"beat_schedule cannot be read: {type(exc).__name__}: {exc}")], 0
    for name, spec in items:
        entry, problem = _read_entry(app, str(name), spec, now)
        if problem is not None:
            problems.append(problem)
        elif entry is not None:
            if len(entries) >= max_entries:
                overflow += 1
            else:
                entries.append(entry)
    return entries, problems, overflow


def _read_entry(app: Any, name: str, spec: object, now: float) -> tuple[BeatEntry | None, ScheduleProblem | None]:
    if not isinstance(spec, Mapping):
        return None, ScheduleProblem(name, f"an entry must be a mapping, got {type(spec).__name__}")
    task = spec.get("task")
    if not isinstance(task, str) or not task:
        return None, ScheduleProblem(name, "task: must be a task name")
    given = spec.get("schedule")
    if isinstance(given, bool) or not isinstance(given, int | float | timedelta | BaseSchedule):
        return None, ScheduleProblem(
            name,
            "schedule: must be seconds, a timedelta or a celery.schedules schedule (crontab, solar...), "
            f"got {type(given).__name__} {given!r:.60}",
        )
    try:
        schedule = maybe_schedule(given, bool(spec.get("relative", False)), app=app)
    except Exception as exc:  # whatever the user's object raises when told its app
        return None, ScheduleProblem(name, f"schedule: {type(exc).__name__}: {exc}")
    assert isinstance(schedule, BaseSchedule)
    try:
        after = now
        for _ in range(_PROBES):
            after = next_due(schedule, after)
    except Exception as exc:  # a schedule alertd cannot evaluate is reported, never a crash
        return None, ScheduleProblem(name, f"schedule {schedule!r} cannot be evaluated: {type(exc).__name__}: {exc}")
    return BeatEntry(name, task, schedule, _args_repr(spec.get("args"))), None
