"""Alerts in; aggregation groups out, each flushed on its timers: ``group_wait`` after it appears, then every
``group_interval`` (Alertmanager's dispatcher). Time comes from a Clock, so tests run on a virtual one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType

from alertd.clock import Clock
from alertd.dispatch.route import Route
from alertd.models import Alert, AlertState
from alertd.owner import OwnerThread

log = logging.getLogger("alertd.dispatch")


class AggregationGroup:
    """The alerts of one route that share the route's ``group_by`` labels, and when they are next flushed."""

    __slots__ = ("alerts", "created_at", "key", "labels", "last_flush", "muted", "next_flush", "route")

    def __init__(self, route: Route, key: str, labels: Mapping[str, str], now: float) -> None:
        self.route = route
        self.key = key
        self.labels: Mapping[str, str] = MappingProxyType(dict(labels))
        self.alerts: dict[str, Alert] = {}
        self.created_at = now
        self.next_flush = now + route.options.group_wait
        self.last_flush: float | None = None
        # What muted which alert at the last flush, so that dedup can say "silence ended".
        self.muted: Mapping[str, str] = {}

    def __repr__(self) -> str:
        return f"AggregationGroup({self.key!r}, {len(self.alerts)} alerts, next flush {self.next_flush})"

    def put(self, alert: Alert, now: float) -> None:
        self.alerts[alert.fingerprint] = alert
        # A group whose alert has fired for longer than group_wait (seen again after a restart, or routed
        # here by a reload) has nothing to wait for.
        if self.last_flush is None and alert.starts_at + self.route.options.group_wait < now:
            self.next_flush = min(self.next_flush, now)

    def snapshot(self) -> list[Alert]:
        return list(self.alerts.values())

    def flushed(self, sent: list[Alert]) -> list[Alert]:
        """After a flush: forget the resolved alerts it carried (unless they changed since); return them."""
        gone = []
        for alert in sent:
            if alert.resolved and self.alerts.get(alert.fingerprint) is alert:
                del self.alerts[alert.fingerprint]
                gone.append(alert)
        return gone

    def wake(self, when: float) -> None:
        self.next_flush = min(self.next_flush, when)


Flush = Callable[[AggregationGroup, list[Alert]], Awaitable[float | None]]
"""Sends one group's alerts through the pipeline; may return an earlier time for the next flush."""


@dataclasses.dataclass(frozen=True, slots=True)
class Placement:
    route: Route
    group_key: str
    group_labels: Mapping[str, str]


class Dispatcher:
    """Routes alerts into aggregation groups and flushes the groups that are due."""

    def __init__(self, root: Route, clock: Clock, flush: Flush) -> None:
        self.owner = OwnerThread("the dispatcher")
        self.root = root
        self.clock = clock
        self._flush = flush
        self.groups: dict[str, AggregationGroup] = {}
        # An alert's labels never change, so its routes and groups are worked out once per fingerprint.
        self._placements: dict[str, tuple[Placement, ...]] = {}
        # Resolved alerts already notified and dropped from their groups, so that the same resolved alert,
        # still reported by the rule engine for a while, does not bring its group back.
        self._done: dict[str, float | None] = {}
        self._held: dict[str, Alert] = {}
        self._flushing: set[str] = set()
        # Told when an alert is gone for good, so that caches kept per fingerprint elsewhere stay bounded.
        self.on_forget: Callable[[str], None] | None = None

    def placements(self, alert: Alert) -> tuple[Placement, ...]:
        found = self._placements.get(alert.fingerprint)
        if found is None:
            found = tuple(
                Placement(route, route.group_key(labels), MappingProxyType(labels))
                for route in self.root.match(alert.labels)
                for labels in (route.group_labels(alert.labels),)
            )
            self._placements[alert.fingerprint] = found
        return found

    def put(self, alerts: Iterable[Alert], *, complete: bool = False) -> None:
        """Add or update alerts. ``complete``: these are all the active alerts, and a firing alert that is
        missing (its rule was removed) resolves now."""
        self.owner.check()
        now = self.clock.now()
        seen: set[str] = set()
        groups = self.groups
        held = self._held
        done = self._done
        placements = self._placements
        resolved_state, firing_state = AlertState.RESOLVED, AlertState.FIRING
        for alert in alerts:
            fp = alert.fingerprint
            seen.add(fp)
            state = alert.state
            if state is resolved_state:
                if fp not in held and done.get(fp, -1.0) == alert.ends_at:
                    continue
            elif state is not firing_state:
                continue
            elif done:
                done.pop(fp, None)
            held[fp] = alert
            for p in placements.get(fp) or self.placements(alert):
                group = groups.get(p.group_key)
                if group is None:
                    group = groups[p.group_key] = AggregationGroup(p.route, p.group_key, p.group_labels, now)
                group.put(alert, now)
        if complete:
            for fp in [fp for fp in self._held if fp not in seen]:
                alert = self._held[fp]
                if not alert.resolved:
                    resolved = dataclasses.replace(alert, state=AlertState.RESOLVED, ends_at=now)
                    self.put([resolved])
                else:
                    self._forget(fp)
            for fp in [fp for fp in self._done if fp not in seen]:
                del self._done[fp]

    def _forget(self, fp: str) -> None:
        self._held.pop(fp, None)
        self._placements.pop(fp, None)
        if self.on_forget is not None:
            self.on_forget(fp)

    def next_due(self) -> float | None:
        return min((g.next_flush for g in self.groups.values() if g.key not in self._flushing), default=None)

    def due(self, now: float) -> list[AggregationGroup]:
        return [g for g in self.groups.values() if g.next_flush <= now and g.key not in self._flushing]

    async def flush_due(self) -> int:
        """Flush every group that is due, concurrently; return how many were flushed."""
        self.owner.check()
        now = self.clock.now()
        due = self.due(now)
        if due:
            await asyncio.gather(*(self.flush_group(g, now) for g in due))
        return len(due)

    async def flush_group(self, group: AggregationGroup, now: float) -> None:
        self._flushing.add(group.key)
        # The timer restarts when the flush starts, as in Alertmanager: a slow receiver does not delay it.
        group.next_flush = now + group.route.options.group_interval
        group.last_flush = now
        alerts = group.snapshot()
        try:
            wake = await self._flush(group, alerts)
        except Exception:
            log.exception("flushing group %s failed", group.key)
            wake = None
        finally:
            self._flushing.discard(group.key)
        if wake is not None and wake > now:
            group.wake(wake)
        for alert in group.flushed(alerts):
            self._done[alert.fingerprint] = alert.ends_at
            if not any(alert.fingerprint in g.alerts for g in self._groups_of(alert)):
                self._forget(alert.fingerprint)
        if not group.alerts:
            del self.groups[group.key]

    def _groups_of(self, alert: Alert) -> list[AggregationGroup]:
        return [g for p in self.placements(alert) if (g := self.groups.get(p.group_key)) is not None]

    def alerts(self) -> list[Alert]:
        """Every alert the dispatcher holds (firing, or resolved and not yet notified)."""
        self.owner.check()
        return list(self._held.values())
