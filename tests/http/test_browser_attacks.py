"""The attacks of a hostile web page, in a real browser: headless Chromium, driven by Playwright, opens a page
from another origin that tries to silence every alert, reload, acknowledge, read the API, frame the
dashboard, and reach alertd under a name of its own (DNS rebinding). alertd's default configuration (no
token) is the target; the daemon's own page is the control that must keep working."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from aiohttp import web
from playwright.async_api import Browser, async_playwright

from alertd.daemon import Daemon
from tests.http.test_dashboard_browser import CHROMIUM
from tests.http.test_guard import SILENCE, guarded, refused, silences  # noqa: F401 - the fixture

REBIND = "rebind.attacker.test"
ATTACKS = """async ([target, fingerprint, silence]) => {
  const blind = (path, init) => fetch(target + path, {mode: "no-cors", method: "POST", ...init})
    .then(() => "sent", (e) => String(e));
  const text = {"Content-Type": "text/plain"};
  return {
    silence: await blind("/api/v1/silences", {headers: text, body: JSON.stringify(silence)}),
    reload: await blind("/-/reload", {}),
    ack: await blind(`/api/v1/alerts/${fingerprint}/ack`, {headers: text, body: '{"by": "mallory"}'}),
    read: await fetch(target + "/api/v1/alerts").then((r) => r.text(), () => "blocked"),
  };
}"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", f"--host-resolver-rules=MAP {REBIND} 127.0.0.1"])
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def attacker() -> AsyncIterator[str]:
    """Another origin on loopback: http://localhost:<port>, a different site from http://127.0.0.1:<port>."""
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=request.query.get("html", "<p>hello</p>"), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://localhost:{port}"
    finally:
        await runner.cleanup()


async def test_a_hostile_page_changes_nothing_and_reads_nothing(
    guarded: tuple[Daemon, str], attacker: str, browser: Browser  # noqa: F811
) -> None:
    daemon, url = guarded
    [fingerprint] = [a["fingerprint"] for a in await _alerts(url) if a["state"] == "firing"]
    reloads = daemon.metrics.registry.get_sample_value("alertd_reloads_total", {"result": "success"}) or 0
    page = await browser.new_page()
    await page.goto(attacker + "/")
    result = await page.evaluate(ATTACKS, [url, fingerprint, SILENCE])
    assert result["silence"] == result["reload"] == result["ack"] == "sent"  # the browser did send them
    assert result["read"] == "blocked"
    # A form needs no script at all.
    form = f'<form method="post" action="{url}/-/reload"><button>win a prize</button></form>'
    await page.goto(attacker + "/?" + urlencode({"html": form}))
    async with page.expect_navigation() as navigation:
        await page.click("button")
    answer = await navigation.value
    assert answer is not None and answer.status == 403
    assert silences(daemon) == 0
    assert all(not a.get("acknowledgement") for a in await _alerts(url))
    assert (daemon.metrics.registry.get_sample_value("alertd_reloads_total", {"result": "success"}) or 0) == reloads
    assert refused(daemon, "cross-site") == 4  # silence, reload, ack and the form all reached the guard


async def test_a_rebinding_name_and_a_frame_get_nothing(
    guarded: tuple[Daemon, str], attacker: str, browser: Browser  # noqa: F811
) -> None:
    daemon, url = guarded
    page = await browser.new_page()
    port = url.rsplit(":", 1)[1]
    answer = await page.goto(f"http://{REBIND}:{port}/api/v1/alerts")
    assert answer is not None and answer.status == 421
    assert "QueueDeep" not in await page.content()
    assert refused(daemon, "host") >= 1  # the page, and perhaps its favicon

    framing = f'<iframe src="{url}/" width="600" height="400"></iframe>'
    await page.goto(attacker + "/?" + urlencode({"html": framing}))
    [frame] = [f for f in page.frames if f is not page.main_frame]
    shown = await frame.evaluate("document.documentElement.outerHTML")  # the browser's own view, not the page's
    assert "QueueDeep" not in shown


async def test_the_dashboard_itself_works_under_its_policy(guarded: tuple[Daemon, str], browser: Browser) -> None:  # noqa: F811
    daemon, url = guarded
    page = await browser.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    answer = await page.goto(url + "/")
    assert answer is not None and answer.status == 200
    header = await page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
    assert header == "rgb(29, 35, 48)"  # the inline style sheet is allowed by its hash
    assert not [v for v in violations if "Content Security Policy" in v]
    created = await page.evaluate("""async (silence) => (await fetch("/api/v1/silences", {method: "POST",
        headers: {"Content-Type": "application/json"}, body: JSON.stringify(silence)})).status""", SILENCE)
    assert created == 201 and silences(daemon) == 1


async def _alerts(url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url) as c:
        return list((await c.get("/api/v1/alerts")).json()["alerts"])
