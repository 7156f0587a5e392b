"""Timelines through the whole pipeline on a virtual clock: resolve, silences, inhibition, time windows."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from alertd.clock import SystemClock
from alertd.config.model import Config
from alertd.notify.dedup import FIRST, INHIBITION_ENDED, NEW_ALERTS, REPEAT, RESOLVED, SILENCE_ENDED
from alertd.notify.pipeline import build_pipeline
from alertd.state.base import SILENCE_ACTIVE, SILENCE_EXPIRED, SILENCE_PENDING
from alertd.testing import MemoryStateStore, RecordingNotifier, make_alert, make_notifier_context
from tests.notify.helpers import START, harness

ROUTE: dict[str, Any] = {
    "receiver": "ops",
    "group_by": ["alertname"],
    "group_wait": "30s",
    "group_interval": "5m",
    "repeat_interval": "1h",
}


async def test_resolve_is_notified_when_send_resolved() -> None:
    h = harness({"route": ROUTE})
    a = h.fire("Backlog", queue="a")
    b = h.fire("Backlog", queue="b")
    await h.at(30)
    h.resolve(a)
    await h.at(330)
    n = h["ops"].sent[-1]
    assert n.reason == RESOLVED and n.status == "firing"
    assert [x.fingerprint for x in n.resolved] == [a.fingerprint]
    h.resolve(b)
    await h.at(630)
    assert h["ops"].reasons == [FIRST, RESOLVED, RESOLVED]
    assert h["ops"].sent[-1].status == "resolved"
    await h.at(3 * 3600)
    assert len(h["ops"].sent) == 3, "nothing after the group resolved"


async def test_no_resolve_without_send_resolved_but_a_refire_is_new() -> None:
    h = harness({"route": {**ROUTE, "send_resolved": False}})
    a = h.fire("Backlog")
    await h.at(30)
    h.resolve(a)
    await h.at(330)
    assert h["ops"].reasons == [FIRST]
    h.clock.advance(10)
    h.fire("Backlog")
    await h.at(700)
    assert h["ops"].reasons == [FIRST, NEW_ALERTS]


async def test_repeat_interval() -> None:
    h = harness({"route": ROUTE})
    h.fire("Backlog")
    await h.at(3600 + 29)
    assert h["ops"].reasons == [FIRST]
    await h.at(3600 + 30)
    assert h["ops"].reasons == [FIRST, REPEAT]


async def test_a_silence_mutes_then_its_end_notifies_again() -> None:
    h = harness({"route": ROUTE})
    a = h.fire("Backlog", queue="critical")
    await h.at(30)
    silence = h.pipeline.silences.add(['queue=~"crit.*"'], starts_at=START + 60, ends_at=START + 2000,
                                      created_by="alice", comment="draining the queue")
    assert silence.status(h.now) == SILENCE_PENDING
    await h.at(100)
    assert silence.status(h.now) == SILENCE_ACTIVE
    h.fire("Backlog", queue="critical-2")
    await h.at(1900)
    assert h["ops"].reasons == [FIRST], "a new alert matching the silence is muted too"
    await h.at(2000)
    assert h.pipeline.silences.get(silence.id).status(h.now) == SILENCE_EXPIRED  # type: ignore[union-attr]
    await h.at(2130)
    assert h["ops"].reasons == [FIRST, SILENCE_ENDED]
    assert sorted(x.labels["queue"] for x in h["ops"].sent[-1].alerts) == ["critical", "critical-2"]
    assert a.fingerprint in {x.fingerprint for x in h["ops"].sent[-1].alerts}


async def test_a_silence_expired_early_is_stored_and_unmutes() -> None:
    h = harness({"route": ROUTE})
    silence = h.pipeline.silences.add(['alertname="Backlog"'], ends_at=START + 86400, created_by="bob", comment="")
    h.fire("Backlog")
    await h.at(600)
    assert h["ops"].sent == []
    h.pipeline.silences.expire(silence.id)
    [stored] = h.store.silences()
    assert stored.ends_at == START + 600 and stored.created_by == "bob"
    await h.at(930)
    assert h["ops"].reasons == [SILENCE_ENDED]


async def test_a_silence_survives_a_restart() -> None:
    h = harness({"route": ROUTE})
    h.pipeline.silences.add(['alertname="Backlog"'], ends_at=START + 86400, created_by="bob", comment="x")
    again = harness({"route": ROUTE}, store=h.store, clock=h.clock)
    again.fire("Backlog")
    await again.at(600)
    assert again["ops"].sent == []


INHIBIT: dict[str, Any] = {
    "route": {**ROUTE, "group_by": ["alertname", "cluster"]},
    "inhibit_rules": [{
        "source_matchers": ['alertname="CeleryBrokerDown"'],
        "target_matchers": ['alertname=~"CriticalQueueBacklog|WorkerHeartbeatLost"'],
        "equal": ["cluster"],
    }],
}


async def test_broker_down_inhibits_queue_and_worker_alerts_of_its_cluster() -> None:
    h = harness(INHIBIT)
    broker = h.fire("CeleryBrokerDown", cluster="eu")
    h.fire("CriticalQueueBacklog", cluster="eu", queue="critical")
    h.fire("WorkerHeartbeatLost", cluster="eu", worker="w1")
    h.fire("CriticalQueueBacklog", cluster="us", queue="critical")
    await h.at(30)
    assert sorted((n.group_labels["alertname"], n.group_labels["cluster"]) for n in h["ops"].sent) == [
        ("CeleryBrokerDown", "eu"), ("CriticalQueueBacklog", "us"),
    ]
    h.resolve(broker)
    await h.at(330)
    assert sorted(h["ops"].reasons) == sorted([FIRST, FIRST, RESOLVED, INHIBITION_ENDED, INHIBITION_ENDED])


async def test_an_alert_does_not_inhibit_itself() -> None:
    h = harness({"route": ROUTE, "inhibit_rules": [
        {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="critical"'], "equal": []}
    ]})
    h.fire("Lonely", severity="critical")
    await h.at(30)
    assert h["ops"].reasons == [FIRST]


TIMES: dict[str, Any] = {
    "route": {**ROUTE, "active_time_intervals": ["office"]},
    # START is Tuesday 2023-11-14 22:13:20 UTC, 23:13:20 in Berlin.
    "time_intervals": {"office": [{"weekdays": ["monday:friday"], "times": ["09:00-18:00"], "location": "Europe/Berlin"}]},
}


async def test_outside_active_time_intervals_nothing_is_sent_until_they_begin() -> None:
    h = harness(TIMES)
    h.fire("DiskFilling")
    await h.at(9 * 3600)  # 08:13 in Berlin
    assert h["ops"].sent == []
    await h.at(10 * 3600)  # 09:13
    assert h["ops"].reasons == [FIRST]
    assert 9 * 3600 + 46 * 60 < h["ops"].sent[0].created_at - START <= 9 * 3600 + 52 * 60


async def test_mute_time_intervals() -> None:
    h = harness({"route": {**ROUTE, "mute_time_intervals": ["night"]},
                 "time_intervals": {"night": [{"times": ["22:00-24:00"], "location": "UTC"},
                                              {"times": ["00:00-06:00"], "location": "UTC"}]}})
    h.fire("DiskFilling")
    await h.at(7 * 3600)  # 05:13 UTC
    assert h["ops"].sent == []
    await h.at(8 * 3600)
    assert h["ops"].reasons == [FIRST]


async def test_serve_pages_at_once_on_the_wall_clock() -> None:
    clock = SystemClock()
    ops = RecordingNotifier("ops", context=make_notifier_context())
    config = Config.model_validate({"receivers": {"ops": {"type": "recording"}}, "route": {**ROUTE, "group_wait": "0s"}})
    pipeline = build_pipeline(config, {"ops": ops}, MemoryStateStore(), clock)
    stop = asyncio.Event()
    server = asyncio.create_task(pipeline.serve(stop, max_sleep=0.05))
    await asyncio.sleep(0.02)
    put_at = time.perf_counter()
    pipeline.put([make_alert(name="PaymentTaskFailed", starts_at=clock.now())])
    for _ in range(100):
        if ops.sent:
            break
        await asyncio.sleep(0.002)
    waited = time.perf_counter() - put_at
    stop.set()
    await asyncio.wait_for(server, timeout=1)
    assert ops.reasons == [FIRST]
    assert waited < 0.04, "a put wakes the pipeline: no waiting for its next poll"


async def test_housekeeping_forgets_old_entries_and_rows() -> None:
    h = harness({"route": {**ROUTE, "group_wait": "0s"}, "notify": {"outbox_retention": "1d"}})
    a = h.fire("X")
    await h.tick()
    h.resolve(a)
    await h.at(300)
    h.pipeline.silences.add(['alertname="Y"'], ends_at=START + 600, created_by="bob", comment="")
    h.clock.advance(10 * 86400)
    h.pipeline.housekeeping()
    assert h.store.nflog_entries() == [] and h.store.silences() == []
    assert h.store.outbox_get(h["ops"].sent[0].id) is None
