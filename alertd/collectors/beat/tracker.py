"""Task events of beat's entries in, per-entry samples out: when each entry last ran, how it ended, when it is due.

Beat adds nothing to the messages it sends (no header, and task events carry none anyway), so a run is known
by its task name; when several entries send the same task, the entry whose args match the event's, else the
one whose due time is nearest, is credited. A task of the same name sent by hand counts as a run too.

A run counts when it starts (task-started): the next due time is computed from the moment the run was received
(task-received, or task-sent when the app sends those), which is within milliseconds of beat's own
``last_run_at``. Before the first run is seen the base is the moment watching began, so an entry that never
runs is overdue one period later. Pure and driven by given times, like the event translator.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alertd.collectors.beat.schedules import BeatEntry, next_due, read_beat_schedule
from alertd.collectors.beat.settings import BeatSettings
from alertd.models import Sample

log = logging.getLogger(__name__)

_SENT = ("task-sent", "task-received")
_ENDED = ("task-succeeded", "task-failed")
_DROPPED = ("task-revoked", "task-rejected")


@dataclass
class _EntryState:
    entry: BeatEntry
    base: float
    due: float
    period: float
    last_run: float | None = None
    last_delay: float | None = None
    last_failed: bool | None = None
    consecutive_failures: int = 0
    labels: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.labels = {"entry": self.entry.name, "task": self.entry.task}


@dataclass
class _Run:
    state: _EntryState
    received: float
    due: float
    started: bool = False


class BeatTracker:
    """Keeps each entry's last run and next due time, from the task events the translator hands over.

    ``task_event`` returns the samples of what an event changed at once (a failure wakes the rules that read
    it); ``tick(now)`` restates every entry's series every ``refresh_interval`` so that they stay current.
    """

    def __init__(
        self,
        entries: list[BeatEntry],
        *,
        now: float,
        refresh_interval: float = 30.0,
        overflow: int = 0,
        invalid: int = 0,
        max_runs: int = 10_000,
    ) -> None:
        self.refresh_interval = refresh_interval
        self.overflow = overflow
        self.invalid = invalid
        self.max_runs = max_runs
        self.last_sent = now
        self._states: list[_EntryState] = []
        self._by_task: dict[str, list[_EntryState]] = {}
        for entry in entries:
            due = next_due(entry.schedule, now)
            state = _EntryState(entry, now, due, next_due(entry.schedule, due) - due)
            self._states.append(state)
            self._by_task.setdefault(entry.task, []).append(state)
        # Runs received and not yet ended, by task id: bounded, the oldest forgotten first.
        self._runs: OrderedDict[str, _Run] = OrderedDict()
        self._refreshed = -math.inf

    # -- events -------------------------------------------------------------------------------------------

    def task_event(self, kind: str, uuid: str, name: str | None, event: Mapping[str, Any], at: float) -> list[Sample]:
        """Samples that one task event changes; nothing for tasks that no entry sends."""
        if not uuid:
            return []
        if kind in _SENT:
            return self._sent(uuid, name, event, at)
        run = self._runs.get(uuid)
        if run is None:
            return []
        if kind == "task-started":
            return self._started(run, at)
        if kind in _ENDED:
            del self._runs[uuid]
            out = [] if run.started else self._started(run, run.received)
            failed = kind == "task-failed"
            state = run.state
            state.last_failed = failed
            state.consecutive_failures = state.consecutive_failures + 1 if failed else 0
            return [*out, *self._entry_samples(state, at)]
        if kind in _DROPPED:
            del self._runs[uuid]
        return []

    def _sent(self, uuid: str, name: str | None, event: Mapping[str, Any], at: float) -> list[Sample]:
        candidates = self._by_task.get(name or "")
        if not candidates or uuid in self._runs:
            return []
        state = self._credit(candidates, event.get("args"), at)
        self._runs[uuid] = _Run(state, at, state.due)
        while len(self._runs) > self.max_runs:
            self._runs.popitem(last=False)
        self.last_sent = max(self.last_sent, at)
        return [Sample("celery_beat_last_sent_timestamp_seconds", {}, self.last_sent, at)]

    @staticmethod
    def _credit(candidates: list[_EntryState], args: object, at: float) -> _EntryState:
        if len(candidates) > 1 and isinstance(args, str):
            same_args = [s for s in candidates if s.entry.args_repr == args]
            if same_args:
                candidates = same_args
        return min(candidates, key=lambda s: abs(at - s.due))

    def _started(self, run: _Run, at: float) -> list[Sample]:
        if run.started:
            return []
        run.started = True
        state = run.state
        state.last_run = at
        state.last_delay = max(0.0, at - run.due)
        if run.received > state.base:
            state.base = run.received
            try:
                state.due = next_due(state.entry.schedule, state.base)
                state.period = next_due(state.entry.schedule, state.due) - state.due
            except Exception as exc:  # checked at load; a schedule that fails later keeps its last period
                log.warning("beat entry %s: cannot compute its next due time: %s", state.entry.name, exc)
                state.due = state.base + state.period
        return self._entry_samples(state, at)

    # -- series -------------------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Sample]:
        """Every entry's series, once every ``refresh_interval``; nothing in between."""
        if now - self._refreshed < self.refresh_interval:
            return []
        self._refreshed = now
        out = [
            Sample("celery_beat_entries", {}, float(len(self._states)), now),
            Sample("celery_beat_entries_overflow", {}, float(self.overflow), now),
            Sample("celery_beat_entries_invalid", {}, float(self.invalid), now),
            Sample("celery_beat_last_sent_timestamp_seconds", {}, self.last_sent, now),
        ]
        for state in self._states:
            out.extend(self._entry_samples(state, now))
        return out

    @staticmethod
    def _entry_samples(state: _EntryState, at: float) -> list[Sample]:
        labels = state.labels
        out = [
            Sample("celery_beat_entry_next_due_timestamp_seconds", labels, state.due, at),
            Sample("celery_beat_entry_period_seconds", labels, state.period, at),
        ]
        if state.last_run is not None:
            out.append(Sample("celery_beat_entry_last_run_timestamp_seconds", labels, state.last_run, at))
        if state.last_delay is not None:
            out.append(Sample("celery_beat_entry_last_run_delay_seconds", labels, state.last_delay, at))
        if state.last_failed is not None:
            out.append(Sample("celery_beat_entry_last_run_failed", labels, 1.0 if state.last_failed else 0.0, at))
            out.append(
                Sample("celery_beat_entry_consecutive_failures", labels, float(state.consecutive_failures), at)
            )
        return out


def beat_tracker_for(app: Any, settings: BeatSettings, now: float) -> BeatTracker | None:
    """A tracker of the app's beat entries, or None when there is no app, no entry or watching is off.

    Entries that cannot be evaluated are logged, one line each, and counted (``alertd check`` reports them as
    errors); the others are watched.
    """
    if app is None or not settings.enabled:
        return None
    entries, problems, overflow = read_beat_schedule(app, now, settings.max_entries)
    for problem in problems:
        log.warning("beat entry not watched: %s: %s", problem.field, problem.message)
    if overflow:
        log.warning("beat: %d entries beyond max_entries = %d are not watched", overflow, settings.max_entries)
    if not entries:
        return None
    return BeatTracker(
        entries, now=now, refresh_interval=settings.refresh_interval, overflow=overflow, invalid=len(problems)
    )
