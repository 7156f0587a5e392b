"""The configuration, notifiers and state store in; a running notification pipeline (alerts in, notifications
delivered out) out.

Its order, per group flush (``build_stages``): inhibit -> silence -> time windows, once for the group; then,
for the route's receiver and each escalation level's: dedup -> escalate -> render -> outbox -> retry.
"""

from __future__ import annotations

import asyncio
import copy
import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from jinja2.sandbox import SandboxedEnvironment
from prometheus_client import CollectorRegistry

from alertd.clock import Clock, SystemClock
from alertd.config.model import Config
from alertd.dispatch.groups import AggregationGroup, Dispatcher
from alertd.dispatch.route import Route, build_route_tree
from alertd.errors import ConfigError
from alertd.models import Alert, AlertState, fingerprint
from alertd.notifiers.base import Notification, Notifier, NotifierContext
from alertd.notifiers.reasons import Reason, ReasonKind
from alertd.notify import FlushState, InternalAlerts, NotifyContext, NotifyMetrics, Stage, log
from alertd.notify.dedup import DedupStage, NotificationLog
from alertd.notify.escalate import Acks, EscalateStage
from alertd.notify.inhibit import Inhibitor, InhibitStage
from alertd.notify.outbox import OutboxStage
from alertd.notify.ratelimit import RateLimiter
from alertd.notify.render import RenderStage
from alertd.notify.retry import RetryStage, attempt
from alertd.notify.silence import Silences, SilenceStage
from alertd.notify.timewindow import TimeIntervals, TimeWindowStage
from alertd.state.base import StateStore

if TYPE_CHECKING:
    import httpx

    from alertd.config.load import LoadedConfig


@dataclass
class Parts:
    """What the stages are made of; kept on the pipeline for the API, the CLI and tests."""

    config: Config
    clock: Clock
    store: StateStore
    metrics: NotifyMetrics
    internal: InternalAlerts
    inhibitor: Inhibitor
    silences: Silences
    intervals: TimeIntervals
    nflog: NotificationLog
    acks: Acks
    escalate: EscalateStage
    render: RenderStage
    outbox: OutboxStage
    retry: RetryStage


def build_stages(p: Parts) -> tuple[list[Stage], list[Stage]]:
    """The pipeline's order: once per group flush, then once per receiver of the flush."""
    group: list[Stage] = [
        InhibitStage(p.inhibitor, p.metrics),
        SilenceStage(p.silences, p.metrics),
        TimeWindowStage(p.intervals),
    ]
    receiver: list[Stage] = [DedupStage(p.nflog), p.escalate, p.render, p.outbox, p.retry]
    return group, receiver


