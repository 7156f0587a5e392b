"""Readers answer from a snapshot: one build per change shared by every reader, built in slices that let the
loop run between them, fresh after an evaluation or a change made through the API, paged, and bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from alertd.config.model import HttpSettings
from alertd.daemon import Daemon, build
from alertd.http import api, snapshot
from alertd.http.server import start_http_server
from alertd.models import Sample
from tests.http.test_api import write

QUEUES = 3000  # two rules read each queue: 6,000 alerts


@pytest.fixture
async def crowded(tmp_path: Path) -> AsyncIterator[tuple[Daemon, str]]:
    daemon = build(str(write(tmp_path)))
    daemon.ingest([Sample("queue_depth", {"queue": f"q{i}"}, 50.0, time.time()) for i in range(QUEUES)])
    daemon.evaluate_all()
    server = await start_http_server(daemon, HttpSettings(listen="127.0.0.1:0"))
    try:
        yield daemon, server.url
    finally:
        await server.close()
        await daemon.close()


async def test_many_readers_share_one_build_and_the_loop_runs_between_its_slices(
    crowded: tuple[Daemon, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon, url = crowded
    builds = 0
    real = snapshot.Snapshots._build

    async def counted(self: snapshot.Snapshots) -> snapshot.Snapshot:
        nonlocal builds
        builds += 1
        return await real(self)

    monkeypatch.setattr(snapshot.Snapshots, "_build", counted)
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:  # stands for a page waiting to go out
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    tick_task = asyncio.ensure_future(ticker())
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        answers = await asyncio.gather(*(c.get("/api/v1/alerts" if i % 2 else "/") for i in range(20)))
        stop.set()
        await tick_task
        assert [a.status_code for a in answers] == [200] * 20
        assert builds == 1
        assert ticks >= 2 * QUEUES // snapshot.SLICE  # the loop ran between the slices of the build
        listed = answers[1].json()
        assert listed["total"] == len(listed["alerts"]) == 2 * QUEUES
        assert "and 2500 more" in answers[0].text  # each section shows 500 rows, and says how many it left out

        # An evaluation makes the next read build again, and shows what changed.
        daemon.ingest([Sample("queue_depth", {"queue": "q0"}, 1.0, time.time())])
        daemon.evaluate_all()
        fresh = (await c.get("/api/v1/alerts", params={"filter": 'queue="q0"', "state": "firing"})).json()
        assert fresh["total"] == 0 and builds == 2
        again = await c.get("/api/v1/alerts", params={"filter": 'queue="q1"', "state": "firing"})
        assert again.json()["total"] == 1 and builds == 2  # no change, no build


async def test_a_change_through_the_api_is_seen_at_once_and_pages_are_pages(crowded: tuple[Daemon, str]) -> None:
    _, url = crowded
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        before = (await c.get("/api/v1/alerts", params={"filter": 'queue="q7"'})).json()["alerts"]
        assert before and all(not a["silenced_by"] for a in before)
        created = await c.post("/api/v1/silences", json={"matchers": ['queue="q7"'], "duration": "1h"})
        assert created.status_code == 201
        after = (await c.get("/api/v1/alerts", params={"filter": 'queue="q7"'})).json()["alerts"]
        assert after and all(a["silenced_by"] == [created.json()["id"]] for a in after)

        first = (await c.get("/api/v1/alerts", params={"limit": 100})).json()
        second = (await c.get("/api/v1/alerts", params={"limit": 100, "offset": 100})).json()
        everything = (await c.get("/api/v1/alerts")).json()["alerts"]
        assert first["alerts"] + second["alerts"] == everything[:200] and first["total"] == 2 * QUEUES
        for bad in ({"limit": "-1"}, {"limit": "10001"}, {"offset": "x"}):
            assert (await c.get("/api/v1/alerts", params=bad)).status_code == 400


async def test_too_many_waiting_readers_get_503_with_retry_after(
    crowded: tuple[Daemon, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = crowded
    monkeypatch.setattr(snapshot, "QUEUE_LIMIT", 2)
    release = asyncio.Event()
    real = snapshot.Snapshots.current
    line: list[snapshot.Snapshots] = []

    async def slow(self: snapshot.Snapshots) -> snapshot.Snapshot:
        line.append(self)
        await release.wait()
        return await real(self)

    monkeypatch.setattr(snapshot.Snapshots, "current", slow)
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        held = [asyncio.ensure_future(c.get("/api/v1/alerts")) for _ in range(snapshot.HEAVY_AT_ONCE + 2)]
        while len(line) < snapshot.HEAVY_AT_ONCE or line[0]._waiting < 2:  # every slot taken, two in line
            await asyncio.sleep(0.01)
        turned_away = await c.get("/")
        assert turned_away.status_code == 503 and turned_away.headers["Retry-After"] == "1"
        assert (await c.get("/-/healthy")).status_code == 200  # light answers are not in the line
        release.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200] * len(held)


async def test_distinct_questions_do_not_grow_the_cache(tmp_path: Path) -> None:
    daemon = build(str(write(tmp_path)))
    daemon.ingest([Sample("queue_depth", {"queue": f"q{i}"}, 50.0, time.time()) for i in range(200)])
    daemon.evaluate_all()
    server = await start_http_server(daemon, HttpSettings(listen="127.0.0.1:0"))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
            for i in range(3 * snapshot.CACHED_ANSWERS):
                answer = await c.get("/api/v1/alerts", params={"filter": f'queue=~"q{i}.*"'})
                assert answer.status_code == 200 and answer.json()["total"] > 0
        current = server.runner.app[api.SNAPSHOTS]._current
        assert current is not None and len(current._cache) == snapshot.CACHED_ANSWERS
    finally:
        await server.close()
        await daemon.close()


async def test_when_only_time_has_passed_the_old_view_answers_while_the_new_one_builds(
    crowded: tuple[Daemon, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon, _ = crowded
    snaps = snapshot.Snapshots(daemon)
    first = await snaps.current()
    monkeypatch.setattr(snapshot, "MAX_AGE", 0.0)
    assert await snaps.current() is first  # aged, unchanged: no wait for the build it starts
    building = snaps._building
    assert building is not None
    second = await building
    assert second is not first and snaps._current is second

    snaps.changed()  # a change: the reader waits for the view that shows it
    third = await snaps.current()
    assert third is not second and third.key == snaps._key()
