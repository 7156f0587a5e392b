"""alertd.testing: the doubles that plugin authors and alertd's own tests use."""

from __future__ import annotations

import pytest

from alertd import clock as clock_module
from alertd.errors import PermanentError, RetryableError
from alertd.models import AlertState, fingerprint
from alertd.notifiers.reasons import ReasonKind
from alertd.state import memory
from alertd.testing import (
    MemoryStateStore,
    RecordingNotifier,
    VirtualClock,
    make_alert,
    make_notification,
    make_notifier_context,
)


def test_reexports_are_the_real_things() -> None:
    assert VirtualClock is clock_module.VirtualClock
    assert MemoryStateStore is memory.MemoryStateStore


async def test_recording_notifier_records_and_fails_on_request() -> None:
    clock = VirtualClock(100.0)
    notifier = RecordingNotifier("r", context=make_notifier_context(clock)).fail(2, PermanentError("400"))
    n = make_notification()
    for _ in range(2):
        with pytest.raises(PermanentError, match="400"):
            await notifier.send(n)
    await notifier.send(n)
    assert (len(notifier.attempts), notifier.sent, notifier.sent_at) == (3, [n], [100.0])
    assert notifier.alert_names == [["TestAlert"]]
    assert notifier.reasons == ["first notification"]


async def test_recording_notifier_fails_forever_until_it_recovers() -> None:
    notifier = RecordingNotifier().fail_forever()
    for _ in range(5):
        with pytest.raises(RetryableError):
            await notifier.send(make_notification())
    notifier.recover()
    await notifier.send(make_notification())
    assert len(notifier.sent) == 1
    await notifier.close()
    assert notifier.closed


def test_make_alert_defaults_and_overrides() -> None:
    a = make_alert()
    assert (a.name, a.severity, a.state, a.resolved) == ("TestAlert", "warning", AlertState.FIRING, False)
    assert a.fingerprint == fingerprint("TestAlert", a.labels)
    b = make_alert(name="QueueBacklog", labels={"queue": "critical", "severity": "critical"}, starts_at=5.0)
    assert dict(b.labels) == {"alertname": "QueueBacklog", "severity": "critical", "queue": "critical"}
    assert b.fingerprint != a.fingerprint and b.starts_at == 5.0
    r = make_alert(state=AlertState.RESOLVED, starts_at=3.0)
    assert r.resolved and r.ends_at == 3.0


def test_make_notification() -> None:
    alerts = [make_alert(name="A"), make_alert(name="A", state=AlertState.RESOLVED, labels={"x": "1"})]
    n = make_notification(alerts, receiver="slack", reason="new alerts")
    assert (n.receiver, n.reason, n.status, n.group_labels) == ("slack", "new alerts", "firing", {"alertname": "A"})
    assert len(n.firing) == 1 and len(n.resolved) == 1
    assert make_notification().id != make_notification().id


def test_make_notification_gives_a_typed_reason_from_its_text() -> None:
    assert make_notification().reason.kind is ReasonKind.FIRST
    acked = make_notification(reason="acknowledged by ann: on it")
    assert acked.reason.kind is ReasonKind.ACKNOWLEDGED and acked.reason == "acknowledged by ann: on it"
