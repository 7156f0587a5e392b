"""Why an alert did or did not notify: per route, its group, what muted it, what was last sent and what next."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alertd.models import AlertState

if TYPE_CHECKING:
    from alertd.daemon.core import Daemon
    from alertd.notify.pipeline import NotificationPipeline


def explain_alert(daemon: Daemon, pipeline: NotificationPipeline, view: dict[str, Any]) -> dict[str, Any]:
    fp = view["fingerprint"]
    alert = next((a for a in daemon.notifiable_alerts(pipeline) if a.fingerprint == fp), None)
    routes: list[dict[str, Any]] = []
    if alert is None:  # pending: not handed to the pipeline until it fires
        return {"fingerprint": fp, "state": view["state"], "routes": routes,
                "summary": f"the alert is {view['state']}: only firing and resolved alerts are notified"}
    now = daemon.clock.now()
    silenced = pipeline.silences.silenced_by(alert, now) or None
    inhibited = pipeline.parts.inhibitor.inhibited_by(alert) or None
    ack = pipeline.acks.get(fp)
    for placement in pipeline.dispatcher.placements(alert):
        options = placement.route.options
        group = pipeline.dispatcher.groups.get(placement.group_key)
        entry = pipeline.nflog.get(placement.group_key, options.receiver)
        muted = (group.muted.get(fp) if group is not None else None) or None
        if silenced or inhibited or muted:
            dedup = "muted: nothing is sent while it is"
            next_at = None
        elif entry is None or entry.failed:
            dedup = "not notified yet: the next flush of its group sends it"
            next_at = group.next_flush if group is not None else None
        elif alert.state == AlertState.FIRING and fp in entry.firing:
            dedup = f"already notified ({entry.reason}); repeated after repeat_interval"
            next_at = entry.sent_at + options.repeat_interval
        elif alert.state == AlertState.RESOLVED and fp in entry.resolved:
            dedup = "its resolution was notified"
            next_at = None
        else:
            dedup = "changed since the last notification: the next flush of its group sends it"
            next_at = group.next_flush if group is not None else None
        routes.append({
            "route": repr(placement.route), "receiver": options.receiver, "group_key": placement.group_key,
            "group_labels": dict(placement.group_labels), "inhibited_by": inhibited, "silenced_by": silenced,
            "muted_by": muted, "acknowledged": bool(ack and ack.active(now)),
            "last_notification": None if entry is None else {
                "at": entry.sent_at, "reason": entry.reason, "receiver": entry.receiver,
                "status": "failed" if entry.failed else "accepted",
            },
            "dedup": dedup, "next_send_at": next_at, "escalation": options.escalation,
        })
    if not routes:
        summary = "no route matches the alert"
    elif silenced:
        summary = f"silenced by {silenced}"
    elif inhibited:
        summary = f"inhibited by {inhibited}"
    else:
        summary = "; ".join(f"{r['receiver']}: {r['dedup']}" for r in routes)
    return {"fingerprint": fp, "state": alert.state.value, "routes": routes, "summary": summary}
