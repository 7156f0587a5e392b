"""Real services for integration tests: private redis-server and prometheus-pushgateway processes on free ports.

Each fixture starts its own process, waits until it answers, and stops it afterwards; the machine's own
Redis and RabbitMQ are never stopped or changed. A missing binary is an error, not a skip: ``scripts/test``
installs the Debian packages.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

RABBITMQ_URL = os.environ.get("ALERTD_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.02, what: str = "") -> object:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # the service may not be up yet
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what or predicate!r}" + (f" (last error: {last_exc})" if last_exc else ""))


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def require_binary(name: str, *candidates: str) -> str:
    for path in (shutil.which(name), *candidates):
        if path and os.path.exists(path):
            return path
    raise RuntimeError(f"{name} is not installed: run scripts/test, which installs the test services")


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]
    dir: str
    extra: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def start(self) -> None:
        """Start again on the same port (after ``stop``), for tests of a broker that comes back."""
        self.process = _spawn_redis(self.port, self.dir, self.extra)


def _spawn_redis(port: int, workdir: str, extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    binary = require_binary("redis-server", "/usr/bin/redis-server")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir, "--logfile", os.path.join(workdir, "redis.log"), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: port_open(port), what=f"redis-server on port {port}")
    return proc


def start_redis(*extra: str) -> RedisServer:
    """A private redis-server on a free port; ``extra`` are more arguments (``--requirepass``, ...)."""
    workdir = tempfile.mkdtemp(prefix="alertd-redis-")
    port = free_port()
    return RedisServer(port, _spawn_redis(port, workdir, extra), workdir, extra)


@dataclass
class Pushgateway:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def start_pushgateway() -> Pushgateway:
    binary = require_binary("prometheus-pushgateway", "/usr/bin/prometheus-pushgateway")
    port = free_port()
    # The Debian build persists to /var/lib/prometheus/pushgateway.data unless told otherwise: an empty
    # --persistence.file keeps each test's groups in its own process, never in a file shared with other runs.
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: port_open(port), what=f"prometheus-pushgateway on port {port}")
    return Pushgateway(port, proc)


