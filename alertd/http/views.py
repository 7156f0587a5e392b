"""The daemon's objects as plain JSON-able dicts: what the API returns and the dashboard shows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alertd.models import Alert
from alertd.state.base import AlertRecord, Silence

if TYPE_CHECKING:
    from alertd.daemon.core import Daemon

INTERNAL_RULE = "alertd"


def alert_view(daemon: Daemon, record: AlertRecord | None = None, alert: Alert | None = None) -> dict[str, Any]:
    """One alert: a rule's (``record``) or alertd's own (``alert``)."""
    if record is not None:
        alert = daemon.engine.to_alert(record)
    assert alert is not None
    now = daemon.clock.now()
    pipeline = daemon.pipeline
    silenced: list[str] = []
    inhibited: list[str] = []
    ack = None
    if pipeline is not None:
        by = pipeline.silences.silenced_by(alert, now)
        silenced = [by] if by else []
        source = pipeline.parts.inhibitor.inhibited_by(alert)
        inhibited = [source] if source else []
        got = pipeline.acks.get(alert.fingerprint)
        if got is not None and got.active(now):
            ack = {"by": got.by, "comment": got.comment, "at": got.at, "expires_at": got.expires_at}
    return {
        "fingerprint": alert.fingerprint,
        "rule": record.rule if record is not None else INTERNAL_RULE,
        "state": alert.state.value,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "severity": alert.labels.get("severity", ""),
        "value": record.value if record is not None else None,
        "active_at": record.active_at if record is not None else alert.starts_at,
        "fired_at": record.fired_at if record is not None else alert.starts_at,
        "resolved_at": record.resolved_at if record is not None else alert.ends_at,
        "last_evaluated_at": record.last_eval_at if record is not None else None,
        "silenced_by": silenced,
        "inhibited_by": inhibited,
        "acknowledgement": ack,
        "generator_url": alert.generator_url,
    }


def sort_views(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Firing first, critical first, oldest first."""
    return sorted(views, key=lambda a: (a["state"] != "firing", a["severity"] != "critical", a["active_at"] or 0))


def find_alert(daemon: Daemon, fingerprint: str) -> dict[str, Any] | None:
    for record in daemon.engine.alerts():
        if record.fingerprint == fingerprint:
            return alert_view(daemon, record=record)
    for alert in daemon.internal_alerts():
        if alert.fingerprint == fingerprint:
            return alert_view(daemon, alert=alert)
    return None


def silence_view(silence: Silence, now: float) -> dict[str, Any]:
    return {
        "id": silence.id, "matchers": list(silence.matchers), "starts_at": silence.starts_at,
        "ends_at": silence.ends_at, "created_by": silence.created_by, "comment": silence.comment,
        "status": silence.status(now),
    }
