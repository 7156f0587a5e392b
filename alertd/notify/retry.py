"""Notifications accepted into the outbox in; delivered (marked so in the state store), retried later, handed to
a fallback receiver, or recorded as failed out.

Notifiers only say whether a failure is worth retrying. Everything else lives here, once: exponential backoff
with full jitter that honours ``retry_after`` (and pauses the whole destination for it), a deadline, metrics,
and a log line per failed attempt only when the error changes. The order of sends, and the budget of each
destination, are the lanes' (``alertd.notify.lanes``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from alertd.clock import Clock
from alertd.errors import PermanentError, RetryableError
from alertd.models import Alert
from alertd.notifiers.base import Notification, Notifier
from alertd.notifiers.reasons import Reason
from alertd.notify import InternalAlerts, NotifyContext, NotifyMetrics, log
from alertd.notify.dedup import NotificationLog
from alertd.notify.lanes import Lane, Pending
from alertd.notify.outbox import decode_notification
from alertd.notify.ratelimit import RateLimiter
from alertd.notify.store_watch import StoreWatch
from alertd.state.base import OUTBOX_DELIVERED, OUTBOX_FAILED, OutboxRow, StateStore

DELIVERY_FAILED = "AlertdNotificationFailed"
RECEIVER_DISABLED = "AlertdReceiverDisabled"

Fallback = Callable[[Notification, str, str], Awaitable[None]]
"""Sends a notification that one receiver refused to another: (notification, fallback receiver, error)."""


def backoff(attempts: int, base: float, cap: float, rng: random.Random, retry_after: float | None = None) -> float:
    """Full jitter (a uniform wait up to base·2^(attempts-1), at most ``cap``); never sooner than Retry-After."""
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    delay = rng.uniform(0.0, ceiling)
    return max(delay, retry_after) if retry_after is not None else delay


def reason_label(reason: str) -> str:
    """The reason as a metric label: its kind ("first", "escalation", "acknowledged"...), a bounded set."""
    return Reason.parse(reason).kind.value


@dataclass(frozen=True, slots=True)
class Attempt:
    ok: bool
    latency: float
    error: Exception | None = None

    @property
    def retryable(self) -> bool:
        return not self.ok and not isinstance(self.error, PermanentError)


async def attempt(notifier: Notifier, notification: Notification) -> Attempt:
    """One delivery within the receiver's ``timeout``; any failure comes back as a value, never raised.

    A notifier that raises something other than alertd's errors has a bug or met the unexpected: that is
    retried, as a timeout is.
    """
    started = time.perf_counter()
    limit = notifier.settings.timeout or None
    try:
        async with asyncio.timeout(limit):
            await notifier.send(notification)
    except TimeoutError:
        within = f" within the receiver's timeout of {limit:g}s" if limit else ""
        error: Exception = RetryableError(f"no answer{within}")
    except (RetryableError, PermanentError) as exc:
        error = exc
    except Exception as exc:
        log.exception("notifier %s raised an unexpected error", notifier.name)
        error = RetryableError(f"unexpected {type(exc).__name__}: {exc}")
    else:
        return Attempt(True, time.perf_counter() - started)
    return Attempt(False, time.perf_counter() - started, error)


class RetryStage:
    """Hands each accepted notification to its receiver's lane, and records what became of each attempt.

    The flush returns as soon as the notification is in the outbox and in its lane: it never awaits a send.
    In the daemon the lanes are tasks (``start``, ``drain``, ``halt``); under a virtual clock ``run_due``
    starts what is due and awaits it.
    """

    def __init__(
        self,
        notifiers: Mapping[str, Notifier],
        store: StateStore,
        nflog: NotificationLog,
        clock: Clock,
        metrics: NotifyMetrics,
        internal: InternalAlerts,
        *,
        base: float = 1.0,
        cap: float = 300.0,
        limiters: Mapping[str, RateLimiter] | None = None,
        receiver_fallbacks: Mapping[str, str | None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.notifiers = notifiers
        self.store = store
        self.nflog = nflog
        self.clock = clock
        self.metrics = metrics
        self.internal = internal
        self.watch = StoreWatch("notifications", internal, clock)
        self.base = base
        self.cap = cap
        self.limiters = dict(limiters or {})  # by receiver; receivers with one destination share one
        self.receiver_fallbacks = dict(receiver_fallbacks or {})
        self.rng = rng or random.Random()
        self.fallback: Fallback | None = None  # set by the pipeline: render, outbox and retry for another receiver
        self.disabled: dict[str, str] = {}  # receivers that said never to send again, and why
        self._pending: dict[str, Pending] = {}
        self.lanes: dict[str, Lane] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._serving = False
        self._draining = False

    # -- what is waiting -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._pending)

    def pending(self) -> list[OutboxRow]:
        return [p.row for p in self._pending.values()]

    def next_due(self) -> float | None:
        return min((t for lane in self.lanes.values() if (t := lane.next_due()) is not None), default=None)

    def _lane(self, receiver: str) -> Lane:
        lane = self.lanes.get(receiver)
        if lane is None:
            limiter = self.limiters.get(receiver)
            if limiter is None:  # no budget, but a Retry-After still pauses it
                limiter = self.limiters[receiver] = RateLimiter(None)
            lane = self.lanes[receiver] = Lane(receiver, limiter, self._attempt, self.clock)
            if self._serving:
                if self._draining:  # a fallback's lane, made while stopping
                    lane.drain()
                self._tasks[receiver] = asyncio.create_task(lane.run(), name=f"alertd lane {receiver}")
        return lane

    def _add(self, p: Pending, due: float) -> None:
        p.due = due
        self._pending[p.row.id] = p
        self.metrics.outbox_size.set(len(self._pending))
        self._lane(p.row.receiver).add(p)

    def _drop(self, p: Pending) -> None:
        self._pending.pop(p.row.id, None)
        self.metrics.outbox_size.set(len(self._pending))
        lane = self.lanes.get(p.row.receiver)
        if lane is not None:
            lane.discard(p.row.id)

    def forget(self, ids: Iterable[str]) -> None:
        """Rows superseded by a newer notification of the same group: not to be sent any more."""
        for id in ids:
            p = self._pending.get(id)
            if p is not None:
                self._drop(p)

    def resume(self) -> int:
        """Take over what a previous run left in the outbox; returns how many notifications."""
        count = 0
        now = self.clock.now()
        for row in self.store.outbox_pending():
            if row.id in self._pending:
                continue
            try:
                notification = decode_notification(row.payload)
            except ValueError as exc:
                log.error("outbox row %s to %s cannot be read, dropped: %s", row.id, row.receiver, exc)
                self.store.outbox_update(replace(row, status=OUTBOX_FAILED, next_attempt_at=None, last_error=str(exc)))
                continue
            self._add(Pending(row, notification, None, False), max(now, row.next_attempt_at or now))
            count += 1
        if count:
            log.info("resuming %d undelivered notification(s) from the outbox", count)
        return count

    # -- the stage -------------------------------------------------------------------------------------------

    async def __call__(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        if not alerts or ctx.outbox_row is None or ctx.notification is None:
            return alerts
        fallback = None if ctx.fallback_for else ctx.route.fallback
        self._add(Pending(ctx.outbox_row, ctx.notification, fallback, bool(ctx.fallback_for)), self.clock.now())
        return alerts

    # -- the lanes -------------------------------------------------------------------------------------------

    async def run_due(self) -> int:
        """Under a virtual clock: make every attempt that is due, and those they make due at once (a fallback
        receiver's notification), awaiting them; each notification once per call. Returns how many."""
        now = self.clock.now()
        tried: set[str] = set()
        while due := [(lane, p) for lane in list(self.lanes.values()) for p in lane.ready(now, skip=tried)]:
            tried.update(p.row.id for _, p in due)
            await asyncio.gather(*(lane.send(p) for lane, p in due))
        return len(tried)

    def start(self) -> None:
        """Each lane becomes a task that sends on its own (the daemon); lanes made later start at once."""
        self._serving, self._draining = True, False
        for receiver, lane in self.lanes.items():
            lane.draining = False
            self._tasks[receiver] = asyncio.create_task(lane.run(), name=f"alertd lane {receiver}")

    async def drain(self) -> None:
        """Let every lane finish its sends in flight and what is due; the rest stays in the outbox."""
        self._draining = True
        for lane in self.lanes.values():
            lane.drain()
        while tasks := [t for t in self._tasks.values() if not t.done()]:
            await asyncio.wait(tasks)

    async def halt(self) -> None:
        """Stop every lane now: sends in flight are cancelled and their rows stay pending in the outbox."""
        self._serving = False
        self._draining = False
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, Exception):
                log.error("a delivery lane failed: %r", result)

    async def _attempt(self, p: Pending) -> None:
        row = p.row
        now = self.clock.now()
        notifier = self.notifiers.get(row.receiver)
        if row.receiver in self.disabled:
            await self._give_up(p, f"receiver {row.receiver} is disabled: {self.disabled[row.receiver]}")
            return
        if notifier is None:
            await self._give_up(p, f"receiver {row.receiver} is not configured (any more)")
            return
        if now > row.deadline:
            await self._give_up(p, f"deadline passed after {row.attempts} attempt(s): {row.last_error}")
            return
        result = await attempt(notifier, p.notification)
        self.metrics.latency.labels(row.receiver).observe(result.latency)
        current = self._pending.get(row.id)
        if result.ok:
            await self._delivered(p, result)
        elif current is not p:
            return  # superseded while it was being sent: the newer notification carries on
        elif isinstance(result.error, PermanentError):
            p.row = replace(row, attempts=row.attempts + 1)
            await self._give_up(p, str(result.error), disable=bool(getattr(result.error, "disable", False)))
        else:
            await self._retry_later(p, result.error)

    def _record(self, row: OutboxRow) -> None:
        """An attempt's outcome into the outbox; a store that refuses it never makes the lane send again."""
        self.watch.write(f"the outcome of notification {row.id}", lambda: self.store.outbox_update(row))

    async def _delivered(self, p: Pending, result: Attempt) -> None:
        now = self.clock.now()
        row = replace(p.row, attempts=p.row.attempts + 1, next_attempt_at=None, delivered_at=now,
                      status=OUTBOX_DELIVERED)
        self._record(row)
        self._drop(p)
        n = p.notification
        self.metrics.sent.labels(row.receiver, reason_label(n.reason)).inc()
        self.internal.resolve(DELIVERY_FAILED, {"receiver": row.receiver}, now)
        log.info(
            "notified %s: %s %s, %d alert(s), reason %r, attempt %d, %.0f ms",
            row.receiver, n.status, n.group_key, len(n.alerts) + n.truncated_alerts, n.reason, row.attempts,
            result.latency * 1000,
        )

    async def _retry_later(self, p: Pending, error: Exception | None) -> None:
        now = self.clock.now()
        row = p.row
        message = str(error)
        attempts = row.attempts + 1
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            # The service limits the destination, not this notification: every send to it waits.
            limiter = self.lanes[row.receiver].limiter
            if now + retry_after > limiter.paused_until():
                log.info("%s asked to wait %.1fs: sends to its destination paused", row.receiver, retry_after)
            limiter.pause(now + retry_after)
        delay = backoff(attempts, self.base, self.cap, self.rng, retry_after)
        if now + delay > row.deadline:
            p.row = replace(row, attempts=attempts, last_error=message)
            await self._give_up(p, f"deadline would pass after {attempts} attempt(s): {message}")
            return
        if message != row.last_error:
            log.warning("notifying %s failed (attempt %d), retrying in %.1fs: %s", row.receiver, attempts, delay, message)
        else:
            log.debug("notifying %s failed again (attempt %d), retrying in %.1fs", row.receiver, attempts, delay)
        p.row = replace(row, attempts=attempts, next_attempt_at=now + delay, last_error=message)
        self._record(p.row)
        self.metrics.retried.labels(row.receiver, reason_label(p.notification.reason)).inc()
        p.due = now + delay

    async def _give_up(self, p: Pending, error: str, *, disable: bool = False) -> None:
        now = self.clock.now()
        row = replace(p.row, next_attempt_at=None, last_error=error, status=OUTBOX_FAILED)
        self._record(row)
        self._drop(p)
        n = p.notification
        self.metrics.failed.labels(row.receiver, reason_label(n.reason)).inc()
        log.error("notification %s to %s given up: %s", row.id, row.receiver, error)
        if disable:
            self.disabled[row.receiver] = error
            self.internal.fire(RECEIVER_DISABLED, {"receiver": row.receiver},
                               f"receiver {row.receiver} disabled: {error}", now, severity="critical")
        target = p.fallback or self.receiver_fallbacks.get(row.receiver)
        if target and not p.is_fallback and target != row.receiver and self.fallback is not None:
            log.warning("handing notification %s to fallback receiver %s", row.id, target)
            await self.fallback(n, target, error)
            return
        self.nflog.failed(row.group_key, row.receiver, row.id)
        self.internal.fire(DELIVERY_FAILED, {"receiver": row.receiver}, f"notifying {row.receiver} failed: {error}", now)
