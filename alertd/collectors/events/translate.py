"""Celery events in, samples out: task outcome counters and worker liveness, pure and driven by given times."""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alertd.collectors.events.labels import LabelCap
from alertd.models import LabelsKey, Sample, labels_key

if TYPE_CHECKING:
    from alertd.collectors.beat.tracker import BeatTracker

UNKNOWN = "unknown"

# Celery's own default heartbeat interval: used for a worker whose heartbeat carries no ``freq``.
DEFAULT_HEARTBEAT_FREQ = 2.0

# Celery's ``events.state.HEARTBEAT_EXPIRE_WINDOW`` is 200 (percent of ``freq``): Flower and ``celery events``
# call a worker offline after two silent heartbeat intervals, and alertd agrees with them by default.
DEFAULT_HEARTBEAT_MULTIPLIER = 2.0

# A counter increment this long after the previous one restates the previous value first (see _increment).
_QUIET = 1.0
_COUNTERS = {
    "task-failed": "celery_task_failures_total",
    "task-succeeded": "celery_task_successes_total",
    "task-retried": "celery_task_retries_total",
}
# ``exception`` is the repr of the exception in the worker: "ValueError('x')", "TimeLimitExceeded(5,)".
_EXC_CALL = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\(")
_EXC_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*$")
_EXC_LONGEST = 128  # a longer "class name" is not one

UP, LOST, OFFLINE = "up", "lost", "offline"


def exception_type(text: object) -> str:
    """The class name in an event's ``exception`` field: "ValueError('x')" -> "ValueError"; else "unknown"."""
    if not isinstance(text, str):
        return UNKNOWN
    m = _EXC_CALL.match(text) or _EXC_NAME.match(text)
    if m is None:
        return UNKNOWN
    name = m.group(1).rsplit(".", 1)[-1]
    return name if len(name) <= _EXC_LONGEST else UNKNOWN


def _float(value: object, default: float) -> float:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) else default


@dataclass
class WorkerState:
    """What the event stream has told about one worker."""

    hostname: str
    freq: float
    last_seen: float
    status: str = UP
    # When the status last changed: a lost or offline worker is forgotten ``forget_after`` later.
    changed_at: float = 0.0
    active: float | None = None
    load1: float | None = None


