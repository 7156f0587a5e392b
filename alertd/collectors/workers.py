"""Workers' answers to control.ping and inspect in, liveness and per-worker task counts out.

Broadcasts are bounded: at default settings ``workers`` sends one ping every 30s and ``inspect`` five
inspect commands every 60s, 7 broadcasts a minute whatever the size of the cluster. Replies are awaited for a
little less than the collector's ``timeout`` (``reply_timeout``), so that a cluster with no worker reports
``celery_workers_responding 0`` instead of a timed-out collection, and each broadcast stops waiting as soon as
every known worker has answered (``limit``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from pydantic import Field

from alertd.collectors.base import Collector, CollectorContext, CollectorSettings
from alertd.durations import Duration, Interval, format_duration
from alertd.models import Sample
from alertd.owner import in_pool, in_thread
from alertd.tables import format_table

log = logging.getLogger(__name__)

_APPS: dict[tuple[str, str], Any] = {}

INSPECT_COMMANDS = ("active", "reserved", "scheduled", "registered", "stats")
_LISTS = {
    "active": "celery_worker_active",
    "reserved": "celery_worker_reserved",
    "scheduled": "celery_worker_scheduled",
    "registered": "celery_worker_registered_tasks",
}


def celery_app_for(context: CollectorContext) -> Any:
    """The Celery app to talk to the workers with: the configured one, else a minimal one made once per broker."""
    if context.celery_app is not None:
        return context.celery_app
    key = (context.broker_url, repr(sorted(context.broker_transport_options.items())))
    app = _APPS.get(key)
    if app is None:
        from celery import Celery

        app = Celery("alertd", broker=context.broker_url, set_as_current=False)
        app.conf.broker_transport_options = dict(context.broker_transport_options)
        _APPS[key] = app
    return app


def reply_timeout(timeout: float) -> float:
    """How long a broadcast waits for replies within a collection of ``timeout`` seconds.

    Connecting and publishing take time too (the first collection also builds the app and its connection):
    waiting the whole ``timeout`` for replies would make every collection with a missing worker time out
    instead of reporting who answered. Workers answer in milliseconds; only a missing one is waited for.
    """
    return max(timeout * 0.5, timeout - 1.0)


class _Known:
    """How many workers to wait for: those known from the event stream and from the last answer.

    A broadcast with ``limit`` returns as soon as that many workers have answered. A worker no one knows
    yet is found by a broadcast that waits out its timeout: the first one, and, when no event stream tells of
    new workers, one every ``rediscover_interval``.
    """

    def __init__(self, rediscover_interval: float) -> None:
        self.rediscover_interval = rediscover_interval
        self.last_answered: set[str] = set()
        self.last_full = -float("inf")

    def limit(self, from_events: Iterable[str] | None) -> int | None:
        known = set(self.last_answered)
        if from_events is not None:
            known.update(from_events)
        now = time.monotonic()
        # With the event stream wired in, a new worker is known from its first heartbeat; without it, only a
        # broadcast that waits out its timeout finds one.
        if not known or (from_events is None and now - self.last_full >= self.rediscover_interval):
            self.last_full = now
            return None
        return len(known)

    def answered(self, workers: Iterable[str]) -> None:
        self.last_answered = set(workers)


class WorkersSettings(CollectorSettings):
    interval: Interval = 30.0
    timeout: Duration = 2.0
    rediscover_interval: Duration = Field(300.0, description="how often a ping waits out its timeout to find new workers")


class WorkersCollector(Collector):
    """``control.ping``: which workers answer, as a cross-check of the heartbeats in the event stream.

    The daemon may set ``known_workers`` to a callable that returns the workers the event stream knows, so
    that the ping stops waiting once they have all answered.
    """

    type_name: ClassVar[str] = "workers"
    Settings: ClassVar[type[CollectorSettings]] = WorkersSettings

    def __init__(self, settings: CollectorSettings, context: CollectorContext) -> None:
        super().__init__(settings, context)
        celery_app_for(context)  # Celery is imported when the collector is built, not on the loop at its first run
        self.known_workers: Callable[[], Iterable[str]] | None = None
        self.broadcasts = 0
        self._known = _Known(getattr(settings, "rediscover_interval", 300.0))
        # Workers that answered once get a 0 when they stop answering, until they have been silent an hour.
        self._seen: dict[str, float] = {}

    async def collect(self) -> list[Sample]:
        app = celery_app_for(self.context)
        limit = self._known.limit(self.known_workers() if self.known_workers else None)
        self.broadcasts += 1
        replies = await in_thread(
            app.control.ping, timeout=reply_timeout(self.settings.timeout), limit=limit
        )
        now = self.context.clock.now()
        answered: set[str] = set()
        for reply in replies or ():
            if isinstance(reply, Mapping):
                answered.update(str(k) for k in reply)
        self._known.answered(answered)
        for worker in answered:
            self._seen[worker] = now
        out = []
        for worker, last in list(self._seen.items()):
            if worker not in answered and now - last > 3600.0:
                del self._seen[worker]
                continue
            out.append(Sample("celery_worker_responding", {"worker": worker}, 1.0 if worker in answered else 0.0, now))
        out.append(Sample("celery_workers_responding", {}, float(len(answered)), now))
        return out


class InspectSettings(CollectorSettings):
    interval: Interval = 60.0
    timeout: Duration = 2.0
    rediscover_interval: Duration = Field(300.0, description="how often inspect waits out its timeout to find new workers")


async def inspect_workers(
    context: CollectorContext, timeout: float, *, limit: int | None = None
) -> dict[str, dict[str, Any]]:
    """Ask every worker for active, reserved, scheduled and registered tasks and stats: ``{command: {worker: reply}}``.

    One ``inspect`` object, five broadcasts sent at once, so the whole takes one ``timeout`` at most (and less
    when ``limit`` workers answer sooner). A command that fails comes back as ``{}``.
    """
    app = celery_app_for(context)
    inspector = app.control.inspect(timeout=timeout, limit=limit)

    def call(command: str) -> dict[str, Any]:
        try:
            return dict(getattr(inspector, command)() or {})
        except Exception as exc:  # one failed command must not hide the answers to the others
            log.warning("inspect %s failed: %s", command, exc)
            return {}

    results = await asyncio.gather(*(in_pool(_inspect_pool(), call, c) for c in INSPECT_COMMANDS))
    return dict(zip(INSPECT_COMMANDS, results, strict=True))


@functools.cache
def _inspect_pool() -> ThreadPoolExecutor:
    # Its own threads: five broadcasts that wait for a missing worker must not hold the loop's default
    # executor, which the other collectors share.
    return ThreadPoolExecutor(max_workers=len(INSPECT_COMMANDS), thread_name_prefix="alertd-inspect")


def parse_inspect(replies: Mapping[str, Mapping[str, Any]], now: float) -> tuple[list[Sample], dict[str, dict[str, Any]]]:
    """Replies as ``inspect_workers`` returns them in, samples and a JSON-able snapshot per worker out.

    A worker whose answer has the wrong shape gets ``celery_worker_inspect_error 1`` and an ``error`` entry
    in its snapshot; what it answered sensibly is still reported, and so are the other workers.
    """
    workers = sorted({str(w) for answers in replies.values() for w in answers})
    samples: list[Sample] = []
    snapshot: dict[str, dict[str, Any]] = {}
    for worker in workers:
        labels = {"worker": worker}
        entry: dict[str, Any] = {}
        errors: list[str] = []
        for command, metric in _LISTS.items():
            if worker not in replies.get(command, {}):
                continue
            value = replies[command][worker]
            if isinstance(value, list):
                entry[command] = value
                samples.append(Sample(metric, labels, float(len(value)), now))
            else:
                errors.append(f"{command}: expected a list, got {type(value).__name__}")
        if worker in replies.get("stats", {}):
            stats = replies["stats"][worker]
            if isinstance(stats, Mapping):
                entry["stats"] = dict(stats)
                processes = _pool_processes(stats)
                if processes is not None:
                    samples.append(Sample("celery_worker_pool_processes", labels, processes, now))
                uptime = stats.get("uptime")
                if isinstance(uptime, int | float) and not isinstance(uptime, bool):
                    samples.append(Sample("celery_worker_uptime_seconds", labels, float(uptime), now))
            else:
                errors.append(f"stats: expected a mapping, got {type(stats).__name__}")
        entry["error"] = "; ".join(errors) or None
        if errors:
            log.warning("worker %s answered inspect with nonsense: %s", worker, entry["error"])
        samples.append(Sample("celery_worker_inspect_error", labels, 1.0 if errors else 0.0, now))
        snapshot[worker] = entry
    return samples, snapshot


def _pool_processes(stats: Mapping[str, Any]) -> float | None:
    pool = stats.get("pool")
    if not isinstance(pool, Mapping):
        return None
    processes = pool.get("processes")
    if isinstance(processes, list):
        return float(len(processes))
    concurrency = pool.get("max-concurrency")
    if isinstance(concurrency, int) and not isinstance(concurrency, bool):
        return float(concurrency)
    return None


class InspectCollector(Collector):
    """``inspect``: active, reserved, scheduled and registered tasks and stats of every worker.

    ``snapshot`` keeps the last answers per worker for ``alertd inspect``.
    """

    type_name: ClassVar[str] = "inspect"
    Settings: ClassVar[type[CollectorSettings]] = InspectSettings

    def __init__(self, settings: CollectorSettings, context: CollectorContext) -> None:
        super().__init__(settings, context)
        celery_app_for(context)  # Celery is imported when the collector is built, not on the loop at its first run
        self.known_workers: Callable[[], Iterable[str]] | None = None
        self.snapshot: dict[str, dict[str, Any]] = {}
        self.broadcasts = 0
        self._known = _Known(getattr(settings, "rediscover_interval", 300.0))

    async def collect(self) -> list[Sample]:
        limit = self._known.limit(self.known_workers() if self.known_workers else None)
        self.broadcasts += len(INSPECT_COMMANDS)
        replies = await inspect_workers(self.context, reply_timeout(self.settings.timeout), limit=limit)
        samples, snapshot = parse_inspect(replies, self.context.clock.now())
        self._known.answered(snapshot)
        self.snapshot = snapshot
        return samples


def render_table(snapshot: Mapping[str, Mapping[str, Any]]) -> str:
    """The snapshot as ``alertd inspect`` prints it: one row per worker, then its active tasks."""
    header = ("WORKER", "ACTIVE", "RESERVED", "SCHEDULED", "REGISTERED", "PROCESSES", "UPTIME")
    rows: list[tuple[str, ...]] = []
    details: list[str] = []
    for worker in sorted(snapshot):
        entry = snapshot[worker]
        stats = entry.get("stats") if isinstance(entry.get("stats"), Mapping) else {}
        processes = _pool_processes(stats) if stats else None
        uptime = stats.get("uptime") if stats else None
        rows.append((
            worker,
            *(_count(entry.get(c)) for c in ("active", "reserved", "scheduled", "registered")),
            "-" if processes is None else str(int(processes)),
            format_duration(float(uptime)) if isinstance(uptime, int | float) else "-",
        ))
        if entry.get("error"):
            details.append(f"{worker}: error: {entry['error']}")
        for task in entry.get("active") or ():
            if isinstance(task, Mapping):
                details.append(f"{worker}: active {task.get('name', '?')}[{task.get('id', '?')}]")
    if not rows:
        return "no worker answered"
    return "\n".join([format_table(header, rows), *(["", *details] if details else [])])


def _count(value: object) -> str:
    return str(len(value)) if isinstance(value, list) else "-"