class NotificationPipeline:
    """Alerts in (``put``), notifications out (``tick``, or ``serve`` in the daemon)."""

    def __init__(self, parts: Parts, route: Route) -> None:
        self.parts = parts
        self.route = route
        self.clock = parts.clock
        self.metrics = parts.metrics
        self.internal = parts.internal
        self.silences = parts.silences
        self.acks = parts.acks
        self.nflog = parts.nflog
        self.retry = parts.retry
        self.group_stages, self.receiver_stages = build_stages(parts)
        self.dispatcher = Dispatcher(route, parts.clock, self._flush)
        self.dispatcher.on_forget = self._forget
        parts.retry.fallback = self._fallback
        self._wake = asyncio.Event()

    # -- in --------------------------------------------------------------------------------------------------

    def put(self, alerts: Iterable[Alert], *, complete: bool = False) -> None:
        """Alerts as they are now (firing or resolved). ``complete``: all active alerts; a missing one resolves."""
        alerts = list(alerts)
        self.parts.inhibitor.observe(alerts)
        self.dispatcher.put(alerts, complete=complete)
        self._wake.set()

    def resume(self) -> int:
        """Pick up what a previous run left undelivered in the outbox (``notify.outbox_resume``)."""
        return self.retry.resume() if self.parts.config.notify.outbox_resume else 0

    def _forget(self, fingerprint: str) -> None:
        self.parts.inhibitor.forget([fingerprint])
        self.silences.forget(fingerprint)

    # -- the flow --------------------------------------------------------------------------------------------

    async def _flush(self, group: AggregationGroup, alerts: list[Alert]) -> float | None:
        ctx = NotifyContext(group.key, group.labels, group.route.options, self.clock.now(), FlushState(group.muted))
        for stage in self.group_stages:
            alerts = await stage(ctx, alerts)
            if not alerts:
                break
        group.muted = dict(ctx.flush.muted)
        if alerts:
            receivers = self.parts.escalate.receivers(ctx, alerts)
            if len(receivers) == 1:  # the common case needs no task of its own
                await self._notify(_for(ctx, *receivers[0]), alerts)
            else:
                await asyncio.gather(*(self._notify(_for(ctx, r, n), alerts) for r, n in receivers))
        return ctx.flush.wake_at

    async def _notify(self, ctx: NotifyContext, alerts: list[Alert]) -> None:
        for stage in self.receiver_stages:
            alerts = await stage(ctx, alerts)
            if not alerts:
                return

    async def _fallback(self, notification: Notification, receiver: str, error: str) -> None:
        """A notification refused for good goes, rendered for it, to the fallback receiver."""
        now = self.clock.now()
        ctx = NotifyContext(
            notification.group_key, notification.group_labels, self.route.options, now, FlushState({}),
            receiver=receiver, reason=Reason.fallback(notification.receiver, notification.reason),
            fallback_for=notification.receiver,
        )
        copy = replace(notification, id=uuid.uuid4().hex, receiver=receiver, reason=ctx.reason, created_at=now,
                       rendered={})
        ctx.notification = self.parts.render.render(copy)
        alerts = list(notification.alerts)
        for stage in (self.parts.outbox, self.retry):
            alerts = await stage(ctx, alerts)

    async def acknowledged(self, fingerprint: str, by: str, comment: str = "") -> int:
        """Tell the receivers that were paged about the alert's groups that someone acknowledged it (PagerDuty
        acknowledges the incident, the webhook gets status and reason, Slack and email show who); the
        escalation stops by itself (``Acks``). Returns the notifications queued."""
        groups = [g for g in self.dispatcher.groups.values() if fingerprint in g.alerts]
        reason = Reason.acknowledged(by, comment)
        queued = 0
        for group in groups:
            alerts = [a for a in group.snapshot() if not a.resolved]
            if not alerts:
                continue
            told = {e.receiver for e in self.parts.nflog.entries() if e.group_key == group.key and e.firing}
            for receiver in sorted(told):
                if receiver not in self.retry.notifiers:
                    continue
                ctx = NotifyContext(group.key, group.labels, group.route.options, self.clock.now(), FlushState({}),
                                    receiver=receiver, reason=reason)
                for stage in (self.parts.render, self.parts.outbox, self.retry):
                    if not await stage(ctx, alerts):
                        break
                queued += ctx.outbox_row is not None
        return queued

    async def tick(self) -> float | None:
        """Flush the groups that are due and make the delivery attempts that are due; return the next due time.

        For a virtual clock (tests, ``alertd test``): the attempts are awaited here. ``serve`` leaves them to the
        receivers' lanes."""
        await self.dispatcher.flush_due()
        await self.retry.run_due()
        return self.next_due()

    def next_due(self) -> float | None:
        times = [t for t in (self.dispatcher.next_due(), self.retry.next_due()) if t is not None]
        return min(times, default=None)

    async def serve(self, stop: asyncio.Event, *, max_sleep: float = 1.0) -> None:
        """Run until ``stop``: flush groups when due (or at a ``put``) while each receiver's lane sends on its own.

        After ``stop`` the lanes finish their sends in flight and what is due; cancelling this task (the
        shutdown grace ran out) cancels them, and what they did not deliver stays in the outbox.
        """
        self.retry.start()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    await self.dispatcher.flush_due()
                    due = self.dispatcher.next_due()
                except Exception:  # a state store hiccup must not stop notifications for good
                    log.exception("notification pipeline flush failed; trying again")
                    due = self.clock.now() + max_sleep
                delay = max_sleep if due is None else min(max_sleep, max(0.0, due - self.clock.now()))
                if delay <= 0:
                    await asyncio.sleep(0)
                    continue
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                try:
                    await asyncio.wait({waiter, stopper}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                    stopper.cancel()
            await self.retry.drain()
        finally:
            await self.retry.halt()

    def housekeeping(self) -> None:
        """Forget what is no longer needed: old log entries, finished outbox rows, long-expired silences."""
        now = self.clock.now()
        longest = max((r.options.repeat_interval for r in self.route.walk()), default=0.0)
        self.nflog.prune(now - max(longest * 2, 5 * 86400.0))
        self.parts.store.outbox_prune(now - self.parts.config.notify.outbox_retention)
        self.silences.prune(now - 5 * 86400.0)
        self.acks.prune({a.fingerprint for a in self.dispatcher.alerts()})
        self.internal.forget_resolved()

    async def close(self) -> None:
        for notifier in set(self.retry.notifiers.values()):
            try:
                await notifier.close()
            except Exception as exc:  # one notifier's failure must not keep the others open
                log.warning("closing receiver %s: %s", notifier.name, exc)


def _for(ctx: NotifyContext, receiver: str, level: int) -> NotifyContext:
    """The flush's context for one receiver; the flush state stays shared."""
    own = copy.copy(ctx)
    own.receiver, own.level = receiver, level
    return own


def build_pipeline(
    config: Config,
    notifiers: Mapping[str, Notifier],
    store: StateStore,
    clock: Clock,
    *,
    env: SandboxedEnvironment | None = None,
    registry: CollectorRegistry | None = None,
    metrics: NotifyMetrics | None = None,
    rng: random.Random | None = None,
) -> NotificationPipeline:
    """Everything that can fail is built before the pipeline exists, so a reload can swap it in whole."""
    if env is None:
        from alertd.templating.env import make_environment

        env = make_environment()
    route = build_route_tree(config.route)
    metrics = metrics if metrics is not None else NotifyMetrics(registry)
    internal = InternalAlerts()
    nflog = NotificationLog(store)
    acks = Acks(store, clock)
    limiters = destination_limiters(config, notifiers)
    retry = RetryStage(
        notifiers, store, nflog, clock, metrics, internal,
        base=config.notify.retry_base, cap=config.notify.retry_max, limiters=limiters,
        receiver_fallbacks={name: rc.fallback for name, rc in config.receivers.items()}, rng=rng,
    )
    templates = {name: {**type(n).templates, **n.settings.templates} for name, n in notifiers.items()}
    parts = Parts(
        config=config,
        clock=clock,
        store=store,
        metrics=metrics,
        internal=internal,
        inhibitor=Inhibitor(config.inhibit_rules),
        silences=Silences(store, clock),
        intervals=TimeIntervals(config.time_intervals),
        nflog=nflog,
        acks=acks,
        escalate=EscalateStage(config.escalation_policies, acks, store),
        render=RenderStage(
            env, templates, clock, metrics, internal, external_url=config.external_url,
            max_alerts=config.notify.max_alerts, max_length=config.notify.max_rendered_length,
        ),
        outbox=OutboxStage(store, nflog, metrics, deadline=config.notify.deadline, on_superseded=retry.forget,
                           watch=retry.watch),
        retry=retry,
    )
    return NotificationPipeline(parts, route)


def destination_limiters(config: Config, notifiers: Mapping[str, Notifier]) -> dict[str, RateLimiter]:
    """One rate limiter per destination, shared by the receivers that send there; by receiver.

    A destination's budget: the ``rate_limit`` of its first receiver (by name) that sets one, else what the
    notifier documents for its service (``rate_budget``), else ``notify.rate_limit``, else none (a Retry-After
    still pauses it).
    """
    by_destination: dict[str, list[str]] = {}
    for name in sorted(notifiers):
        by_destination.setdefault(notifiers[name].destination(), []).append(name)
    out: dict[str, RateLimiter] = {}
    for names in by_destination.values():
        configs = [config.receivers[n] for n in names if n in config.receivers]
        own = next((rc for rc in configs if rc.rate_limit is not None), None)
        budget = type(notifiers[names[0]]).rate_budget
        if own is not None:
            limiter = RateLimiter(own.rate_limit, own.rate_burst)
        elif budget is not None:
            limiter = RateLimiter(budget.rate, budget.burst)
        else:
            limiter = RateLimiter(config.notify.rate_limit, configs[0].rate_burst if configs else 1)
        out.update(dict.fromkeys(names, limiter))
    return out


def make_notifiers(loaded: LoadedConfig, http: httpx.AsyncClient, clock: Clock) -> dict[str, Notifier]:
    """One notifier per configured receiver, with the settings validated when the configuration loaded."""
    context = NotifierContext(http=http, clock=clock)
    out: dict[str, Notifier] = {}
    for name, settings in loaded.receiver_settings.items():
        cls = loaded.notifier_types[loaded.config.receivers[name].type]
        out[name] = cls(name, settings, context)
    return out


@dataclass(frozen=True)
class SendReport:
    """The outcome of ``alertd notify``: one attempt, no retry, so the error shows at once."""

    receiver: str
    type: str
    ok: bool
    latency: float
    error: str = ""
    template_errors: tuple[str, ...] = ()


async def send_test_notification(loaded: LoadedConfig, receiver: str, clock: Clock | None = None) -> SendReport:
    """Render and send one made-up firing alert through ``receiver``."""
    import httpx

    from alertd.templating.env import make_environment

    if receiver not in loaded.receiver_settings:
        known = ", ".join(sorted(loaded.receiver_settings)) or "none"
        raise ConfigError(f"unknown receiver {receiver!r}; configured receivers: {known}", file=loaded.path)
    clock = clock or SystemClock()
    now = clock.now()
    labels = {"alertname": "AlertdTestNotification", "severity": "info", "receiver": receiver}
    alert = Alert(
        fingerprint("alertd/test", labels), "alertd/test", labels,
        {"summary": f"Test notification to receiver {receiver}", "description": "Sent by `alertd notify`."},
        AlertState.FIRING, None, now,
    )
    notification = Notification(
        id=uuid.uuid4().hex, receiver=receiver, group_key=f"{{}}:alertd-test:{receiver}",
        group_labels={"alertname": "AlertdTestNotification"}, alerts=(alert,), reason=Reason(ReasonKind.TEST),
        created_at=now, external_url=loaded.config.external_url,
    )
    internal = InternalAlerts()
    async with httpx.AsyncClient() as http:
        notifier = make_notifiers(loaded, http, clock)[receiver]
        templates = {receiver: {**type(notifier).templates, **notifier.settings.templates}}
        render = RenderStage(make_environment(), templates, clock, NotifyMetrics(), internal,
                             max_alerts=loaded.config.notify.max_alerts)
        result = await attempt(notifier, render.render(notification))
        await notifier.close()
    return SendReport(
        receiver, type(notifier).type_name, result.ok, result.latency,
        "" if result.error is None else f"{type(result.error).__name__}: {result.error}",
        tuple(a.annotations.get("summary", "") for a in internal.firing()),
    )
