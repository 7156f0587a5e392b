"""A group's alerts and what the receiver was last told (the notification log) in; the alerts to notify and
the reason why out, or nothing when nothing changed and no repeat is due.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from alertd.models import Alert, AlertState
from alertd.notifiers.reasons import Reason, ReasonKind
from alertd.notify import NotifyContext, log
from alertd.state.base import NotificationLogEntry, StateStore

FIRST = Reason(ReasonKind.FIRST)
NEW_ALERTS = Reason(ReasonKind.NEW_ALERTS)
RESOLVED = Reason(ReasonKind.RESOLVED)
REPEAT = Reason(ReasonKind.REPEAT)
SILENCE_ENDED = Reason(ReasonKind.SILENCE_ENDED)
INHIBITION_ENDED = Reason(ReasonKind.INHIBITION_ENDED)
PREVIOUS_FAILED = Reason(ReasonKind.PREVIOUS_FAILED)


@dataclass(frozen=True, slots=True)
class Decision:
    send: bool
    reason: str  # why it is sent, or why not
    record: bool = False  # update the notification log without sending (all resolved, send_resolved off)


def decide(
    entry: NotificationLogEntry | None,
    firing: Collection[str],
    resolved: Collection[str],
    *,
    now: float,
    repeat_interval: float,
    send_resolved: bool,
    unmuted: Mapping[str, str] | None = None,
) -> Decision:
    """Alertmanager's dedup (``needsUpdate``), with a reason for every answer.

    ``unmuted``: firing fingerprints that a silence or an inhibition held back at the last flush and no
    longer does, to what had muted them.
    """
    if unmuted:
        kinds = {unmuted[fp] for fp in firing if fp in unmuted}
        if kinds:
            reason = SILENCE_ENDED if any(k.startswith("silence") for k in kinds) else INHIBITION_ENDED
            return Decision(True, reason)
    if entry is None:
        # The receiver never heard of this group: nothing to say about alerts that already resolved.
        return Decision(True, FIRST) if firing else Decision(False, "only resolved alerts, never notified")
    if entry.failed and firing:
        return Decision(True, PREVIOUS_FAILED)
    if not entry.firing.issuperset(firing):
        return Decision(True, NEW_ALERTS)
    if not firing:
        if not entry.firing:
            return Decision(False, "fired and resolved between two flushes")
        # Every alert resolved: log it even when the receiver does not want resolves, so that an alert that
        # fires again later is new.
        return Decision(True, RESOLVED) if send_resolved else Decision(False, RESOLVED, record=True)
    if send_resolved and not entry.resolved.issuperset(resolved):
        return Decision(True, RESOLVED)
    if entry.sent_at + repeat_interval <= now:
        return Decision(True, REPEAT)
    return Decision(False, "unchanged")


class NotificationLog:
    """What each receiver was last told about each group: the state store's entries, cached in memory."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._entries = {(e.group_key, e.receiver): e for e in store.nflog_entries()}

    def get(self, group_key: str, receiver: str) -> NotificationLogEntry | None:
        return self._entries.get((group_key, receiver))

    def accepted(self, entry: NotificationLogEntry) -> None:
        """Remember an entry that the outbox wrote in its own transaction."""
        with self._lock:
            self._entries[(entry.group_key, entry.receiver)] = entry

    def put(self, entry: NotificationLogEntry) -> None:
        self.store.nflog_put([entry])
        self.accepted(entry)

    def failed(self, group_key: str, receiver: str, notification_id: str) -> None:
        """The notification was given up: the next flush tells the receiver again."""
        entry = self.get(group_key, receiver)
        if entry is not None and entry.notification_id == notification_id and not entry.failed:
            self.put(replace(entry, failed=True))

    def entries(self) -> list[NotificationLogEntry]:
        with self._lock:
            return list(self._entries.values())

    def prune(self, before: float) -> int:
        count = self.store.nflog_prune(before)
        if count:
            with self._lock:
                self._entries = {k: e for k, e in self._entries.items() if e.sent_at >= before}
        return count


class DedupStage:
    """Lets a notification through only when something changed or a repeat is due, and says why."""

    def __init__(self, nflog: NotificationLog) -> None:
        self.nflog = nflog

    async def __call__(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        firing: set[str] = set()
        resolved: set[str] = set()
        resolved_state = AlertState.RESOLVED
        for a in alerts:
            (resolved if a.state is resolved_state else firing).add(a.fingerprint)
        entry = self.nflog.get(ctx.group_key, ctx.receiver)
        unmuted = {fp: why for fp, why in ctx.flush.previously_muted.items() if fp not in ctx.flush.muted}
        decision = decide(
            entry,
            firing,
            resolved,
            now=ctx.now,
            repeat_interval=ctx.route.repeat_interval,
            send_resolved=ctx.route.send_resolved,
            unmuted=unmuted,
        )
        new_entry = NotificationLogEntry(
            ctx.group_key, ctx.receiver, ctx.now, frozenset(firing),
            frozenset(resolved) if ctx.route.send_resolved else frozenset(), decision.reason,
        )
        if decision.record:
            self.nflog.put(new_entry)
        if not decision.send:
            log.debug("%s: not notified: %s", ctx.stage_log(), decision.reason)
            return []
        ctx.reason = Reason.parse(decision.reason)
        ctx.log_entry = new_entry
        return alerts if ctx.route.send_resolved or not resolved else [a for a in alerts if not a.resolved]
