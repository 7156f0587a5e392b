"""Delivery lanes against loopback services: a receiver that hangs or answers 429 forever holds back only its
own lane, a webhook's budget keeps Slack from answering 429, a group's resolve waits for its trigger, and what a
stop leaves in the outbox goes out once after the restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from alertd.clock import SystemClock
from alertd.config.model import Config
from alertd.models import Alert, AlertState, fingerprint
from alertd.notifiers.base import Notifier, NotifierContext
from alertd.notify.lanes import MAX_IN_FLIGHT
from alertd.notify.pipeline import NotificationPipeline, build_pipeline
from alertd.plugins import make_plugin_manager
from alertd.state.base import OUTBOX_DELIVERED, OUTBOX_PENDING
from alertd.state.sqlite import SQLiteStateStore
from tests.peers import Reply
from tests.peers.pagerduty import PagerDutyPeer
from tests.peers.slack import SlackPeer

TYPES = {c.type_name: c for found in make_plugin_manager().hook.register_notifiers() for c in found}
ROUTING_KEY = "0123456789abcdef0123456789abcdef"
HANG = 3600.0  # a peer's delay that outlasts every test: the receiver's timeout is what would end it


def alert(name: str, state: AlertState = AlertState.FIRING, *, starts: float, ends: float | None = None,
          **labels: str) -> Alert:
    labels = {"alertname": name, "severity": "critical", **labels}
    return Alert(fingerprint(f"rules/{name}", labels), f"rules/{name}", labels, {"summary": f"{name} {labels}"},
                 state, 1.0, starts, ends)


def pipeline(receivers: Mapping[str, dict[str, Any]], route: dict[str, Any], http: httpx.AsyncClient,
             store: SQLiteStateStore) -> NotificationPipeline:
    config = Config.model_validate({
        "receivers": receivers,
        "route": {"group_by": ["alertname"], "group_wait": "0s", "group_interval": "1m", **route},
        "notify": {"retry_base": "50ms", "retry_max": "200ms"},
    })
    notifiers: dict[str, Notifier] = {}
    for name, rc in config.receivers.items():
        cls = TYPES[rc.type]
        notifiers[name] = cls(name, cls.Settings.model_validate(rc.notifier_settings()), NotifierContext(http=http))
    return build_pipeline(config, notifiers, store, SystemClock())


@asynccontextmanager
async def serving(p: NotificationPipeline) -> AsyncIterator[asyncio.Event]:
    """The pipeline served as the daemon serves it; leaving cancels it, as a spent shutdown grace does."""
    stop = asyncio.Event()
    task = asyncio.create_task(p.serve(stop, max_sleep=0.05))
    try:
        yield stop
    finally:
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await p.close()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for ``condition`` (the state store's view of a lane), checking every 10 ms."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def slack(peer: SlackPeer, **extra: Any) -> dict[str, Any]:
    return {"type": "slack", "webhook_url": peer.webhook_url, **extra}


def pagerduty(peer: PagerDutyPeer) -> dict[str, Any]:
    return {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": peer.enqueue_url}


async def test_a_hanging_receiver_and_one_that_answers_429_forever_do_not_delay_pages(tmp_path: Path) -> None:
    with SlackPeer() as hanging, SlackPeer() as limited, PagerDutyPeer() as pager:
        hanging.delay = HANG
        limited.always = Reply(429, "rate_limited", {"Retry-After": "1"})
        receivers = {"hanging": slack(hanging, timeout="1h"), "limited": slack(limited), "pager": pagerduty(pager)}
        route = {"receiver": "hanging", "routes": [
            {"matchers": ['team="payments"'], "receiver": "pager"},
            {"matchers": ['severity="warning"'], "receiver": "hanging", "continue": True},
            {"matchers": ['alertname="QueueBacklog0"'], "receiver": "limited"},
        ]}
        store = SQLiteStateStore(tmp_path / "state.db")
        async with httpx.AsyncClient() as http:
            p = pipeline(receivers, route, http, store)
            now = SystemClock().now()
            async with serving(p):
                p.put([alert(f"QueueBacklog{i}", starts=now, severity="warning") for i in range(3)])
                await hanging.wait_for_async(1)
                await limited.wait_for_async(3)  # refused, and refused again after each Retry-After
                p.put([alert("PaymentTaskFailed", starts=now, team="payments", task=str(i)) for i in range(5)])
                await pager.wait_for_async(1)
                # The page is there while the hanging lane's sends are still waiting for an answer and the
                # limited lane's are still refused.
                stuck = {r.receiver: r for r in store.outbox_pending() if r.receiver != "pager"}
                assert set(stuck) == {"hanging", "limited"}
                assert stuck["hanging"].attempts == 0, "the hanging receiver's first send has not come back"
                assert len(hanging.requests) == 3, "one send per group, each still in flight"
                assert all(reply.status == 429 for _, reply in limited.exchanges if reply is not None)
        store.close()
        assert [e["event_action"] for e in pager.events] == ["trigger"]
        assert limited.violations == 0, "after a 429 no send to the destination came before Retry-After"


async def test_twenty_groups_to_one_slack_webhook_stay_within_its_budget(tmp_path: Path) -> None:
    with SlackPeer() as peer:
        # Slack: one message per second per webhook, short bursts allowed (the peer allows 3 at once).
        peer.throttle(rate=1.0, burst=3, retry_after=1.0)
        store = SQLiteStateStore(tmp_path / "state.db")
        async with httpx.AsyncClient() as http:
            p = pipeline({"ops": slack(peer)}, {"receiver": "ops"}, http, store)
            now = SystemClock().now()
            async with serving(p):
                p.put([alert(f"QueueBacklog{i}", starts=now) for i in range(20)])
                await peer.wait_for_async(20, timeout=40)
                await until(lambda: store.outbox_pending() == [])
        store.close()
        statuses = [reply.status for _, reply in peer.exchanges if reply is not None]
        assert statuses == [200] * 20, "no 429: the plugin's default budget stays under Slack's"
        assert peer.violations == 0
        assert len(peer.messages) == 20
        times = [r.time for r in peer.requests]
        assert times[-1] - times[0] >= 17.0, "the budget spaced them out: 2 at once, then one a second"


async def test_a_resolve_waits_for_its_trigger_at_a_slow_receiver(tmp_path: Path) -> None:
    with PagerDutyPeer() as pager:
        pager.delay = 0.3
        store = SQLiteStateStore(tmp_path / "state.db")
        async with httpx.AsyncClient() as http:
            p = pipeline({"pager": pagerduty(pager)}, {"receiver": "pager", "group_interval": "100ms"}, http, store)
            now = SystemClock().now()
            async with serving(p):
                p.put([alert("PaymentTaskFailed", starts=now)])
                [trigger] = await pager.wait_for_async(1)  # received; its answer takes 0.3 s
                p.put([alert("PaymentTaskFailed", AlertState.RESOLVED, starts=now, ends=SystemClock().now())])
                trigger_then_resolve = await pager.wait_for_async(2)
        store.close()
        assert [r.json["event_action"] for r in trigger_then_resolve] == ["trigger", "resolve"]
        assert trigger_then_resolve[1].time >= trigger.time + 0.3, "the resolve went out after the trigger's answer"
        assert list(pager.incidents.values()) == ["resolved"]


async def test_what_a_stop_leaves_in_the_outbox_goes_out_once_after_the_restart(tmp_path: Path) -> None:
    with SlackPeer() as ops, PagerDutyPeer() as pager:
        ops.delay = HANG
        receivers = {"ops": slack(ops), "pager": pagerduty(pager)}
        route = {"receiver": "ops", "routes": [{"matchers": ['team="payments"'], "receiver": "pager"}]}
        store = SQLiteStateStore(tmp_path / "state.db")
        now = SystemClock().now()
        firing = [alert("QueueBacklog", starts=now), alert("PaymentTaskFailed", starts=now, team="payments")]
        async with httpx.AsyncClient() as http:
            first = pipeline(receivers, route, http, store)
            stop = asyncio.Event()
            task = asyncio.create_task(first.serve(stop, max_sleep=0.05))
            first.put(firing)
            await ops.wait_for_async(1)
            await pager.wait_for_async(1)
            stop.set()  # the lanes drain: the pager's lane is done, the ops lane's send hangs ...
            await until(lambda: [r.receiver for r in store.outbox_pending()] == ["ops"])
            task.cancel()  # ... until the shutdown grace runs out
            await asyncio.gather(task, return_exceptions=True)
            await first.close()
            [left] = store.outbox_pending()
            assert left.receiver == "ops" and left.status == OUTBOX_PENDING

            ops.delay = 0.0
            second = pipeline(receivers, route, http, store)
            assert second.resume() == 1
            second.put(firing)  # the rule engine reports the same alerts after its restart
            async with serving(second) as stop:
                await ops.wait_for_async(2)
                await until(lambda: store.outbox_pending() == [])
                stop.set()
        row = store.outbox_get(left.id)
        store.close()
        assert row is not None and row.status == OUTBOX_DELIVERED and row.attempts == 1
        assert len(ops.requests) == 2, "the cut-off send, then the one after the restart; nothing more"
        assert len(pager.requests) == 1, "the page delivered before the stop is not sent again"



async def test_a_full_lane_waits_for_a_send_to_end_instead_of_polling(tmp_path: Path) -> None:
    with SlackPeer() as hanging:
        hanging.delay = HANG
        store = SQLiteStateStore(tmp_path / "state.db")
        async with httpx.AsyncClient() as http:
            p = pipeline({"ops": slack(hanging, rate_limit=100, rate_burst=20, timeout="1h")}, {"receiver": "ops"},
                         http, store)
            now = SystemClock().now()
            async with serving(p):
                p.put([alert(f"QueueBacklog{i}", starts=now) for i in range(MAX_IN_FLIGHT + 2)])
                await hanging.wait_for_async(MAX_IN_FLIGHT)
                lane = p.retry.lanes["ops"]
                assert len(lane.busy) == MAX_IN_FLIGHT and len(lane) == MAX_IN_FLIGHT + 2
                assert lane.next_due() is None, "nothing can start until a send ends: no due time to poll for"
        store.close()
        assert len(hanging.requests) == MAX_IN_FLIGHT
