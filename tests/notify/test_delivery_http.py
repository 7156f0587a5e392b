"""The pipeline with a real notifier over HTTP: an endpoint that answers 500, 429 and then 200 gets each
notification exactly once, and a PagerDuty incident opened by a trigger is closed by a resolve of the same key."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from alertd.clock import SystemClock
from alertd.config.model import Config
from alertd.models import Alert, AlertState, fingerprint
from alertd.notifiers.base import Notifier, NotifierContext
from alertd.notify.pipeline import build_pipeline
from alertd.plugins import make_plugin_manager
from alertd.state.sqlite import SQLiteStateStore
from tests.peers import Reply
from tests.peers.pagerduty import PagerDutyPeer
from tests.peers.webhook import WebhookPeer

TYPES = {c.type_name: c for found in make_plugin_manager().hook.register_notifiers() for c in found}


def alert(state: AlertState, starts: float, ends: float | None = None) -> Alert:
    labels = {"alertname": "PaymentTaskFailed", "task_name": "tasks.payment.refund", "severity": "critical"}
    return Alert(fingerprint("tasks/PaymentTaskFailed", labels), "tasks/PaymentTaskFailed", labels,
                 {"summary": "Payment task tasks.payment.refund failed"}, state, 1.0, starts, ends)


async def run_until(pipeline: object, done: object, timeout: float = 10.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(pipeline.serve(stop, max_sleep=0.02))  # type: ignore[attr-defined]
    try:
        async with asyncio.timeout(timeout):
            while not done():  # type: ignore[operator]
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task


def config(receiver: dict[str, object]) -> Config:
    return Config.model_validate({
        "receivers": {"r": receiver},
        "route": {"receiver": "r", "group_by": ["alertname"], "group_wait": "0s", "group_interval": "1s"},
        "notify": {"retry_base": "10ms", "retry_max": "50ms"},
    })


def notifier(kind: str, settings: dict[str, object], http: httpx.AsyncClient) -> Notifier:
    cls = TYPES[kind]
    return cls("r", cls.Settings.model_validate(settings), NotifierContext(http=http))


async def test_500_then_429_then_200_delivers_exactly_once(tmp_path: Path) -> None:
    with WebhookPeer() as peer:
        peer.script(500, Reply(429, {"error": "slow down"}, {"Retry-After": "0"}))
        async with httpx.AsyncClient() as http:
            store = SQLiteStateStore(tmp_path / "state.db")
            clock = SystemClock()
            pipeline = build_pipeline(config({"type": "webhook", "url": peer.hook_url}),
                                      {"r": notifier("webhook", {"url": peer.hook_url}, http)}, store, clock)
            pipeline.put([alert(AlertState.FIRING, clock.now())], complete=True)

            def delivered() -> int:
                return sum(1 for _, reply in peer.exchanges if reply is not None and reply.status == 200)

            await run_until(pipeline, lambda: delivered() >= 1)
            await asyncio.sleep(0.3)  # room for a duplicate to show up, if the pipeline sent one
            await pipeline.close()
            store.close()
        statuses = [reply.status for _, reply in peer.exchanges if reply is not None]
        assert statuses == [500, 429, 200]
        assert peer.payloads[-1]["status"] == "firing"
        assert peer.payloads[-1]["alerts"][0]["labels"]["task_name"] == "tasks.payment.refund"


async def test_pagerduty_trigger_then_resolve_with_the_same_dedup_key(tmp_path: Path) -> None:
    key = "0123456789abcdef0123456789abcdef"
    with PagerDutyPeer() as peer:
        async with httpx.AsyncClient() as http:
            store = SQLiteStateStore(tmp_path / "state.db")
            clock = SystemClock()
            settings = {"routing_key": key, "url": peer.enqueue_url}
            pipeline = build_pipeline(config({"type": "pagerduty", **settings}),
                                      {"r": notifier("pagerduty", settings, http)}, store, clock)
            started = clock.now()
            pipeline.put([alert(AlertState.FIRING, started)], complete=True)
            await run_until(pipeline, lambda: len(peer.events) >= 1)
            pipeline.put([alert(AlertState.RESOLVED, started, clock.now())], complete=True)
            await run_until(pipeline, lambda: len(peer.events) >= 2)
            await pipeline.close()
            store.close()
        actions = [e["event_action"] for e in peer.events]
        assert actions == ["trigger", "resolve"]
        assert peer.events[0]["dedup_key"] == peer.events[1]["dedup_key"]
        assert list(peer.incidents.values()) == ["resolved"]