class EventTranslator:
    """Turns Celery events into samples and keeps the worker states that liveness needs.

    ``feed`` takes one event as the Celery receiver hands it (a dict with ``type``, ``timestamp``, ``hostname``,
    ``uuid``... and ``local_received``, the receiver's clock when the event arrived); ``tick(now)`` evaluates
    heartbeat expiry. Neither reads a clock nor does I/O, so ``alertd test`` replays events on a virtual clock.

    Samples are stamped with ``local_received`` when the event has it, else with ``timestamp``: workers'
    clocks drift, and the series store keeps each series in alertd's own time order, so the time of receipt
    is the one that every sample of a series can agree on. The same goes for heartbeat expiry, which Celery's
    ``State`` also measures on the receiver's clock.

    Label values come from whoever publishes on the broker, so each label is bounded: at most
    ``max_label_values`` task names, exception types and workers. A task name or exception type past the cap is
    counted under ``__overflow__``; an event from a worker past the cap is not tracked. ``on_overflow(label)``
    hears of each value held back. Counters and label values with no event for ``label_idle_after`` are
    forgotten at the next ``tick``, making room for new ones.
    """

    def __init__(
        self,
        *,
        heartbeat_multiplier: float = DEFAULT_HEARTBEAT_MULTIPLIER,
        forget_after: float = 3600.0,
        max_task_names: int = 10_000,
        max_label_values: int = 10_000,
        label_idle_after: float = 3600.0,
        on_overflow: Callable[[str], None] | None = None,
        stream_up: bool = True,
        beat: BeatTracker | None = None,
    ) -> None:
        self.heartbeat_multiplier = heartbeat_multiplier
        self.forget_after = forget_after
        self.max_task_names = max_task_names
        self.max_label_values = max_label_values
        self.label_idle_after = label_idle_after
        self.on_overflow = on_overflow
        self.caps = {
            label: LabelCap(label, max_label_values, label_idle_after, self._overflowed)
            for label in ("task_name", "exception_type")
        }
        self.workers: dict[str, WorkerState] = {}
        self.events_received = 0
        self.stream_up = stream_up
        # The runs of beat's schedule entries, when the app has any (see alertd.collectors.beat).
        self.beat = beat
        # Only task-received carries the task name: remember it by uuid, in bounded memory.
        self._task_names: OrderedDict[str, str] = OrderedDict()
        self._counters: dict[tuple[str, LabelsKey], float] = {}
        # When each counter last moved, oldest first: idle ones are forgotten from the front.
        self._counter_times: OrderedDict[tuple[str, LabelsKey], float] = OrderedDict()

    # -- events -----------------------------------------------------------------------------------------

    def feed(self, event: Mapping[str, Any]) -> list[Sample]:
        """Samples for one event: counters and gauges that it changes, stamped with its time of receipt."""
        kind = str(event.get("type", ""))
        sent = _float(event.get("timestamp"), math.nan)
        at = _float(event.get("local_received"), sent)
        if math.isnan(at):
            return []
        self.events_received += 1
        out = [Sample("alertd_events_received_total", {}, float(self.events_received), at)]
        if not math.isnan(sent):
            out.append(Sample("alertd_event_lag_seconds", {}, max(0.0, at - sent), at))
        if kind.startswith("task-"):
            out.extend(self._task_event(kind, event, at, sent))
        elif kind.startswith("worker-"):
            out.extend(self._worker_event(kind, event, at))
        return out

    def _task_event(self, kind: str, event: Mapping[str, Any], at: float, sent: float) -> list[Sample]:
        uuid = str(event.get("uuid", ""))
        name = event.get("task_name") or event.get("name")
        if kind == "task-received" and name and uuid:
            self._remember(uuid, str(name))
        self._seen_alive(event, at)
        beat: list[Sample] = []
        if self.beat is not None:
            beat = self.beat.task_event(kind, uuid, str(name) if name else None, event, at)
        counter = _COUNTERS.get(kind)
        if counter is None:
            return beat
        if not name:
            name = self._task_names.get(uuid, UNKNOWN)
        if kind in ("task-failed", "task-succeeded"):
            self._task_names.pop(uuid, None)
        labels = {"task_name": self.caps["task_name"].admit(str(name), at)}
        if kind == "task-failed":
            exc = str(event.get("exception_type") or exception_type(event.get("exception")))
            labels["exception_type"] = self.caps["exception_type"].admit(exc, at)
        out = self._increment(counter, labels, at)
        if kind == "task-failed":
            when = at if math.isnan(sent) else sent
            out.append(Sample("celery_task_last_failure_timestamp_seconds", labels, when, at))
        return [*beat, *out]

    def _remember(self, uuid: str, name: str) -> None:
        names = self._task_names
        names[uuid] = name
        names.move_to_end(uuid)
        while len(names) > self.max_task_names:
            names.popitem(last=False)

    def _increment(self, name: str, labels: dict[str, str], at: float) -> list[Sample]:
        key = (name, labels_key(labels))
        previous = self._counters.get(key)
        value = (previous or 0.0) + 1.0
        self._counters[key] = value
        out = []
        last_at = self._counter_times.get(key)
        if previous is None:
            # A counter born at 1 has no earlier sample, so increase() over a window would see no change and
            # the first failure would never page. Prometheus solves this with created-timestamp zero
            # injection: the series starts at 0 just before its first increment.
            out.append(Sample(name, labels, 0.0, at - 0.001))
        elif last_at is None or at - last_at > _QUIET:
            # After a quiet spell longer than a rule's window the previous value is out of the window, and the
            # one new sample alone shows no increase: restate the previous value just before the new one.
            out.append(Sample(name, labels, previous, at - 0.001))
        self._counter_times[key] = at
        self._counter_times.move_to_end(key)
        out.append(Sample(name, labels, value, at))
        return out

    def _seen_alive(self, event: Mapping[str, Any], at: float) -> None:
        # Task events come from a live worker too; a late event after worker-offline does not revive it.
        hostname = event.get("hostname")
        worker = self.workers.get(str(hostname)) if hostname else None
        if worker is not None and worker.status != OFFLINE and at > worker.last_seen:
            worker.last_seen = at
            if worker.status == LOST:
                worker.status, worker.changed_at = UP, at

    def _worker_event(self, kind: str, event: Mapping[str, Any], at: float) -> list[Sample]:
        hostname = str(event.get("hostname") or UNKNOWN)
        worker = self.workers.get(hostname)
        freq = _float(event.get("freq"), DEFAULT_HEARTBEAT_FREQ) or DEFAULT_HEARTBEAT_FREQ
        if worker is None and len(self.workers) >= self.max_label_values:
            self._overflowed("worker")
            return []
        if worker is None:
            worker = self.workers[hostname] = WorkerState(hostname, freq, at, changed_at=at)
        if kind == "worker-offline":
            worker.status, worker.changed_at = OFFLINE, at
            worker.active = worker.load1 = None
        elif kind in ("worker-online", "worker-heartbeat"):
            worker.freq = freq
            worker.last_seen = max(worker.last_seen, at)
            if worker.status != UP:
                worker.status, worker.changed_at = UP, at
            if "active" in event:
                worker.active = _float(event.get("active"), 0.0)
            load = event.get("loadavg")
            if isinstance(load, list | tuple) and load:
                worker.load1 = _float(load[0], 0.0)
        else:
            return []
        return [*self._worker_samples(worker, at), self._online(at)]

    # -- liveness ---------------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Sample]:
        """Re-evaluate every worker at ``now``: expire silent ones, forget long-gone ones, count the online."""
        out: list[Sample] = [Sample("alertd_event_stream_up", {}, 1.0 if self.stream_up else 0.0, now)]
        self._forget_idle(now)
        for hostname in list(self.workers):
            worker = self.workers[hostname]
            if worker.status == UP and self.stream_up:
                expires = worker.last_seen + worker.freq * self.heartbeat_multiplier
                if now > expires:
                    worker.status, worker.changed_at = LOST, expires
                    worker.active = worker.load1 = None
            if worker.status != UP and now - worker.changed_at > self.forget_after:
                del self.workers[hostname]
                continue
            out.extend(self._worker_samples(worker, now))
        out.append(self._online(now))
        if self.beat is not None:
            out.extend(self.beat.tick(now))
        return out

    def _overflowed(self, label: str) -> None:
        if self.on_overflow is not None:
            self.on_overflow(label)

    def _forget_idle(self, now: float) -> None:
        for cap in self.caps.values():
            cap.forget_idle(now)
        times, before = self._counter_times, now - self.label_idle_after
        while times:
            key, last = next(iter(times.items()))
            if last > before:
                break
            del times[key]
            self._counters.pop(key, None)

    def set_stream_up(self, up: bool, now: float) -> list[Sample]:
        """Record the event stream's connection state; returns the ``alertd_event_stream_up`` sample.

        While the stream is down no heartbeat can arrive, so no worker is declared lost; once it is back,
        every worker that was up gets a full heartbeat window from ``now`` before it can be.
        """
        if up and not self.stream_up:
            for worker in self.workers.values():
                if worker.status == UP:
                    worker.last_seen = max(worker.last_seen, now)
        self.stream_up = up
        return [Sample("alertd_event_stream_up", {}, 1.0 if up else 0.0, now)]

    def _worker_samples(self, worker: WorkerState, at: float) -> list[Sample]:
        labels = {"worker": worker.hostname}
        out = [
            Sample("celery_worker_up", labels, 1.0 if worker.status == UP else 0.0, at),
            Sample("celery_worker_lost", labels, 1.0 if worker.status == LOST else 0.0, at),
            Sample("celery_worker_offline", labels, 1.0 if worker.status == OFFLINE else 0.0, at),
            Sample("celery_worker_heartbeat_age_seconds", labels, max(0.0, at - worker.last_seen), at),
        ]
        if worker.status == UP:
            if worker.active is not None:
                out.append(Sample("celery_worker_active_tasks", labels, worker.active, at))
            if worker.load1 is not None:
                out.append(Sample("celery_worker_load1", labels, worker.load1, at))
        return out

    def _online(self, at: float) -> Sample:
        count = sum(1 for w in self.workers.values() if w.status == UP)
        return Sample("celery_workers_online", {}, float(count), at)

    def known_workers(self) -> list[str]:
        """Hostnames of the workers that are up, for collectors that size their broadcasts by them."""
        return sorted(h for h, w in self.workers.items() if w.status == UP)
