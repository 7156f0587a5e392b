"""The guard in front of the HTTP server, against a real daemon on loopback in its default configuration (no
token: changes are taken from loopback only, which is where a browser's cross-site requests come from too)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from alertd.config.model import HttpSettings
from alertd.daemon import Daemon, build
from alertd.http.guard import host_name
from alertd.http.server import start_http_server
from alertd.models import Sample
from tests.http.test_api import write

SILENCE = {"matchers": ['alertname=~".+"'], "duration": "8760h", "created_by": "mallory"}


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[tuple[Daemon, str]]:
    cfg = write(tmp_path)
    cfg.write_text('external_url = "https://alertd.example.org"\n' + cfg.read_text())
    daemon = build(str(cfg))
    daemon.ingest([Sample("queue_depth", {"queue": "payments"}, 50.0, time.time())])
    daemon.evaluate_all()
    server = await start_http_server(daemon, HttpSettings(listen="127.0.0.1:0", allowed_hosts=["alertd.lan"]))
    try:
        yield daemon, server.url
    finally:
        await server.close()
        await daemon.close()


def refused(daemon: Daemon, reason: str) -> float:
    return daemon.metrics.registry.get_sample_value("alertd_http_requests_refused_total", {"reason": reason}) or 0


def silences(daemon: Daemon) -> int:
    assert daemon.pipeline is not None
    return len(daemon.pipeline.silences.list())


@pytest.mark.parametrize("given, name", [
    ("localhost:9464", "localhost"), ("[::1]:9464", "::1"), ("Alertd.Example.org.", "alertd.example.org"),
    ("127.0.0.1", "127.0.0.1"), ("fe80::1", "fe80::1"),
])
def test_host_name(given: str, name: str) -> None:
    assert host_name(given) == name


async def test_a_foreign_host_is_refused_and_alertds_own_names_are_served(guarded: tuple[Daemon, str]) -> None:
    daemon, url = guarded
    port = url.rsplit(":", 1)[1]
    async with httpx.AsyncClient(base_url=url) as c:
        for host in (f"rebind.attacker.example:{port}", "localhost.attacker.example", "127.0.0.1.nip.io"):
            response = await c.get("/api/v1/alerts", headers={"Host": host})
            assert response.status_code == 421, host
            assert "allowed_hosts" in response.json()["error"] and "alerts" not in response.json()
        assert refused(daemon, "host") == 3
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "10.1.2.3:9464",
                     "alertd.example.org", "ALERTD.LAN:443"):
            response = await c.get("/api/v1/alerts", headers={"Host": host})
            assert response.status_code == 200, host
            assert response.json()["alerts"]


async def test_changes_refuse_every_cross_site_signal(guarded: tuple[Daemon, str]) -> None:
    daemon, url = guarded
    own = url.replace("http://", "")
    async with httpx.AsyncClient(base_url=url) as c:
        as_text = await c.post("/api/v1/silences", content=str(SILENCE).encode(),
                               headers={"Content-Type": "text/plain"})
        assert as_text.status_code == 415 and "application/json" in as_text.json()["error"]
        as_form = await c.post("/api/v1/silences", data={"matchers": "x"})
        assert as_form.status_code == 415
        for site in ("cross-site", "same-site"):
            response = await c.post("/api/v1/silences", json=SILENCE, headers={"Sec-Fetch-Site": site})
            assert response.status_code == 403 and site in response.json()["error"]
        for origin in ("https://attacker.example", "null", f"http://{own}.attacker.example"):
            response = await c.post("/api/v1/silences", json=SILENCE, headers={"Origin": origin})
            assert response.status_code == 403, origin
        assert (await c.post("/-/reload", headers={"Origin": "https://attacker.example"})).status_code == 403
        assert (await c.delete("/api/v1/silences/x", headers={"Sec-Fetch-Site": "cross-site"})).status_code == 403
        assert silences(daemon) == 0
        assert (refused(daemon, "content-type"), refused(daemon, "cross-site"), refused(daemon, "origin")) == (
            2, 3, 4)

        # The operator's own page, the external URL behind a proxy, and clients that are not browsers.
        for headers in ({"Origin": url, "Sec-Fetch-Site": "same-origin"},
                        {"Origin": "https://alertd.example.org"}, {"Sec-Fetch-Site": "none"}, {}):
            assert (await c.post("/api/v1/silences", json=SILENCE, headers=headers)).status_code == 201, headers
        assert silences(daemon) == 4
        assert (await c.post("/-/reload")).status_code == 200


async def test_a_token_is_checked_after_the_cross_site_checks(tmp_path: Path) -> None:
    daemon = build(str(write(tmp_path)))
    server = await start_http_server(daemon, HttpSettings(listen="127.0.0.1:0", token="s3cret"))
    try:
        async with httpx.AsyncClient(base_url=server.url) as c:
            good = {"Authorization": "Bearer s3cret"}
            assert (await c.post("/api/v1/silences", json=SILENCE)).status_code == 401
            crossing = await c.post("/api/v1/silences", json=SILENCE, headers={**good, "Sec-Fetch-Site": "cross-site"})
            assert crossing.status_code == 403
            assert (await c.post("/api/v1/silences", json=SILENCE, headers=good)).status_code == 201
        assert refused(daemon, "token") == 1 and refused(daemon, "cross-site") == 1
    finally:
        await server.close()
        await daemon.close()


async def test_every_answer_carries_the_security_headers(guarded: tuple[Daemon, str]) -> None:
    _, url = guarded
    async with httpx.AsyncClient(base_url=url) as c:
        for path, status in (("/", 200), ("/api/v1/alerts", 200), ("/metrics", 200), ("/api/v1/nope", 404)):
            response = await c.get(path)
            assert response.status_code == status, path
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["Referrer-Policy"] == "no-referrer"
            csp = response.headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
            assert "unsafe-inline" not in csp and "script-src" not in csp
        assert "style-src 'sha256-" in (await c.get("/")).headers["Content-Security-Policy"]
        assert (await c.get("/api/v1/alerts")).headers["Cache-Control"] == "no-store"
        refused_answer = await c.get("/", headers={"Host": "attacker.example"})
        assert refused_answer.status_code == 421 and refused_answer.headers["X-Frame-Options"] == "DENY"
