"""Escalation: unacknowledged time per alert, levels reached, and timelines with acknowledgements."""

from __future__ import annotations

from typing import Any

import pytest

from alertd.dispatch.config import EscalationPolicyConfig
from alertd.models import Alert
from alertd.notify.dedup import FIRST, RESOLVED
from alertd.notify.escalate import AckError, Escalation, escalation, unacknowledged_for
from alertd.state.base import Acknowledgement
from alertd.testing import make_alert
from tests.notify.helpers import START, harness

ALERT = make_alert(starts_at=1000.0)


@pytest.mark.parametrize(
    ("ack", "now", "expected"),
    [
        (None, 1600.0, 600.0),
        (Acknowledgement(ALERT.fingerprint, "a", "", 1300.0), 1600.0, 300.0),
        (Acknowledgement(ALERT.fingerprint, "a", "", 1300.0, expires_at=1400.0), 1600.0, 500.0),
        (Acknowledgement(ALERT.fingerprint, "a", "", 900.0), 1600.0, 600.0),
        (Acknowledgement(ALERT.fingerprint, "a", "", 1300.0, expires_at=2000.0), 1600.0, 300.0),
    ],
    ids=["unacknowledged", "acknowledged-stops-the-clock", "expired-ack-resumes", "ack-before-it-fired-again",
         "ack-still-running"],
)
def test_unacknowledged_for(ack: Acknowledgement | None, now: float, expected: float) -> None:
    assert unacknowledged_for(ALERT, ack, now) == expected


POLICY = EscalationPolicyConfig.model_validate({"levels": [{"receiver": "lead", "after": "15m"},
                                                           {"receiver": "cto", "after": "1h"}]})


@pytest.mark.parametrize(
    ("alerts", "acks", "now", "expected"),
    [
        ([ALERT], {}, 1000.0 + 60, Escalation(0, 1000.0 + 900)),
        ([ALERT], {}, 1000.0 + 900, Escalation(1, 1000.0 + 3600)),
        ([ALERT], {}, 1000.0 + 4000, Escalation(2, None)),
        ([ALERT], {ALERT.fingerprint: Acknowledgement(ALERT.fingerprint, "a", "", 1100.0)}, 1000.0 + 4000,
         Escalation(0, None)),
        ([ALERT], {ALERT.fingerprint: Acknowledgement(ALERT.fingerprint, "a", "", 1100.0, 1200.0)}, 1150.0,
         Escalation(0, 1200.0 + 800)),
        ([make_alert(starts_at=1000.0, state="resolved", ends_at=1100.0)], {}, 5000.0, Escalation(0, None)),
        ([ALERT, make_alert(name="B", starts_at=1800.0)], {ALERT.fingerprint: Acknowledgement(ALERT.fingerprint, "a", "", 1100.0)},
         2000.0, Escalation(0, 1800.0 + 900)),
    ],
    ids=["before-level-1", "level-1", "level-2-last", "acknowledged", "acknowledged-until-expiry", "resolved",
         "another-alert-escalates-on-its-own"],
)
def test_escalation(alerts: list[Alert], acks: dict[str, Acknowledgement], now: float, expected: Escalation) -> None:
    assert escalation(alerts, POLICY, acks, now) == expected


SETTINGS: dict[str, Any] = {
    "route": {
        "receiver": "ops",
        "group_by": ["alertname"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": [{"matchers": ['team="payments"'], "receiver": "oncall", "group_wait": "0s",
                    "escalation": "payments"}],
    },
    "escalation_policies": {"payments": {"levels": [{"receiver": "lead", "after": "15m"},
                                                    {"receiver": "cto", "after": "1h"}]}},
}


async def test_unacknowledged_alert_escalates_level_by_level_on_time() -> None:
    h = harness(SETTINGS)
    a = h.fire("PaymentTaskFailed", team="payments")
    await h.tick()
    assert h["oncall"].reasons == [FIRST]
    await h.at(899)
    assert h["lead"].sent == []
    await h.at(900)
    assert h["lead"].reasons == ["escalated to level 1: unacknowledged for 15m"]
    assert h["lead"].sent[0].created_at == START + 900, "a level is due on time, not at the next group_interval"
    await h.at(3600)
    assert h["cto"].reasons == ["escalated to level 2: unacknowledged for 1h"]
    [state] = h.store.escalations()
    assert (state.level, state.next_at) == (2, None)
    h.resolve(a)
    await h.at(3900)
    assert h["oncall"].reasons[-1] == h["lead"].reasons[-1] == h["cto"].reasons[-1] == RESOLVED
    assert h.store.escalations() == []


async def test_an_ack_stops_escalation_until_the_alert_fires_again() -> None:
    h = harness(SETTINGS)
    a = h.fire("PaymentTaskFailed", team="payments")
    await h.at(600)
    h.pipeline.acks.ack(a.fingerprint, by="alice", comment="on it")
    await h.at(2 * 3600)
    assert h["lead"].sent == [] and h["cto"].sent == []
    h.resolve(a)
    await h.at(2 * 3600 + 300)
    assert h["lead"].sent == [], "a receiver that was never told hears no resolve"
    h.clock.advance(60)
    again = h.fire("PaymentTaskFailed", team="payments")
    await h.at(2 * 3600 + 360 + 900)
    assert again.starts_at > h.pipeline.acks.get(a.fingerprint).at  # type: ignore[union-attr]
    assert h["lead"].reasons == ["escalated to level 1: unacknowledged for 15m"]


async def test_an_expiring_ack_lets_escalation_resume() -> None:
    h = harness(SETTINGS)
    a = h.fire("PaymentTaskFailed", team="payments")
    await h.at(600)
    h.pipeline.acks.ack(a.fingerprint, by="alice", expires_at=START + 1800)
    await h.at(1800 + 299)
    assert h["lead"].sent == []
    await h.at(1800 + 300)  # 600s unacknowledged before the ack, 300s after it expired
    assert len(h["lead"].sent) == 1


async def test_acks_are_stored() -> None:
    h = harness(SETTINGS)
    a = h.fire("PaymentTaskFailed", team="payments")
    h.pipeline.acks.ack(a.fingerprint, by="alice", comment="looking")
    [stored] = h.store.acks()
    assert (stored.fingerprint, stored.by, stored.comment, stored.at) == (a.fingerprint, "alice", "looking", START)
    with pytest.raises(AckError):
        h.pipeline.acks.ack(a.fingerprint, by=" ")
    assert h.pipeline.acks.unack(a.fingerprint) is True
    assert h.store.acks() == []
