"""A rendered notification in; the same notification written to the state store before any attempt to send
it (with the notification log entry, in one transaction) out. The retry stage marks it delivered after.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from alertd.models import Alert, AlertState
from alertd.notifiers.base import Notification
from alertd.notifiers.reasons import Reason
from alertd.notify import NotifyContext, NotifyMetrics, log
from alertd.notify.dedup import NotificationLog
from alertd.notify.store_watch import StoreWatch
from alertd.state.base import OutboxRow, StateStore

PAYLOAD_VERSION = 1


def _alert(alert: Alert) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "rule": alert.rule,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "state": alert.state.value,
        "value": alert.value,
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
        "generator_url": alert.generator_url,
        "extra": dict(alert.extra),
    }


def encode_notification(n: Notification) -> str:
    """The outbox payload: everything a notifier reads, so a restarted alertd sends exactly the same."""
    return json.dumps(
        {
            "version": PAYLOAD_VERSION,
            "id": n.id,
            "receiver": n.receiver,
            "group_key": n.group_key,
            "group_labels": dict(n.group_labels),
            "alerts": [_alert(a) for a in n.alerts],
            "reason": str(n.reason),
            "reason_kind": n.reason.kind.value if isinstance(n.reason, Reason) else None,
            "reason_level": n.reason.level if isinstance(n.reason, Reason) else None,
            "created_at": n.created_at,
            "external_url": n.external_url,
            "rendered": dict(n.rendered),
            "truncated_alerts": n.truncated_alerts,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decode_notification(payload: str) -> Notification:
    """Raises ValueError for a payload this alertd cannot read."""
    try:
        d = json.loads(payload)
        if d.get("version") != PAYLOAD_VERSION:
            raise ValueError(f"payload version {d.get('version')!r}, this alertd reads {PAYLOAD_VERSION}")
        alerts = tuple(
            Alert(
                fingerprint=a["fingerprint"],
                rule=a["rule"],
                labels=a["labels"],
                annotations=a["annotations"],
                state=AlertState(a["state"]),
                value=a["value"],
                starts_at=a["starts_at"],
                ends_at=a["ends_at"],
                generator_url=a.get("generator_url", ""),
                extra=a.get("extra", {}),
            )
            for a in d["alerts"]
        )
        return Notification(
            id=d["id"],
            receiver=d["receiver"],
            group_key=d["group_key"],
            group_labels=d["group_labels"],
            alerts=alerts,
            reason=Reason.parse(d["reason"], d.get("reason_kind"), d.get("reason_level")),
            created_at=d["created_at"],
            external_url=d.get("external_url", ""),
            rendered=d.get("rendered", {}),
            truncated_alerts=d.get("truncated_alerts", 0),
        )
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable outbox payload: {type(exc).__name__}: {exc}") from None


class OutboxStage:
    """Writes the notification (and what dedup decided) to the state store: from here on it is not lost."""

    def __init__(
        self,
        store: StateStore,
        nflog: NotificationLog,
        metrics: NotifyMetrics,
        *,
        deadline: float,
        on_superseded: Callable[[Iterable[str]], None] | None = None,
        watch: StoreWatch,
    ) -> None:
        self.store = store
        self.watch = watch
        self.nflog = nflog
        self.metrics = metrics
        self.deadline = deadline
        self.on_superseded = on_superseded

    def accept(self, notification: Notification, ctx: NotifyContext) -> OutboxRow:
        row = OutboxRow(
            id=notification.id,
            receiver=notification.receiver,
            group_key=notification.group_key,
            payload=encode_notification(notification),
            created_at=notification.created_at,
            deadline=notification.created_at + self.deadline,
            next_attempt_at=notification.created_at,
        )
        entry = ctx.log_entry
        if entry is not None:
            entry = replace(entry, notification_id=notification.id, failed=False)
        # A store that refuses the write does not stop the page: it goes out from memory (see store_watch).
        superseded = self.watch.write(f"notification {row.id}", lambda: self.store.outbox_add(row, entry)) or []
        if entry is not None:
            self.nflog.accepted(entry)
        if superseded:
            log.info("notification %s replaces %s, not yet delivered, to %s", row.id, ", ".join(superseded),
                     row.receiver)
            if self.on_superseded is not None:
                self.on_superseded(superseded)
        return row

    async def __call__(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        if not alerts or ctx.notification is None:
            return alerts
        ctx.outbox_row = self.accept(ctx.notification, ctx)
        return alerts
