"""A real alertd (daemon and HTTP server) in a thread's event loop, for the CLI clients to talk to."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from alertd.cli import main
from alertd.daemon import Daemon, build
from alertd.http.server import start_http_server
from alertd.models import Sample
from tests.helpers import OFFLINE
from tests.loop_debug import debug_mode

TOKEN = "cli-t0ken"
RULES = """
[[groups]]
name = "queues"
[[groups.rules]]
name = "QueueBacklog"
select = "queue_depth"
condition = "value > 10"
severity = "warning"
summary = "queue {{ labels.queue }} holds {{ value }} tasks"
[[groups.rules]]
name = "QueueStuck"
select = "queue_depth"
condition = "value > 10"
for = "1h"
severity = "critical"
summary = "queue {{ labels.queue }} has not drained for an hour"
"""


def write_config(folder: Path, *, token: str | None = TOKEN, tls: tuple[Path, Path] | None = None) -> Path:
    """A daemon's configuration: offline, in-memory state, one console receiver, the queue rules."""
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "rules" / "queues.toml").write_text(RULES)
    http = ['listen = "127.0.0.1:0"']
    if token:
        http.append(f'token = "{token}"')
    if tls:
        http += [f'tls_cert = "{tls[0]}"', f'tls_key = "{tls[1]}"']
    config = folder / "alertd.toml"
    config.write_text(OFFLINE + "[http]\n" + "\n".join(http) + f"""
[receivers.console]
type = "console"
path = "{folder / 'pages.log'}"
[route]
receiver = "console"
group_wait = "0s"
group_by = ["alertname", "queue"]
""")
    return config


@dataclass
class Served:
    url: str
    port: int
    config: Path
    token: str | None


class _ServerThread:
    """Runs the daemon and its HTTP server in a thread with its own event loop, in asyncio's debug mode, until
    ``stop``; ``stop`` fails if anything called the daemon from another thread. Callbacks are not timed here:
    the client under test runs in the same process, and its imports hold the interpreter lock that the loop's
    thread waits for."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.url = ""
        self.error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.problems: list[str] = []

    def _run(self) -> None:
        try:
            daemon = build(str(self.config))  # before the loop runs, as ``alertd run`` does
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            raise
        with debug_mode(self.loop, timed=False) as seen:
            try:
                self.loop.run_until_complete(self._serve(daemon))
            finally:
                self.problems = seen.problems

    async def _serve(self, daemon: Daemon) -> None:
        try:
            self._stop = asyncio.Event()
            now = time.time()
            daemon.ingest([Sample("queue_depth", {"queue": "payments"}, 50.0, now),
                           Sample("queue_depth", {"queue": "emails"}, 12.5, now)])
            daemon.evaluate_all()
            assert daemon.pipeline is not None
            await daemon.pipeline.tick()  # the console receiver is notified: explain has a last notification
            server = await start_http_server(daemon, daemon.loaded.config.http)
            self.url = server.url
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            raise
        self.ready.set()
        try:
            await self._stop.wait()
        finally:
            await server.close()
            await daemon.close()

    def start(self) -> str:
        self.thread.start()
        assert self.ready.wait(30), "the server did not start within 30s"
        if self.error is not None:
            raise self.error
        return self.url

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)
        self.loop.close()
        assert not self.problems, "the daemon's event loop was misused:\n" + "\n".join(self.problems)


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Served]]:
    """Start an alertd: ``serve(token=..., tls=...)``. Stopped after the test."""
    monkeypatch.chdir(tmp_path)  # no alertd.toml in the working folder unless a test writes one
    for name in ("ALERTD_URL", "ALERTD_TOKEN", "ALERTD_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    threads: list[_ServerThread] = []

    def start(*, token: str | None = TOKEN, tls: bool = False) -> Served:
        folder = tmp_path / f"server{len(threads)}"
        folder.mkdir()
        config = write_config(folder, token=token, tls=self_signed(folder) if tls else None)
        thread = _ServerThread(config)
        threads.append(thread)
        url = thread.start()
        return Served(url, int(url.rsplit(":", 1)[1]), config, token)

    try:
        yield start
    finally:
        for thread in threads:
            thread.stop()


@pytest.fixture
def served(serve: Callable[..., Served]) -> Served:
    """One alertd with a token, plain HTTP."""
    return serve()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with the openssl command (scripts/test
    installs it with the other Debian packages the tests need)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert), "-addext", "subjectAltName=IP:127.0.0.1",
         "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign"],
        check=True, capture_output=True,
    )
    return cert, key


def alertd(*args: str, env: dict[str, Any] | None = None) -> Result:
    """``alertd ARGS`` in this process; stdout and stderr apart (``result.stdout``, ``result.stderr``)."""
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
