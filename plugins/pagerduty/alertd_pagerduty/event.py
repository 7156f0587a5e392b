"""A notification and its rendered summary in, a PagerDuty Events API v2 event within PagerDuty's limits out."""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from alertd.models import Alert
from alertd.notifiers.base import Notification
from alertd.notifiers.reasons import Reason, ReasonKind
from alertd.notifiers.templates import alert_context

# PagerDuty's documented limits (Events API v2, "Send an Alert Event").
MAX_SUMMARY = 1024
MAX_EVENT_BYTES = 512 * 1024
MAX_LINKS = 20
MAX_LINK_HREF = 2048
ELLIPSIS = "…"

# alertd's severity label, as rules write it, to PagerDuty's four severities. Unknown or empty: "error",
# as Alertmanager does; a page that is louder than meant beats one that is quieter.
SEVERITIES: Mapping[str, str] = {
    "critical": "critical",
    "crit": "critical",
    "fatal": "critical",
    "emergency": "critical",
    "page": "critical",
    "p1": "critical",
    "error": "error",
    "err": "error",
    "high": "error",
    "major": "error",
    "p2": "error",
    "warning": "warning",
    "warn": "warning",
    "medium": "warning",
    "minor": "warning",
    "p3": "warning",
    "info": "info",
    "informational": "info",
    "notice": "info",
    "low": "info",
    "none": "info",
    "p4": "info",
    "p5": "info",
}
DEFAULT_SEVERITY = "error"
_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}



def dedup_key(group_key: str) -> str:
    """One incident per alert group: the same key across repeats, restarts and replicas."""
    return hashlib.sha256(group_key.encode()).hexdigest()


def pagerduty_severity(severity: str) -> str:
    return SEVERITIES.get(severity.strip().lower(), DEFAULT_SEVERITY)


def event_action(notification: Notification) -> str:
    if notification.status == "resolved":
        return "resolve"
    if Reason.parse(notification.reason).kind is ReasonKind.ACKNOWLEDGED:  # alertd ack, or the API's
        return "acknowledge"
    return "trigger"


def encode(event: Mapping[str, Any]) -> bytes:
    """The bytes that are sent, and measured against the size limit."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC).isoformat()


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def alert_details(alert: Alert) -> dict[str, Any]:
    # What templates see, with readable times for the people reading the incident.
    return {**alert_context(alert), "starts_at": iso(alert.starts_at), "ends_at": iso(alert.ends_at)}


def links(notification: Notification) -> list[dict[str, str]]:
    """Each alert's source and runbook, once each, at most ``MAX_LINKS``."""
    found: dict[str, str] = {}
    for alert in notification.firing or notification.alerts:
        for href, text in (
            (alert.annotations.get("runbook_url", ""), f"Runbook: {alert.name}"),
            (alert.generator_url, f"Source: {alert.name}"),
        ):
            if href.startswith(("http://", "https://")) and len(href) <= MAX_LINK_HREF:
                found.setdefault(href, text)
    return [{"href": href, "text": text} for href, text in list(found.items())[:MAX_LINKS]]


def fallback_summary(notification: Notification) -> str:
    status = notification.status.upper()
    count = f":{len(notification.firing)}" if status == "FIRING" else ""
    pool = notification.firing or list(notification.alerts)
    first = pool[0] if pool else None
    name = notification.common_labels.get("alertname") or (first.name if first else "alertd")
    summary = first.annotations.get("summary", "") if first else ""
    return f"[{status}{count}] {name}" + (f": {summary}" if summary else "")


def build_event(
    notification: Notification,
    texts: Mapping[str, str],
    *,
    routing_key: str,
    source: str,
    component: str | None = None,
    group: str | None = None,
    class_: str | None = None,
) -> dict[str, Any]:
    """A trigger, acknowledge or resolve event for the notification's alert group, at most 512 KB encoded."""
    action = event_action(notification)
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key(notification.group_key)}
    if action != "trigger":
        return event  # PagerDuty needs only the key to acknowledge or resolve

    pool = notification.firing
    severity = min((pagerduty_severity(a.severity) for a in pool), key=_RANK.__getitem__, default=DEFAULT_SEVERITY)
    summary = " ".join((texts.get("summary", "") or fallback_summary(notification)).split())
    payload: dict[str, Any] = {
        "summary": truncate(summary or fallback_summary(notification), MAX_SUMMARY),
        "source": source,
        "severity": severity,
        "timestamp": iso(min(a.starts_at for a in pool)),
    }
    for key, value in (("component", component), ("group", group), ("class", class_)):
        if value:
            payload[key] = value
    details: dict[str, Any] = {
        "reason": notification.reason,
        "receiver": notification.receiver,
        "num_firing": len(notification.firing),
        "num_resolved": len(notification.resolved),
        "group_labels": dict(notification.group_labels),
        "common_labels": notification.common_labels,
        "common_annotations": notification.common_annotations,
        "alerts": [alert_details(a) for a in notification.firing + notification.resolved],
    }
    if notification.truncated_alerts:
        details["truncated_alerts"] = notification.truncated_alerts
    payload["custom_details"] = details
    event["payload"] = payload
    event["links"] = links(notification)
    event["client"] = "alertd"
    if notification.external_url:
        event["client_url"] = notification.external_url
    return fit(event)


def fit(event: dict[str, Any], limit: int = MAX_EVENT_BYTES) -> dict[str, Any]:
    """Trim ``custom_details`` until the event fits: shorter strings first, then fewer alerts; never fail."""
    if len(encode(event)) <= limit:
        return event
    payload = event["payload"]
    details = payload["custom_details"]
    for cap in (8192, 1024, 128):
        payload["custom_details"] = capped = cap_strings(details, cap)
        if len(encode(event)) <= limit:
            return event
    # Still too large: too many alerts. Keep those that fit, in order, and say how many are left out.
    alerts = capped.pop("alerts")
    capped["alerts"] = []
    capped["truncated_alerts"] = capped.get("truncated_alerts", 0) + len(alerts)
    room = limit - len(encode(event)) - 16  # the count may grow by a few digits
    kept = 0
    for alert in alerts:
        size = len(encode(alert)) + 1  # and its comma
        if size > room:
            break
        room -= size
        kept += 1
    capped["alerts"] = alerts[:kept]
    capped["truncated_alerts"] -= kept
    if len(encode(event)) <= limit:
        return event
    payload["custom_details"] = {
        "note": "details left out: larger than PagerDuty accepts",
        "num_firing": details["num_firing"],
        "num_resolved": details["num_resolved"],
    }
    return event


def cap_strings(value: Any, cap: int) -> Any:
    """A copy with every string (key or value) longer than ``cap`` cut, with an ellipsis."""
    if isinstance(value, str):
        return truncate(value, cap)
    if isinstance(value, dict):
        return {truncate(str(k), cap): cap_strings(v, cap) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [cap_strings(v, cap) for v in value]
    return value
