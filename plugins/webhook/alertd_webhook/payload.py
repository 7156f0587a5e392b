"""A notification in, Alertmanager's webhook payload (version "4") out, so that existing receivers work unchanged."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from alertd.models import Alert
from alertd.notifiers.base import Notification
from alertd.notifiers.reasons import Reason

VERSION = "4"
# Alertmanager sends Go's zero time as endsAt while an alert fires.
ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(timestamp: float) -> str:
    """UTC with a Z and only the fractional digits there are, as Go's time.RFC3339Nano prints it."""
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def labels(alert: Alert) -> dict[str, str]:
    # Alertmanager's receivers read labels.alertname; alertd keeps the rule name apart when no label names it.
    return {"alertname": alert.name, **alert.labels}


def alert_payload(alert: Alert, resolved_at: float) -> dict[str, Any]:
    return {
        "status": "resolved" if alert.resolved else "firing",
        "labels": labels(alert),
        "annotations": dict(alert.annotations),
        "startsAt": rfc3339(alert.starts_at),
        "endsAt": rfc3339(alert.ends_at if alert.ends_at is not None else resolved_at) if alert.resolved else ZERO_TIME,
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }


def common(maps: list[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    shared = dict(maps[0])
    for m in maps[1:]:
        shared = {k: v for k, v in shared.items() if m.get(k) == v}
    return shared


def build_payload(
    notification: Notification, *, max_alerts: int = 0, rendered: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The body Alertmanager posts, plus an ``alertd`` object that its receivers ignore.

    ``max_alerts`` (0: all) keeps the first alerts and counts the rest in ``truncatedAlerts``; as with
    Alertmanager's ``max_alerts``, common labels and annotations are those of the alerts sent. The status is
    the whole group's: "firing" while any alert fires, even one left out.
    """
    alerts = list(notification.alerts)
    shown = alerts[:max_alerts] if max_alerts > 0 else alerts
    reason = Reason.parse(notification.reason)
    extra: dict[str, Any] = {"reason": str(reason), "reasonKind": reason.kind.value, "notificationId": notification.id}
    if rendered:
        extra["rendered"] = dict(rendered)
    return {
        "version": VERSION,
        "groupKey": notification.group_key,
        "truncatedAlerts": notification.truncated_alerts + len(alerts) - len(shown),
        "status": notification.status,
        "receiver": notification.receiver,
        "groupLabels": dict(notification.group_labels),
        "commonLabels": common([labels(a) for a in shown]),
        "commonAnnotations": common([a.annotations for a in shown]),
        "externalURL": notification.external_url,
        "alerts": [alert_payload(a, notification.created_at) for a in shown],
        "alertd": extra,
    }
