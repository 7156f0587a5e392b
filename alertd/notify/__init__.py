"""What every stage of the notification pipeline shares: the context of one flush, metrics and internal alerts.

The stages live one per module (inhibit, silence, timewindow, dedup, escalate, render, outbox, retry);
``alertd.notify.pipeline`` assembles them. Behind the retry stage, each receiver's delivery lane (lanes) sends
within its destination's budget (ratelimit).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from alertd.dispatch.route import RouteOptions
from alertd.models import Alert, AlertState, fingerprint
from alertd.notifiers.base import Notification
from alertd.notifiers.reasons import Reason, ReasonKind
from alertd.state.base import NotificationLogEntry, OutboxRow

log = logging.getLogger("alertd.notify")


@dataclass
class FlushState:
    """Shared by every receiver of one group flush."""

    previously_muted: Mapping[str, str]  # fingerprint -> "silence" or "inhibition", at the last flush
    muted: dict[str, str] = field(default_factory=dict)  # fingerprint -> what mutes it now
    time_muted: str = ""  # the time interval that holds the whole flush back
    wake_at: float | None = None  # an earlier flush than group_interval asks for (escalation)
    memo: dict[str, Any] = field(default_factory=dict)  # a stage's per-flush results


NO_REASON = Reason(ReasonKind.OTHER)


@dataclass
class NotifyContext:
    """One group flush, for one receiver once fanned out. Stages read it and fill in what they decide."""

    group_key: str
    group_labels: Mapping[str, str]
    route: RouteOptions
    now: float
    flush: FlushState
    receiver: str = ""
    level: int = 0  # escalation level of ``receiver`` (0: the route's own receiver)
    reason: Reason = NO_REASON  # why this notification is sent (dedup, escalation, an acknowledgement)
    log_entry: NotificationLogEntry | None = None  # written with the outbox row
    notification: Notification | None = None  # built by render
    outbox_row: OutboxRow | None = None  # written by outbox
    fallback_for: str = ""  # the receiver that refused this notification for good

    def stage_log(self) -> str:
        return f"group={self.group_key} receiver={self.receiver or '-'}"


class Stage(Protocol):
    async def __call__(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]: ...


class NotifyMetrics:
    """The pipeline's Prometheus metrics, in a registry that the daemon exposes (never the global one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sent = Counter("alertd_notifications_sent", "Notifications delivered", ["receiver", "reason"], registry=r)
        self.failed = Counter(
            "alertd_notifications_failed", "Notifications given up (permanent error or deadline)",
            ["receiver", "reason"], registry=r,
        )
        self.retried = Counter(
            "alertd_notifications_retried", "Failed attempts that will be tried again", ["receiver", "reason"],
            registry=r,
        )
        self.latency = Histogram(
            "alertd_notification_latency_seconds", "Duration of one delivery attempt", ["receiver"], registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.outbox_size = Gauge("alertd_outbox_size", "Notifications accepted and not yet delivered", registry=r)
        self.template_failures = Counter(
            "alertd_template_failures", "Templates that failed to render", ["receiver", "template"], registry=r,
        )
        self.template_budget_exceeded = Counter(
            "alertd_template_budget_exceeded", "Templates cut short by the [templates] budget",
            ["receiver", "template", "limit"], registry=r,
        )
        self.muted = Counter(
            "alertd_alerts_muted", "Alerts held back at a flush, by what muted them", ["by"], registry=r,
        )

    def value(self, name: str, **labels: str) -> float:
        """One sample's value (0 when absent): for tests and ``alertd notify``."""
        return self.registry.get_sample_value(name, labels or None) or 0.0


INTERNAL_RULE = "alertd/notify"


class InternalAlerts:
    """Alerts about alertd's own notification path (a failing template, a receiver given up).

    The daemon reads ``alerts()`` after each cycle and puts them through the pipeline like any other alert.
    """

    def __init__(self) -> None:
        self._alerts: dict[str, Alert] = {}

    def fire(self, name: str, labels: Mapping[str, str], summary: str, now: float, severity: str = "warning") -> None:
        full = {"alertname": name, "severity": severity, **labels}
        fp = fingerprint(INTERNAL_RULE, full)
        old = self._alerts.get(fp)
        if old is not None and not old.resolved and old.annotations.get("summary") == summary:
            return
        starts = old.starts_at if old is not None and not old.resolved else now
        self._alerts[fp] = Alert(fp, INTERNAL_RULE, full, {"summary": summary}, AlertState.FIRING, None, starts)
        log.warning("internal alert %s %s: %s", name, dict(labels), summary)

    def resolve(self, name: str, labels: Mapping[str, str], now: float, severity: str = "warning") -> None:
        full = {"alertname": name, "severity": severity, **labels}
        fp = fingerprint(INTERNAL_RULE, full)
        old = self._alerts.get(fp)
        if old is not None and not old.resolved:
            self._alerts[fp] = Alert(fp, INTERNAL_RULE, full, old.annotations, AlertState.RESOLVED, None,
                                     old.starts_at, ends_at=now)

    def alerts(self) -> list[Alert]:
        """Every internal alert, firing or resolved."""
        return list(self._alerts.values())

    def firing(self) -> list[Alert]:
        return [a for a in self._alerts.values() if not a.resolved]

    def forget_resolved(self) -> None:
        self._alerts = {fp: a for fp, a in self._alerts.items() if not a.resolved}
