"""Aggregation groups on a virtual clock: group_wait, group_interval, repeat_interval, and one page per storm."""

from __future__ import annotations

from alertd.clock import VirtualClock
from alertd.dispatch.config import RootRouteConfig
from alertd.dispatch.groups import AggregationGroup, Dispatcher
from alertd.dispatch.route import build_route_tree
from alertd.models import Alert, AlertState
from alertd.testing import make_alert
from tests.notify.helpers import START, harness

ROUTES = {
    "receiver": "ops",
    "group_by": ["alertname"],
    "group_wait": "30s",
    "group_interval": "5m",
    "repeat_interval": "4h",
    "routes": [{"matchers": ['team="payments"'], "receiver": "payments", "group_wait": "0s", "group_interval": "1m"}],
}


class Flushes:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str, list[str]]] = []
        self.clock = VirtualClock(START)

    async def __call__(self, group: AggregationGroup, alerts: list[Alert]) -> float | None:
        self.calls.append((self.clock.now() - START, group.key, sorted(a.labels.get("queue", "") for a in alerts)))
        return None


def dispatcher() -> tuple[Dispatcher, Flushes]:
    flushes = Flushes()
    return Dispatcher(build_route_tree(RootRouteConfig.model_validate(ROUTES)), flushes.clock, flushes), flushes


async def advance(d: Dispatcher, f: Flushes, seconds: float) -> None:
    end = START + seconds
    while (due := d.next_due()) is not None and due <= end:
        f.clock.set(max(due, f.clock.now()))
        await d.flush_due()
    f.clock.set(end)


async def test_group_wait_then_group_interval() -> None:
    d, f = dispatcher()
    d.put([make_alert(name="Backlog", labels={"queue": "a"}, starts_at=START)])
    await advance(d, f, 29)
    assert f.calls == []
    await advance(d, f, 30)
    assert [c[0] for c in f.calls] == [30]
    d.put([make_alert(name="Backlog", labels={"queue": "b"}, starts_at=START + 40)])
    await advance(d, f, 329)
    assert len(f.calls) == 1, "a new alert waits for the next group_interval"
    await advance(d, f, 330)
    assert f.calls[-1] == (330, '{}:{alertname="Backlog"}', ["a", "b"])
    await advance(d, f, 930)
    assert [c[0] for c in f.calls] == [30, 330, 630, 930]


async def test_group_wait_zero_flushes_at_once() -> None:
    d, f = dispatcher()
    d.put([make_alert(name="PaymentFailed", labels={"team": "payments"}, starts_at=START)])
    assert d.next_due() == START
    await d.flush_due()
    assert [c[0] for c in f.calls] == [0]


async def test_an_alert_older_than_group_wait_does_not_wait() -> None:
    d, _ = dispatcher()
    d.put([make_alert(name="Backlog", starts_at=START - 3600)])
    assert d.next_due() == START


async def test_a_group_is_forgotten_once_its_resolved_alerts_are_notified() -> None:
    d, f = dispatcher()
    alert = make_alert(name="Backlog", starts_at=START)
    d.put([alert])
    await advance(d, f, 30)
    resolved = make_alert(name="Backlog", starts_at=START, state=AlertState.RESOLVED, ends_at=START + 60)
    d.put([resolved])
    await advance(d, f, 330)
    assert d.groups == {}
    d.put([resolved])  # the rule engine keeps reporting it for resolved_retention
    assert d.groups == {}, "the same resolved alert does not bring its group back"


async def test_complete_put_resolves_missing_alerts() -> None:
    d, f = dispatcher()
    a, b = make_alert(name="Backlog", labels={"queue": "a"}), make_alert(name="Backlog", labels={"queue": "b"})
    d.put([a, b])
    f.clock.advance(10)
    d.put([a], complete=True)
    [group] = d.groups.values()
    assert group.alerts[b.fingerprint].state is AlertState.RESOLVED
    assert group.alerts[b.fingerprint].ends_at == START + 10


async def test_a_storm_of_thousands_is_one_notification_then_repeats_only_at_repeat_interval() -> None:
    h = harness({"route": ROUTES})
    storm = [make_alert(name="TaskFailed", labels={"task_id": str(i)}, starts_at=START) for i in range(5000)]
    h.fire_many(storm)
    await h.at(30)
    assert len(h["ops"].sent) == 1
    n = h["ops"].sent[0]
    assert len(n.alerts) + n.truncated_alerts == 5000
    assert n.reason == "first notification"
    h.pipeline.put(storm)  # every evaluation reports them again
    await h.at(4 * 3600)
    assert len(h["ops"].sent) == 1
    await h.at(4 * 3600 + 30)
    assert h["ops"].reasons == ["first notification", "repeat interval elapsed"]


async def test_new_alerts_notify_at_the_next_group_interval() -> None:
    h = harness({"route": ROUTES})
    h.fire("Backlog", queue="a")
    await h.at(30)
    await h.at(100)
    h.fire("Backlog", queue="b")
    await h.at(329)
    assert h["ops"].reasons == ["first notification"]
    await h.at(330)
    assert h["ops"].reasons == ["first notification", "new alerts"]
    assert h["ops"].alert_names == [["Backlog"], ["Backlog", "Backlog"]]


async def test_the_payment_route_pages_at_once() -> None:
    h = harness({"route": ROUTES})
    h.fire("PaymentTaskFailed", team="payments")
    await h.tick()
    assert [n.created_at for n in h["payments"].sent] == [START]
    assert h["ops"].sent == []
