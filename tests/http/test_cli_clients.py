"""``alertd alerts``, ``silence``, ``ack`` and ``explain`` against a real server, run in its own thread's loop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from alertd.cli import main
from alertd.config.model import HttpSettings
from alertd.daemon import build
from alertd.http.server import start_http_server
from alertd.models import Sample
from tests.http.test_api import TOKEN, write


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    loop = asyncio.new_event_loop()
    started: dict[str, str] = {}
    stop = asyncio.Event()
    ready = threading.Event()

    async def serve() -> None:
        daemon = build(str(write(tmp_path)))
        daemon.ingest([Sample("queue_depth", {"queue": "payments"}, 50.0, time.time())])
        daemon.evaluate_all()
        assert daemon.pipeline is not None
        await daemon.pipeline.tick()
        server = await start_http_server(daemon, HttpSettings(listen="127.0.0.1:0", token=TOKEN))
        started["url"] = server.url
        ready.set()
        await stop.wait()
        await server.close()
        await daemon.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield started["url"]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def alertd(url: str, *args: str, token: str | None = TOKEN) -> tuple[int, str]:
    extra = ["--url", url] + (["--token", token] if token else [])
    result = CliRunner().invoke(main, [*args, *extra])
    return result.exit_code, result.output


def test_alerts_silence_ack_and_explain(server_url: str) -> None:
    code, out = alertd(server_url, "alerts")
    assert code == 0, out
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["FINGERPRINT", "STATE", "SEVERITY", "ALERT"]
    deep = next(r for r in rows if "QueueDeep" in r)
    assert "firing" in deep and "queue payments holds 50.0" in deep
    prefix = deep.split()[0]
    code, out = alertd(server_url, "alerts", "--json", "--state", "firing")
    alerts = json.loads(out)["alerts"]
    assert [a["labels"]["alertname"] for a in alerts] == ["QueueDeep"]

    code, out = alertd(server_url, "explain", prefix)
    assert code == 0 and "receiver console" in out and "first notification" in out, out

    code, out = alertd(server_url, "silence", "add", 'queue="payments"', "--duration", "2h", "--comment", "deploy")
    assert code == 0 and "active" in out, out
    silence_id = out.split()[1]
    code, out = alertd(server_url, "silence", "list")
    assert silence_id in out and 'queue="payments"' in out
    code, out = alertd(server_url, "alerts", "--state", "firing")
    assert "silenced" in out
    code, out = alertd(server_url, "silence", "expire", silence_id)
    assert code == 0 and "expired" in out

    code, out = alertd(server_url, "ack", prefix, "--by", "bob")
    assert code == 0 and "acknowledged by bob" in out
    code, out = alertd(server_url, "alerts", "--state", "firing")
    assert "acked" in out


def test_errors_are_one_line_and_exit_1(server_url: str) -> None:
    code, out = alertd(server_url, "silence", "add", 'queue="payments"', token=None)
    assert code == 1 and "401" in out and "Bearer" in out
    code, out = alertd(server_url, "explain", "nope")
    assert code == 1 and "0 alerts match 'nope'" in out
    code, out = alertd("http://127.0.0.1:1", "alerts")
    assert code == 1 and "cannot reach alertd at http://127.0.0.1:1" in out
