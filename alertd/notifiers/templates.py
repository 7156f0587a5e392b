"""A notification and Jinja templates in, rendered strings out: the one template context every notifier sees."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2.sandbox import SandboxedEnvironment

from alertd.models import Alert
from alertd.notifiers.base import Notification


def alert_context(alert: Alert) -> dict[str, Any]:
    return {
        "status": "resolved" if alert.resolved else "firing",
        "name": alert.name,
        "severity": alert.severity,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "value": alert.value,
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
        "generator_url": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }


def template_context(notification: Notification) -> dict[str, Any]:
    """What a notification template reads (documented in docs/plugins.md)."""
    return {
        "receiver": notification.receiver,
        "status": notification.status,
        "reason": notification.reason,
        "severity": notification.severity,
        "group_key": notification.group_key,
        "group_labels": dict(notification.group_labels),
        "common_labels": notification.common_labels,
        "common_annotations": notification.common_annotations,
        "alerts": [alert_context(a) for a in notification.alerts],
        "firing": [alert_context(a) for a in notification.firing],
        "resolved": [alert_context(a) for a in notification.resolved],
        "truncated_alerts": notification.truncated_alerts,
        "external_url": notification.external_url,
        "created_at": notification.created_at,
    }


def render_templates(
    env: SandboxedEnvironment, templates: Mapping[str, str], notification: Notification
) -> dict[str, str]:
    """Render every template; raises the first template error (the pipeline falls back to a minimal message)."""
    context = template_context(notification)
    return {name: env.from_string(source).render(context) for name, source in templates.items()}
