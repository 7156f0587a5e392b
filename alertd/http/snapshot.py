"""What readers see: the alerts as the API and the dashboard show them, built once per change and shared by
every reader, so that twenty dashboards cost what one does and none of them holds a page back.

- A snapshot is built on the event loop (the objects it reads belong to the loop) in slices of
  ``SLICE`` alerts, yielding to the loop between slices: a notification waits for one slice at most, never
  for a whole list of thousands of alerts.
- Serializing to JSON (orjson) and rendering the dashboard happen in a worker thread, on the snapshot's own
  plain data, which nothing else holds.
- A snapshot is reused until the rule engine evaluates again, a change comes through the API, or
  ``MAX_AGE`` has passed (silences start and end with time): a reader may see a view a few seconds old.
  After a change, readers wait for the new snapshot; when only ``MAX_AGE`` has passed, they get the old one
  while the new one builds.
- At most ``HEAVY_AT_ONCE`` heavy answers are prepared at once; further readers wait in line, and beyond
  ``QUEUE_LIMIT`` waiting they get 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from alertd.http.views import alert_view, sort_views
from alertd.models import AlertState

if TYPE_CHECKING:
    from alertd.daemon.core import Daemon

SLICE = 250
MAX_AGE = 5.0
HEAVY_AT_ONCE = 4
QUEUE_LIMIT = 64
CACHED_ANSWERS = 16
T = TypeVar("T")


class Busy(Exception):
    """Too many readers are waiting for heavy answers."""


@dataclass
class Snapshot:
    key: tuple[int, int, int]
    built_at: float
    alerts: Sequence[dict[str, Any]]
    _cache: dict[Any, Any] = field(default_factory=dict)

    def of_states(self, states: set[AlertState]) -> list[dict[str, Any]]:
        wanted = {s.value for s in states}
        return [a for a in self.alerts if a["state"] in wanted]

    async def cached(self, key: Any, make: Callable[[], T]) -> T:
        """``make()`` run once per snapshot, in a worker thread; concurrent readers share the result. At most
        ``CACHED_ANSWERS`` answers are kept (the oldest go first): a client that asks a new question each time
        costs a worker thread's time, never memory that grows with its questions."""
        if key not in self._cache:
            while len(self._cache) >= CACHED_ANSWERS:
                del self._cache[next(iter(self._cache))]
            self._cache[key] = asyncio.ensure_future(asyncio.to_thread(make))
        return await asyncio.shield(self._cache[key])


def dumps(data: Any) -> bytes:
    """JSON as the API sends it: orjson is about ten times faster than the standard library's json, and
    writes NaN and infinities as null instead of invalid JSON."""
    return orjson.dumps(data)


class Snapshots:
    """The current snapshot of one daemon, and the line of readers waiting for heavy answers."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._current: Snapshot | None = None
        self._building: asyncio.Future[Snapshot] | None = None
        self._changes = 0
        self._heavy = asyncio.Semaphore(HEAVY_AT_ONCE)
        self._waiting = 0

    def changed(self) -> None:
        """Something readers see changed (a silence, an acknowledgement, a reload): the next read rebuilds."""
        self._changes += 1

    def _key(self) -> tuple[int, int, int]:
        engine = self.daemon.engine
        return id(engine), engine.generation, self._changes

    async def current(self) -> Snapshot:
        snap = self._current
        if snap is not None and snap.key == self._key():
            if time.monotonic() - snap.built_at < MAX_AGE:
                return snap
            # Only time has passed: the old view answers while the new one builds, so that no reader of a
            # large list waits for a build that nothing but the clock asked for.
            self._rebuild()
            return snap
        return await asyncio.shield(self._rebuild())

    def _rebuild(self) -> asyncio.Future[Snapshot]:
        if self._building is None:
            self._building = asyncio.ensure_future(self._build())
            self._building.add_done_callback(lambda _: setattr(self, "_building", None))
        return self._building

    async def _build(self) -> Snapshot:
        key = self._key()
        daemon = self.daemon
        records = daemon.engine.alerts()
        views: list[dict[str, Any]] = []
        for start in range(0, len(records), SLICE):
            views += [alert_view(daemon, record=r) for r in records[start:start + SLICE]]
            await asyncio.sleep(0)
        views += [alert_view(daemon, alert=a) for a in daemon.internal_alerts()]
        snap = Snapshot(key, time.monotonic(), sort_views(views))
        self._current = snap
        return snap

    async def heavy(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` when a heavy slot is free; Busy when the line is too long."""
        if self._waiting >= QUEUE_LIMIT:
            raise Busy
        self._waiting += 1
        try:
            await self._heavy.acquire()
        finally:
            self._waiting -= 1
        try:
            return await work()
        finally:
            self._heavy.release()
