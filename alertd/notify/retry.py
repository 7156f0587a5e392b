"""Notifications accepted into the outbox in; delivered (marked so in the state store), retried later, handed to
a fallback receiver, or recorded as failed out.

Notifiers only say whether a failure is worth retrying. Everything else lives here, once: exponential backoff
with full jitter that honours ``retry_after``, a deadline, a rate limit per receiver, metrics, and a log line
per failed attempt only when the error changes.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from alertd.clock import Clock
from alertd.errors import PermanentError, RetryableError
from alertd.models import Alert
from alertd.notifiers.base import Notification, Notifier
from alertd.notify import InternalAlerts, NotifyContext, NotifyMetrics, log
from alertd.notify.dedup import NotificationLog
from alertd.notify.outbox import decode_notification
from alertd.state.base import OUTBOX_DELIVERED, OUTBOX_FAILED, OutboxRow, StateStore

DELIVERY_FAILED = "AlertdNotificationFailed"
RECEIVER_DISABLED = "AlertdReceiverDisabled"

Fallback = Callable[[Notification, str, str], Awaitable[None]]
"""Sends a notification that one receiver refused to another: (notification, fallback receiver, error)."""


class RateLimiter:
    """A token bucket on the pipeline's clock: ``rate`` notifications per second, ``burst`` at once."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._updated: float | None = None

    def take(self, now: float) -> float:
        """Take a token: 0.0 when one was free, else the seconds until one will be (nothing taken)."""
        if self._updated is not None:
            self._tokens = min(self.burst, self._tokens + max(0.0, now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


def backoff(attempts: int, base: float, cap: float, rng: random.Random, retry_after: float | None = None) -> float:
    """Full jitter (a uniform wait up to base·2^(attempts-1), at most ``cap``); never sooner than Retry-After."""
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    delay = rng.uniform(0.0, ceiling)
    return max(delay, retry_after) if retry_after is not None else delay


MAX_IN_FLIGHT = 8
"""Delivery attempts in flight at once per receiver."""


def reason_label(reason: str) -> str:
    """The reason as a metric label: "escalated to level 2: unacknowledged for 15m" -> "escalated to level 2"."""
    return reason.split(":", 1)[0]


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


@dataclass
class _Pending:
    row: OutboxRow
    notification: Notification
    fallback: str | None  # the route's fallback receiver; the receiver's own applies too
    is_fallback: bool  # already a fallback's notification: it does not fall back again
    due: float = 0.0


class RetryStage:
    """Delivers each accepted notification: the first attempt at once, the next ones when they are due."""

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
        self.base = base
        self.cap = cap
        self.limiters = dict(limiters or {})
        self.receiver_fallbacks = dict(receiver_fallbacks or {})
        self.rng = rng or random.Random()
        self.fallback: Fallback | None = None  # set by the pipeline: render, outbox and retry for another receiver
        self.disabled: dict[str, str] = {}  # receivers that said never to send again, and why
        self._pending: dict[str, _Pending] = {}
        self._heap: list[tuple[float, str]] = []
        self._inflight: set[str] = set()
        self._slots: dict[str, asyncio.Semaphore] = {}

    # -- what is waiting -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._pending)

    def pending(self) -> list[OutboxRow]:
        return [p.row for p in self._pending.values()]

    def next_due(self) -> float | None:
        heap = self._heap
        while heap:
            due, id = heap[0]
            p = self._pending.get(id)
            if p is not None and p.due == due and id not in self._inflight:
                return due
            heapq.heappop(heap)
        return None

    def _schedule(self, p: _Pending, when: float) -> None:
        p.due = when
        heapq.heappush(self._heap, (when, p.row.id))

    def _drop(self, id: str) -> None:
        self._pending.pop(id, None)
        self.metrics.outbox_size.set(len(self._pending))

    def forget(self, ids: Iterable[str]) -> None:
        """Rows superseded by a newer notification of the same group: not to be sent any more."""
        for id in ids:
            self._drop(id)

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
            p = _Pending(row, notification, None, False)
            self._pending[row.id] = p
            self._schedule(p, max(now, row.next_attempt_at or now))
            count += 1
        self.metrics.outbox_size.set(len(self._pending))
        if count:
            log.info("resuming %d undelivered notification(s) from the outbox", count)
        return count

    # -- the stage -------------------------------------------------------------------------------------------

    async def __call__(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        if not alerts or ctx.outbox_row is None or ctx.notification is None:
            return alerts
        fallback = None if ctx.fallback_for else ctx.route.fallback
        p = _Pending(ctx.outbox_row, ctx.notification, fallback, bool(ctx.fallback_for))
        self._pending[p.row.id] = p
        self.metrics.outbox_size.set(len(self._pending))
        await self._attempt(p)
        return alerts

    async def run_due(self) -> int:
        """Attempt every notification whose next attempt is due; returns how many were attempted."""
        now = self.clock.now()
        due: list[_Pending] = []
        while (when := self.next_due()) is not None and when <= now:
            _, id = heapq.heappop(self._heap)
            due.append(self._pending[id])
        if due:
            await asyncio.gather(*(self._attempt(p) for p in due))
        return len(due)

    async def _attempt(self, p: _Pending) -> None:
        row = p.row
        if row.id in self._inflight:
            return
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
        limiter = self.limiters.get(row.receiver)
        wait = limiter.take(now) if limiter is not None else 0.0
        if wait > 0:
            self._schedule(p, now + wait)
            return
        self._inflight.add(row.id)
        try:
            async with self._slot(row.receiver):
                result = await attempt(notifier, p.notification)
        finally:
            self._inflight.discard(row.id)
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

    def _slot(self, receiver: str) -> asyncio.Semaphore:
        # A bound on requests in flight per receiver: hundreds of groups flushed at once would otherwise
        # queue in the HTTP client's connection pool, which slows every one of them.
        slot = self._slots.get(receiver)
        if slot is None:
            slot = self._slots[receiver] = asyncio.Semaphore(MAX_IN_FLIGHT)
        return slot

    async def _delivered(self, p: _Pending, result: Attempt) -> None:
        now = self.clock.now()
        row = replace(p.row, attempts=p.row.attempts + 1, next_attempt_at=None, delivered_at=now,
                      status=OUTBOX_DELIVERED)
        self.store.outbox_update(row)
        self._drop(row.id)
        n = p.notification
        self.metrics.sent.labels(row.receiver, reason_label(n.reason)).inc()
        self.internal.resolve(DELIVERY_FAILED, {"receiver": row.receiver}, now)
        log.info(
            "notified %s: %s %s, %d alert(s), reason %r, attempt %d, %.0f ms",
            row.receiver, n.status, n.group_key, len(n.alerts) + n.truncated_alerts, n.reason, row.attempts,
            result.latency * 1000,
        )

    async def _retry_later(self, p: _Pending, error: Exception | None) -> None:
        now = self.clock.now()
        row = p.row
        message = str(error)
        attempts = row.attempts + 1
        delay = backoff(attempts, self.base, self.cap, self.rng, getattr(error, "retry_after", None))
        if now + delay > row.deadline:
            p.row = replace(row, attempts=attempts, last_error=message)
            await self._give_up(p, f"deadline would pass after {attempts} attempt(s): {message}")
            return
        if message != row.last_error:
            log.warning("notifying %s failed (attempt %d), retrying in %.1fs: %s", row.receiver, attempts, delay, message)
        else:
            log.debug("notifying %s failed again (attempt %d), retrying in %.1fs", row.receiver, attempts, delay)
        p.row = replace(row, attempts=attempts, next_attempt_at=now + delay, last_error=message)
        self.store.outbox_update(p.row)
        self.metrics.retried.labels(row.receiver, reason_label(p.notification.reason)).inc()
        self._schedule(p, now + delay)

    async def _give_up(self, p: _Pending, error: str, *, disable: bool = False) -> None:
        now = self.clock.now()
        row = replace(p.row, next_attempt_at=None, last_error=error, status=OUTBOX_FAILED)
        self.store.outbox_update(row)
        self._drop(row.id)
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
