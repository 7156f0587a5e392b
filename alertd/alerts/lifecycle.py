"""One alert's state machine: (previous record, is the condition true now) in, (next record, transition) out.

inactive -> pending (condition true, ``for`` not yet elapsed) -> firing -> resolved, with ``keep_firing_for``
holding a firing alert up after its condition stops being true. Pure: no clock, no store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from alertd.models import AlertState
from alertd.state.base import AlertRecord, Transition


@dataclass(frozen=True, slots=True)
class Observation:
    """What one evaluation saw of one (rule, label set)."""

    fingerprint: str
    rule: str
    labels: Mapping[str, str]
    active: bool
    value: float | None = None
    annotations: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Timing:
    for_: float = 0.0
    keep_firing_for: float = 0.0
    resolved_retention: float = 900.0
    # A pending alert whose last evaluation is older than this (alertd was down) starts its `for` again:
    # nobody saw the condition hold in between.
    outage_tolerance: float = 300.0


def advance(
    prev: AlertRecord | None, obs: Observation, now: float, timing: Timing
) -> tuple[AlertRecord | None, Transition | None]:
    """The next record (None: forget the alert) and the transition, if the state changed."""
    annotations = obs.annotations if obs.annotations is not None else (prev.annotations if prev else {})
    value = obs.value if obs.active or prev is None else prev.value

    def moved(to: AlertState, record: AlertRecord | None) -> tuple[AlertRecord | None, Transition]:
        src = prev.state if prev is not None else AlertState.INACTIVE
        return record, Transition(
            fingerprint=obs.fingerprint,
            rule=obs.rule,
            labels=obs.labels,
            at=now,
            from_state=src,
            to_state=to,
            value=value,
            annotations=annotations,
        )

    if obs.active:
        if prev is None or prev.state is AlertState.RESOLVED:
            state = AlertState.FIRING if timing.for_ <= 0 else AlertState.PENDING
            record = AlertRecord(
                fingerprint=obs.fingerprint,
                rule=obs.rule,
                labels=obs.labels,
                state=state,
                value=value,
                annotations=annotations,
                active_at=now,
                fired_at=now if state is AlertState.FIRING else None,
                resolved_at=None,
                last_eval_at=now,
                last_true_at=now,
            )
            return moved(state, record)
        updated = replace(prev, value=value, annotations=annotations, last_eval_at=now, last_true_at=now)
        if prev.state is AlertState.PENDING and now - prev.last_eval_at > timing.outage_tolerance:
            return replace(updated, active_at=now), None
        if prev.state is AlertState.PENDING and now - prev.active_at >= timing.for_:
            return moved(AlertState.FIRING, replace(updated, state=AlertState.FIRING, fired_at=now))
        return updated, None

    # The condition is false, or its series is gone.
    if prev is None:
        return None, None
    if prev.state is AlertState.PENDING:
        return moved(AlertState.INACTIVE, None)
    if prev.state is AlertState.FIRING:
        last_true = prev.last_true_at if prev.last_true_at is not None else prev.last_eval_at
        if timing.keep_firing_for > 0 and now - last_true < timing.keep_firing_for:
            return replace(prev, last_eval_at=now), None
        return moved(AlertState.RESOLVED, replace(prev, state=AlertState.RESOLVED, resolved_at=now, last_eval_at=now))
    # Resolved: kept a while so the notification pipeline can send the resolve, then forgotten.
    resolved_at = prev.resolved_at if prev.resolved_at is not None else prev.last_eval_at
    if now - resolved_at >= timing.resolved_retention:
        return None, None
    return prev, None
