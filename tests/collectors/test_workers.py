"""The workers (ping) and inspect collectors against two real prefork workers, and the inspect parsing."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from alertd.collectors.base import CollectorContext, CollectorRunner
from alertd.collectors.workers import (
    InspectCollector,
    InspectSettings,
    WorkersCollector,
    WorkersSettings,
    inspect_workers,
    parse_inspect,
    render_table,
    reply_timeout,
)
from alertd.models import Sample
from tests.services import RedisServer
from tests.workers import CeleryWorker

REGISTERED = 7  # the tasks of tests.celeryapp.tasks


def values(samples: list[Sample], name: str) -> dict[str, float]:
    """``{worker label (or ""): value}`` of one metric."""
    return {s.labels.get("worker", ""): s.value for s in samples if s.name == name}


@pytest.fixture(scope="module")
def two_workers(module_redis: RedisServer, module_worker_factory: Callable[..., CeleryWorker]) -> list[CeleryWorker]:
    return [module_worker_factory(module_redis.url, name) for name in ("ping-a", "ping-b")]


@pytest.mark.integration
async def test_ping_returns_as_soon_as_every_known_worker_answered(
    module_redis: RedisServer, two_workers: list[CeleryWorker]
) -> None:
    collector = WorkersCollector(WorkersSettings(timeout=3.0), CollectorContext(broker_url=module_redis.url))
    collector.known_workers = lambda: [w.name for w in two_workers]
    started = time.perf_counter()
    run = await CollectorRunner(collector).run()
    took = time.perf_counter() - started
    print(f"\nping of 2 known workers: {1000 * took:.0f} ms (timeout 3s)")
    assert run.ok, run.error
    assert took < 1.5
    assert values(run.samples, "celery_worker_responding") == {w.name: 1.0 for w in two_workers}
    assert values(run.samples, "celery_workers_responding") == {"": 2.0}
    assert collector.broadcasts == 1


@pytest.mark.integration
async def test_ping_learns_the_workers_from_its_last_answer(
    module_redis: RedisServer, two_workers: list[CeleryWorker]
) -> None:
    collector = WorkersCollector(WorkersSettings(timeout=3.0), CollectorContext(broker_url=module_redis.url))
    first = await collector.collect()  # nobody known yet: waits out the reply timeout to find everyone
    assert values(first, "celery_workers_responding") == {"": 2.0}
    started = time.perf_counter()
    second = await collector.collect()
    took = time.perf_counter() - started
    assert took < 1.5
    assert values(second, "celery_workers_responding") == {"": 2.0}
    assert collector.broadcasts == 2


@pytest.mark.integration
async def test_inspect_samples_snapshot_and_table(module_redis: RedisServer, two_workers: list[CeleryWorker]) -> None:
    a, b = two_workers
    collector = InspectCollector(InspectSettings(timeout=3.0), CollectorContext(broker_url=module_redis.url))
    collector.known_workers = lambda: [a.name, b.name]
    a.send("tasks.slow", 2.0)
    deadline = time.monotonic() + 10
    while True:  # poll until the slow task is running on a
        samples = await collector.collect()
        if values(samples, "celery_worker_active").get(a.name) == 1 or time.monotonic() > deadline:
            break
    assert values(samples, "celery_worker_active") == {a.name: 1.0, b.name: 0.0}
    assert values(samples, "celery_worker_reserved") == {a.name: 0.0, b.name: 0.0}
    assert values(samples, "celery_worker_scheduled") == {a.name: 0.0, b.name: 0.0}
    assert values(samples, "celery_worker_registered_tasks") == {a.name: REGISTERED, b.name: REGISTERED}
    assert values(samples, "celery_worker_pool_processes") == {a.name: 2.0, b.name: 2.0}
    assert values(samples, "celery_worker_inspect_error") == {a.name: 0.0, b.name: 0.0}
    uptime = values(samples, "celery_worker_uptime_seconds")
    assert set(uptime) == {a.name, b.name} and all(v >= 0 for v in uptime.values())

    snapshot = collector.snapshot
    assert set(snapshot) == {a.name, b.name}
    assert snapshot[a.name]["active"][0]["name"] == "tasks.slow"
    assert "tasks.payment.charge" in snapshot[b.name]["registered"]
    json.dumps(snapshot)  # what `alertd inspect --json` prints

    table = render_table(snapshot)
    print("\n" + table)
    assert a.name in table and b.name in table
    assert "active tasks.slow" in table
    assert collector.broadcasts % 5 == 0


@pytest.mark.integration
async def test_no_worker_answers_zero_after_the_timeout(redis_server: RedisServer) -> None:
    context = CollectorContext(broker_url=redis_server.url)
    collector = WorkersCollector(WorkersSettings(timeout=1.0), context)
    run = await CollectorRunner(collector).run()
    assert run.ok, run.error
    assert run.duration >= reply_timeout(1.0)
    assert values(run.samples, "celery_workers_responding") == {"": 0.0}
    assert values(run.samples, "celery_worker_responding") == {}

    replies = await inspect_workers(context, reply_timeout(1.0))
    assert replies == {"active": {}, "reserved": {}, "scheduled": {}, "registered": {}, "stats": {}}
    assert render_table(parse_inspect(replies, 0.0)[1]) == "no worker answered"


GOOD: dict[str, Any] = {
    "active": [{"id": "t1", "name": "tasks.slow"}],
    "reserved": [],
    "scheduled": [],
    "registered": ["tasks.slow", "tasks.fail"],
    "stats": {"pool": {"max-concurrency": 4, "processes": [11, 12, 13, 14]}, "uptime": 120},
}


@pytest.mark.parametrize(
    ("answer", "expected", "error"),
    [
        pytest.param(GOOD, {"celery_worker_active": 1, "celery_worker_registered_tasks": 2,
                            "celery_worker_pool_processes": 4, "celery_worker_uptime_seconds": 120}, None, id="sane"),
        pytest.param({**GOOD, "active": "garbage"}, {"celery_worker_registered_tasks": 2}, "active: expected a list",
                     id="active-not-a-list"),
        pytest.param({**GOOD, "stats": ["x"]}, {"celery_worker_active": 1}, "stats: expected a mapping",
                     id="stats-not-a-mapping"),
        pytest.param({**GOOD, "stats": {"pool": {"max-concurrency": 3}}}, {"celery_worker_pool_processes": 3}, None,
                     id="pool-without-process-list"),
        pytest.param({"active": []}, {"celery_worker_active": 0}, None, id="answered-only-one-command"),
    ],
)
def test_parse_inspect(answer: dict[str, Any], expected: dict[str, float], error: str | None,
                       caplog: pytest.LogCaptureFixture) -> None:
    replies: dict[str, dict[str, Any]] = {c: {} for c in ("active", "reserved", "scheduled", "registered", "stats")}
    for command, value in answer.items():
        replies[command]["odd@host"] = value
        replies[command]["fine@host"] = GOOD[command]
    with caplog.at_level(logging.WARNING, logger="alertd.collectors.workers"):
        samples, snapshot = parse_inspect(replies, 5.0)
    for name, value in expected.items():
        assert values(samples, name)["odd@host"] == value, name
    errors = values(samples, "celery_worker_inspect_error")
    assert errors == {"odd@host": 1.0 if error else 0.0, "fine@host": 0.0}
    assert values(samples, "celery_worker_active")["fine@host"] == 1
    if error:
        assert error in snapshot["odd@host"]["error"]
        assert len([r for r in caplog.records if "odd@host" in r.getMessage()]) == 1
        assert "error" in render_table(snapshot)
    else:
        assert snapshot["odd@host"]["error"] is None
        assert not caplog.records
    json.dumps(snapshot)
