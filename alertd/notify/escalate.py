"""A group's alerts, the route's escalation policy and the acknowledgements in; for each later level's receiver,
the alerts to notify once their unacknowledged time reaches the level's ``after`` (or nothing) out.

Level 0 is the route's own receiver. An alert's clock counts the time it fired unacknowledged: an
acknowledgement stops it, an expired acknowledgement lets it run on from where it stopped, and an alert
that resolves and fires again starts over (an acknowledgement made before it fired does not cover it).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alertd.clock import Clock
from alertd.dispatch.config import EscalationPolicyConfig
from alertd.durations import format_duration
from alertd.errors import AlertdError
from alertd.models import Alert
from alertd.notifiers.reasons import Reason
from alertd.notify import NotifyContext, log
from alertd.notify.dedup import FIRST, RESOLVED
from alertd.state.base import Acknowledgement, EscalationState, StateStore


class AckError(AlertdError):
    """An acknowledgement cannot be recorded as asked."""


class Acks:
    """Acknowledgements by alert fingerprint, kept in the state store and in memory."""

    def __init__(self, store: StateStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._acks = {a.fingerprint: a for a in store.acks()}

    def reload(self) -> None:
        acks = {a.fingerprint: a for a in self.store.acks()}
        with self._lock:
            self._acks = acks

    def ack(self, fingerprint: str, *, by: str, comment: str = "", expires_at: float | None = None) -> Acknowledgement:
        now = self.clock.now()
        if not by.strip():
            raise AckError("say who acknowledges (by)")
        if expires_at is not None and expires_at <= now:
            raise AckError("the acknowledgement would expire before it starts")
        ack = Acknowledgement(fingerprint, by, comment, now, expires_at)
        self.store.ack_put(ack)
        with self._lock:
            self._acks[fingerprint] = ack
        log.info("alert %s acknowledged by %s%s", fingerprint, by, f": {comment}" if comment else "")
        return ack

    def unack(self, fingerprint: str) -> bool:
        removed = self.store.ack_delete(fingerprint)
        with self._lock:
            self._acks.pop(fingerprint, None)
        return removed

    def get(self, fingerprint: str) -> Acknowledgement | None:
        return self._acks.get(fingerprint)

    def list(self) -> list[Acknowledgement]:
        with self._lock:
            return sorted(self._acks.values(), key=lambda a: a.at)

    def prune(self, alive: set[str]) -> int:
        """Forget the acknowledgements of alerts that are gone."""
        gone = [fp for fp in list(self._acks) if fp not in alive]
        for fp in gone:
            self.unack(fp)
        return len(gone)


def unacknowledged_for(alert: Alert, ack: Acknowledgement | None, now: float) -> float:
    """How long the alert has fired without an acknowledgement covering it."""
    elapsed = max(0.0, now - alert.starts_at)
    if ack is None or ack.at < alert.starts_at or ack.at > now:
        return elapsed
    end = now if ack.expires_at is None else min(now, ack.expires_at)
    return elapsed - max(0.0, end - ack.at)


@dataclass(frozen=True, slots=True)
class Escalation:
    """Where a group's escalation stands at one time."""

    level: int  # the highest level an unacknowledged firing alert has reached (0: none beyond the route's)
    next_at: float | None  # when the next level is due, if nothing changes


def escalation(
    alerts: Sequence[Alert], policy: EscalationPolicyConfig, acks: Mapping[str, Acknowledgement] | Acks, now: float
) -> Escalation:
    afters = [lvl.after for lvl in policy.levels]
    level = 0
    next_at = math.inf
    for alert in alerts:
        if alert.resolved:
            continue
        ack = acks.get(alert.fingerprint)
        elapsed = unacknowledged_for(alert, ack, now)
        covered = ack is not None and alert.starts_at <= ack.at <= now and ack.active(now)
        reached = sum(1 for after in afters if after <= elapsed)
        if not covered:
            level = max(level, reached)
        if reached < len(afters):
            remaining = afters[reached] - elapsed
            # While acknowledged the clock stands still; it runs on when the acknowledgement expires.
            resume = now if not covered else (ack.expires_at if ack is not None and ack.expires_at else math.inf)
            next_at = min(next_at, resume + remaining)
    return Escalation(level, None if math.isinf(next_at) else next_at)


class EscalateStage:
    """For a later level's receiver: the alerts, once an unacknowledged alert of the group reached the level.

    A receiver that was told about firing alerts still hears that they resolved, acknowledged or not.
    """

    def __init__(self, policies: Mapping[str, EscalationPolicyConfig], acks: Acks, store: StateStore) -> None:
        self.policies = policies
        self.acks = acks
        self.store = store
        self._states = {s.group_key: s for s in store.escalations()}

    def _store(self, group_key: str, policy: str, alerts: list[Alert], result: Escalation, now: float) -> None:
        old = self._states.get(group_key)
        if not any(not a.resolved for a in alerts):
            if old is not None:
                self.store.escalation_put([], [group_key])
                del self._states[group_key]
            return
        if old is not None and (old.level, old.next_at, old.policy) == (result.level, result.next_at, policy):
            return
        state = EscalationState(group_key, policy, result.level, result.next_at, now)
        self.store.escalation_put([state])
        self._states[group_key] = state
        if old is None or result.level > old.level:
            log.info("group %s escalation level %d (policy %s)", group_key, result.level, policy)

    def state(self, group_key: str) -> EscalationState | None:
        return self._states.get(group_key)

    def receivers(self, ctx: NotifyContext, alerts: list[Alert]) -> list[tuple[str, int]]:
        """The receivers of one flush with their levels: the route's own (level 0), then the policy's.

        Called once per flush, before the fan-out: the group's escalation is worked out and its next level
        scheduled whether or not anything changed since the last notification.
        """
        levels = [(ctx.route.receiver, 0)]
        policy_name = ctx.route.escalation
        if policy_name is None or policy_name not in self.policies:
            return levels
        result = escalation(alerts, self.policies[policy_name], self.acks, ctx.now)
        ctx.flush.memo["escalation"] = result
        if result.next_at is not None:
            ctx.flush.wake_at = result.next_at if ctx.flush.wake_at is None else min(ctx.flush.wake_at, result.next_at)
        self._store(ctx.group_key, policy_name, alerts, result, ctx.now)
        policy = self.policies[policy_name]
        return levels + [(lvl.receiver, i) for i, lvl in enumerate(policy.levels, start=1)]

    async def __call__(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        result = ctx.flush.memo.get("escalation")
        if ctx.level == 0 or not isinstance(result, Escalation) or ctx.route.escalation is None:
            return alerts
        if ctx.level <= result.level:
            if ctx.reason == FIRST:
                after = self.policies[ctx.route.escalation].levels[ctx.level - 1].after
                ctx.reason = Reason.escalation(ctx.level, format_duration(after))
            return alerts
        # Not reached (or acknowledged since): only a receiver that was told about firing alerts hears more,
        # and only that they resolved.
        return alerts if ctx.reason == RESOLVED else []
