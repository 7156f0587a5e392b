"""Real services for integration tests: private redis-server, prometheus-pushgateway, prometheus and Flower
processes on free ports.

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


@dataclass
class Flower:
    port: int
    process: subprocess.Popen[bytes]
    log_path: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def start_flower(broker_url: str) -> Flower:
    """Flower (``celery flower``) for the test app, watching the events of ``broker_url``'s workers."""
    import sys

    port = free_port()
    fd, log_path = tempfile.mkstemp(prefix="alertd-flower-", suffix=".log")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, ALERTD_TEST_BROKER_URL=broker_url)
    env.pop("ALERTD_TEST_PUSHGATEWAY_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    with os.fdopen(fd, "wb") as logfile:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.celeryapp.tasks", "flower",
             f"--port={port}", "--address=127.0.0.1", "--persistent=False"],
            cwd=root, env=env, stdout=logfile, stderr=subprocess.STDOUT,
        )
    flower = Flower(port, proc, log_path)
    wait_until_answers(proc, f"{flower.url}/healthcheck", f"flower on port {port}", flower.stop, flower.log)
    return flower


def wait_until_answers(proc: subprocess.Popen[bytes], url: str, what: str, stop: Callable[[], None],
                       log: Callable[[], str] = lambda: "") -> None:
    """Wait until the service that ``proc`` started answers 200 at ``url``; ``stop`` it if it never does."""
    import urllib.request

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log()[-3000:]}")
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)

    try:
        wait_until(ready, timeout=60, what=what)
    except BaseException:
        stop()
        raise


@dataclass
class PrometheusServer:
    port: int
    process: subprocess.Popen[bytes]
    dir: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def start_prometheus(scrape_url: str, scrape_interval: str = "1s") -> PrometheusServer:
    """A private Prometheus server (its own port and data folder) that scrapes ``scrape_url`` (job "test")."""
    from urllib.parse import urlsplit

    binary = require_binary("prometheus", "/usr/bin/prometheus")
    workdir = tempfile.mkdtemp(prefix="alertd-prometheus-")
    target = urlsplit(scrape_url)
    config = os.path.join(workdir, "prometheus.yml")
    with open(config, "w") as f:
        f.write(
            f"global:\n  scrape_interval: {scrape_interval}\n  evaluation_interval: {scrape_interval}\n"
            "scrape_configs:\n  - job_name: test\n"
            f"    metrics_path: {target.path or '/metrics'}\n"
            f"    static_configs:\n      - targets: ['{target.netloc}']\n"
        )
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={os.path.join(workdir, 'data')}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = PrometheusServer(port, proc, workdir)
    wait_until_answers(proc, f"{server.url}/-/ready", f"prometheus on port {port}", server.stop)
    return server
