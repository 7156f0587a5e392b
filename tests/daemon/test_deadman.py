"""The dead man's switch pings only while evaluation is healthy, and a failing ping is logged once."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from alertd.config.model import DeadmanSettings
from alertd.daemon.deadman import DeadmanSwitch
from alertd.daemon.metrics import DaemonMetrics


class PingTarget:
    """A loopback ping endpoint (like healthchecks.io's): counts GETs, answers ``status``."""

    def __init__(self) -> None:
        self.pings = 0
        self.status = 200
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.pings += 1
        return web.Response(status=self.status, text="OK")


@pytest.fixture
async def target() -> AsyncIterator[PingTarget]:
    t = PingTarget()
    app = web.Application()
    app.router.add_get("/ping/{check}", t.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    t.url = f"http://127.0.0.1:{port}/ping/5f1c-secret-check-id"
    yield t
    await runner.cleanup()


async def test_pings_while_evaluation_is_fresh_and_not_when_it_is_stale(
    target: PingTarget, caplog: pytest.LogCaptureFixture
) -> None:
    last: list[float | None] = [None]
    metrics = DaemonMetrics()
    async with httpx.AsyncClient() as http:
        switch = DeadmanSwitch(DeadmanSettings(url=target.url, timeout=2), 15.0, lambda: last[0], http, metrics)
        assert switch.max_age == 45.0
        assert not await switch.ping()  # no evaluation yet
        last[0] = time.time() - 5
        assert await switch.ping()
        assert target.pings == 1
        last[0] = time.time() - 60  # evaluation stuck for a minute: silence, so the outside service pages
        assert not await switch.ping()
        assert target.pings == 1
        last[0] = time.time()
        target.status = 500
        with caplog.at_level(logging.WARNING, logger="alertd.deadman"):
            assert not await switch.ping()
            assert not await switch.ping()
        failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
        assert len(failures) == 1  # once, not at every interval
        assert "secret-check-id" not in failures[0] and "127.0.0.1" in failures[0]
        target.status = 200
        assert await switch.ping()
    assert metrics.deadman_pings.labels("success")._value.get() == 2
    assert metrics.deadman_pings.labels("failure")._value.get() == 2
    assert metrics.deadman_pings.labels("skipped")._value.get() == 2
