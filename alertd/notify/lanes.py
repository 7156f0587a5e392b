"""Outbox entries of one receiver in; sends started in order, within its destination's budget, out.

Each receiver has one lane. A lane starts the entries that are due, oldest first, at most ``MAX_IN_FLIGHT`` at
once, and never two of the same group: a group's notifications go out strictly one after the other, so a
resolve never overtakes its trigger. A slow, failing or rate-limited receiver fills only its own lane.

In the daemon each lane is a task (``run``) woken by new entries and finished sends; under a virtual clock the
pipeline's ``tick`` starts what is due (``ready``) and awaits it, so a test of an hour runs in milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass

from alertd.clock import Clock
from alertd.notifiers.base import Notification
from alertd.notify import log
from alertd.notify.ratelimit import RateLimiter
from alertd.state.base import OutboxRow

MAX_IN_FLIGHT = 8
"""Sends in flight at once per receiver (each of a different group)."""

STORE_TROUBLE_WAIT = 1.0
"""After a send whose outcome could not be recorded (the state store failed), the entry waits this long."""


@dataclass
class Pending:
    """One outbox entry waiting in its receiver's lane."""

    row: OutboxRow
    notification: Notification
    fallback: str | None  # the route's fallback receiver; the receiver's own applies too
    is_fallback: bool  # already a fallback's notification: it does not fall back again
    due: float = 0.0  # when the next attempt may start (backoff, Retry-After)


Send = Callable[[Pending], Awaitable[None]]
"""One attempt and its outcome recorded (delivered, retried later, given up)."""


class Lane:
    """The entries of one receiver, sent in order per group, within its destination's ``limiter``."""

    def __init__(self, receiver: str, limiter: RateLimiter, send: Send, clock: Clock) -> None:
        self.receiver = receiver
        self.limiter = limiter
        self.clock = clock
        self._send = send
        self.entries: dict[str, Pending] = {}  # by outbox id, in the order they were accepted
        self.busy: set[str] = set()  # groups with a send in flight
        self.held_until = 0.0  # the destination's budget holds the lane until then
        self.wake = asyncio.Event()
        self.draining = False
        self._sends: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, p: Pending) -> None:
        self.entries[p.row.id] = p
        self.wake.set()

    def discard(self, id: str) -> None:
        self.entries.pop(id, None)

    def ready(self, now: float, skip: Container[str] = ()) -> list[Pending]:
        """The entries to start now: due, the oldest of a group with nothing in flight, within the budget (and
        not one of ``skip``, by id)."""
        room = MAX_IN_FLIGHT - len(self.busy)
        out: list[Pending] = []
        blocked: set[str] = set()
        for p in self.entries.values():
            if len(out) >= room:
                break
            group = p.row.group_key
            if group in self.busy or group in blocked or p.due > now or p.row.id in skip:
                blocked.add(group)  # a later entry of the group waits for this one
                continue
            wait = self.limiter.take(now)
            if wait > 0:
                self.held_until = now + wait
                break
            blocked.add(group)
            out.append(p)
        return out

    def next_due(self) -> float | None:
        """When an entry may start next, if one is waiting; None also while the lane is full or each waiting
        entry is behind a send of its group (the end of a send wakes the lane)."""
        if len(self.busy) >= MAX_IN_FLIGHT:
            return None
        groups = set(self.busy)
        due: float | None = None
        for p in self.entries.values():
            if p.row.group_key not in groups:
                groups.add(p.row.group_key)
                due = p.due if due is None else min(due, p.due)
        if due is None:
            return None
        return max(due, self.held_until, self.limiter.paused_until())

    async def send(self, p: Pending) -> None:
        """One attempt; the group is busy meanwhile."""
        group = p.row.group_key
        self.busy.add(group)
        pauses = self.limiter.pauses
        try:
            await self._send(p)
        except Exception:  # a state store hiccup: the entry stays in the outbox and is tried again later
            log.exception("delivering notification %s to %s failed", p.row.id, self.receiver)
            p.due = self.clock.now() + STORE_TROUBLE_WAIT
        finally:
            self.limiter.returned(pauses)
            self.busy.discard(group)
            self.wake.set()

    # -- as a task -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Start what is due, wait for the next due time, a new entry or a finished send; until drained.

        Draining (``drain``): the lane finishes the sends in flight and what is due now, or held only by the
        destination's budget; entries waiting for a retry stay in the outbox for the next run.
        """
        try:
            while True:
                self.wake.clear()
                now = self.clock.now()
                for p in self.ready(now):
                    task = asyncio.create_task(self.send(p))
                    self._sends.add(task)
                    task.add_done_callback(self._finished)
                if self.draining and not self._sends and not any(p.due <= now for p in self.entries.values()):
                    return
                due = self.next_due()
                timeout = None if due is None else max(0.0, due - self.clock.now())
                try:
                    async with asyncio.timeout(timeout):
                        await self.wake.wait()
                except TimeoutError:
                    pass
        finally:
            for task in list(self._sends):  # cancelled (the shutdown grace ran out): the rows stay pending
                task.cancel()
            if self._sends:
                await asyncio.gather(*self._sends, return_exceptions=True)

    def _finished(self, task: asyncio.Task[None]) -> None:
        # Only now is the send out of ``_sends``: a draining lane may have been waiting for exactly that.
        self._sends.discard(task)
        self.wake.set()

    def drain(self) -> None:
        self.draining = True
        self.wake.set()
