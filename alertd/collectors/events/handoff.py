"""Events from the receiving thread to the event loop, a batch per loop wake-up instead of one per event."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

Event = dict[str, Any]


class Handoff:
    """Accumulates events in the receiving thread and hands them to ``deliver`` on the loop in batches.

    At most one hand-off is ever queued on the loop. The first event after a quiet spell queues it at once, so
    an idle stream adds no latency; events that arrive while it waits for the loop, or while the loop is busy
    with the previous batch, join the batch that it takes. Under load the batch grows with whatever the loop
    took too long for, so one loop wake-up (one ingest, one evaluation of the rules concerned) covers many
    events, and under no load it is one event.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[list[Event]], None]) -> None:
        self.loop = loop
        self.deliver = deliver
        self._lock = threading.Lock()
        self._pending: list[Event] = []
        self._queued = False
        self.handoffs = 0  # loop callbacks queued

    def put(self, event: Event) -> None:
        """From the receiving thread: one event, handed over with those around it."""
        with self._lock:
            self._pending.append(event)
            if self._queued:
                return
            self._queued = True
        self.handoffs += 1
        if self.loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed while the thread was finishing
            self.loop.call_soon_threadsafe(self._take)

    def _take(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            self._queued = False
        if batch:
            self.deliver(batch)
