from __future__ import annotations

import pytest

from alertd.alerts.lifecycle import Observation, Timing, advance
from alertd.models import AlertState
from alertd.state.base import AlertRecord

INACTIVE, P, F, R = AlertState.INACTIVE, AlertState.PENDING, AlertState.FIRING, AlertState.RESOLVED


def record(state: AlertState, *, active_at: float = 0.0, last_true_at: float | None = 0.0,
           resolved_at: float | None = None) -> AlertRecord:
    return AlertRecord(
        fingerprint="fp", rule="g/R", labels={"q": "a"}, state=state, value=1.0, annotations={},
        active_at=active_at, fired_at=active_at if state in (F, R) else None, resolved_at=resolved_at,
        last_eval_at=0.0, last_true_at=last_true_at,
    )


def obs(active: bool) -> Observation:
    return Observation("fp", "g/R", {"q": "a"}, active, 2.0 if active else None, {"summary": "s"} if active else None)


# (previous state or None, condition true now, now, for, keep_firing_for, expected state or None, transition?)
CASES = [
    ("new-true-no-for-fires", None, True, 10, 0, 0, F, True),
    ("new-true-with-for-pends", None, True, 10, 60, 0, P, True),
    ("new-false-stays-absent", None, False, 10, 60, 0, None, False),
    ("pending-before-for-stays", P, True, 59, 60, 0, P, False),
    ("pending-at-for-fires", P, True, 60, 60, 0, F, True),
    ("pending-after-an-outage-starts-for-again", P, True, 400, 60, 0, P, False),
    ("pending-false-goes-inactive", P, False, 30, 60, 0, None, True),
    ("firing-true-stays", F, True, 100, 60, 0, F, False),
    ("firing-false-resolves", F, False, 100, 0, 0, R, True),
    ("firing-false-within-keep-firing-stays", F, False, 100, 0, 120, F, False),
    ("firing-false-after-keep-firing-resolves", F, False, 130, 0, 120, R, True),
    ("resolved-true-again-pends", R, True, 200, 60, 0, P, True),
    ("resolved-true-again-fires-without-for", R, True, 200, 0, 0, F, True),
    ("resolved-false-kept-for-retention", R, False, 500, 0, 0, R, False),
    ("resolved-false-forgotten-after-retention", R, False, 1000, 0, 0, None, False),
]


@pytest.mark.parametrize(
    ("prev", "active", "now", "for_", "keep", "expected", "moved"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_transitions(prev: AlertState | None, active: bool, now: float, for_: float, keep: float,
                     expected: AlertState | None, moved: bool) -> None:
    previous = None if prev is None else record(prev, resolved_at=100.0 if prev is R else None)
    nxt, transition = advance(previous, obs(active), now, Timing(for_, keep, resolved_retention=900))
    assert (nxt.state if nxt else None) == expected
    assert (transition is not None) == moved
    if transition is not None:
        assert transition.from_state == (prev or INACTIVE)
        assert transition.to_state == (expected or INACTIVE)
        assert transition.at == now


def test_an_outage_restarts_for_from_now() -> None:
    nxt, transition = advance(record(P, active_at=0.0), obs(True), 1000.0, Timing(60, outage_tolerance=300))
    assert transition is None and nxt is not None
    assert nxt.state is P and nxt.active_at == 1000.0


def test_firing_keeps_its_start_and_records_the_value_and_annotations() -> None:
    nxt, _ = advance(record(P, active_at=5.0), obs(True), 65.0, Timing(60))
    assert nxt is not None
    assert nxt.state is F and nxt.active_at == 5.0 and nxt.fired_at == 65.0
    assert nxt.value == 2.0 and nxt.annotations == {"summary": "s"}


def test_resolve_keeps_the_last_value_and_annotations() -> None:
    prev = record(F)
    nxt, transition = advance(prev, obs(False), 30.0, Timing())
    assert nxt is not None and transition is not None
    assert nxt.value == prev.value and transition.value == prev.value
    assert nxt.resolved_at == 30.0


def test_keep_firing_for_counts_from_the_last_true_evaluation() -> None:
    prev = record(F, last_true_at=100.0)
    held, _ = advance(prev, obs(False), 219.0, Timing(keep_firing_for=120))
    assert held is not None and held.state is F
    gone, _ = advance(prev, obs(False), 220.0, Timing(keep_firing_for=120))
    assert gone is not None and gone.state is R
