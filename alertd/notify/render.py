"""A receiver's alerts and reason in; the Notification, with the notifier's templates rendered, out.

The receiver's ``templates`` replace the notifier's defaults of the same name. A template that fails at run
time does not stop the page: its text becomes a short message saying which template failed and why, the
failure is counted (``alertd_template_failures_total``) and raised as an internal alert. A template past its
``[templates]`` budget is sent cut short with a marker, counted (``alertd_template_budget_exceeded_total``) and
raised as the AlertdTemplateBudgetExceeded internal alert.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from jinja2 import Template
from jinja2.sandbox import SandboxedEnvironment

from alertd.clock import Clock
from alertd.dispatch.route import format_labels
from alertd.models import Alert
from alertd.notifiers.base import Notification
from alertd.notifiers.templates import template_context
from alertd.notify import InternalAlerts, NotifyContext, NotifyMetrics, log
from alertd.templating.budget import MARKER
from alertd.templating.env import render_bounded

TEMPLATE_FAILED = "AlertdTemplateFailed"
TEMPLATE_BUDGET_EXCEEDED = "AlertdTemplateBudgetExceeded"
ELLIPSIS = "…"


def compile_templates(env: SandboxedEnvironment, sources: Mapping[str, str]) -> dict[str, Template]:
    """Compile once; a syntax error raises jinja2.TemplateSyntaxError (``alertd check`` reports it)."""
    return {name: env.from_string(source) for name, source in sources.items()}


def minimal_message(notification: Notification, template: str, error: str) -> str:
    """What is sent in place of a template that failed: enough to act on, and the failure."""
    names = sorted({a.name for a in notification.firing or notification.alerts})
    summary = f"[{notification.status.upper()}] {len(notification.alerts)} alert(s): {', '.join(names)[:300]}"
    return (
        f"{summary} {format_labels(notification.group_labels)}\n"
        f"(the {template!r} template of receiver {notification.receiver!r} failed: {error[:300]})"
    )


def order_for_display(alerts: list[Alert]) -> list[Alert]:
    """Firing before resolved, then oldest first: what is cut to fit ``max_alerts`` is the least urgent."""
    return sorted(alerts, key=lambda a: (a.resolved, a.starts_at, a.fingerprint))


class RenderStage:
    """Builds the Notification and renders its templates into ``Notification.rendered``."""

    def __init__(
        self,
        env: SandboxedEnvironment,
        templates: Mapping[str, Mapping[str, str]],
        clock: Clock,
        metrics: NotifyMetrics,
        internal: InternalAlerts,
        *,
        external_url: str = "",
        max_alerts: int = 100,
        max_length: int = 20000,
    ) -> None:
        self.env = env
        self.clock = clock
        self.metrics = metrics
        self.internal = internal
        self.external_url = external_url
        self.max_alerts = max_alerts
        self.max_length = max_length
        self._sources = {receiver: dict(t) for receiver, t in templates.items()}
        self._compiled: dict[str, dict[str, Template | Exception]] = {}

    def _templates(self, receiver: str) -> dict[str, Template | Exception]:
        compiled = self._compiled.get(receiver)
        if compiled is None:
            compiled = {}
            for name, source in self._sources.get(receiver, {}).items():
                try:
                    compiled[name] = self.env.from_string(source)
                except Exception as exc:  # checked at load time; kept here so one bad template is not fatal
                    compiled[name] = exc
            self._compiled[receiver] = compiled
        return compiled

    def build(self, ctx: NotifyContext, alerts: list[Alert]) -> Notification:
        shown = order_for_display(alerts)
        truncated = max(0, len(shown) - self.max_alerts)
        return Notification(
            id=uuid.uuid4().hex,
            receiver=ctx.receiver,
            group_key=ctx.group_key,
            group_labels=dict(ctx.group_labels),
            alerts=tuple(shown[: self.max_alerts]),
            reason=ctx.reason,
            created_at=ctx.now,
            external_url=self.external_url,
            truncated_alerts=truncated,
        )

    def render(self, notification: Notification) -> Notification:
        templates = self._templates(notification.receiver)
        if not templates:
            return notification
        context: dict[str, Any] = template_context(notification)
        rendered: dict[str, str] = {}
        now = self.clock.now()
        for name, template in templates.items():
            labels = {"receiver": notification.receiver, "template": name}
            try:
                if isinstance(template, Exception):
                    raise template
                result = render_bounded(template, context)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                rendered[name] = minimal_message(notification, name, error)
                self.metrics.template_failures.labels(notification.receiver, name).inc()
                log.error("template %s of receiver %s failed, sending a minimal message: %s",
                          name, notification.receiver, error)
                self.internal.fire(
                    TEMPLATE_FAILED, labels, f"template {name} of receiver {notification.receiver} failed: {error}", now
                )
                continue
            self.internal.resolve(TEMPLATE_FAILED, labels, now)
            if result.breach is not None:
                self.metrics.template_budget_exceeded.labels(notification.receiver, name, result.breach.limit).inc()
                self.internal.fire(TEMPLATE_BUDGET_EXCEEDED, labels,
                                   f"template {name} of receiver {notification.receiver}: {result.breach.describe()}", now)
            else:
                self.internal.resolve(TEMPLATE_BUDGET_EXCEEDED, labels, now)
            text = result.text
            if len(text) > self.max_length:  # keep the budget's marker, if any, at the end
                marker = MARKER.format(limit=result.breach.limit) if result.breach is not None else ELLIPSIS
                text = text[: self.max_length - len(marker)] + marker
            rendered[name] = text
        return replace(notification, rendered=rendered)

    async def __call__(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        if not alerts:
            return alerts
        ctx.notification = self.render(self.build(ctx, alerts))
        return alerts
