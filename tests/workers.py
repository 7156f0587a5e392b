"""Real Celery workers and celery beat for integration tests: subprocesses of ``tests.celeryapp``, started and waited for.

``start_worker`` returns once the worker answers a ping (no fixed sleep); ``stop()`` is a graceful SIGTERM
(the worker sends worker-offline), ``kill()`` a SIGKILL of the whole process group, pool children included
(the worker says nothing, as after the OOM killer).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from celery import Celery
from celery.utils.nodenames import host_format

ROOT = Path(__file__).resolve().parent.parent


def client_app(broker_url: str) -> Celery:
    """An app that only sends: tasks go by name (``send_task``), so it needs none of the task code."""
    app = Celery("tests-client", broker=broker_url, set_as_current=False)
    app.conf.broker_connection_retry_on_startup = True
    return app


@dataclass
class CeleryWorker:
    name: str
    """The node name, e.g. ``alpha@thishost``."""
    queue: str
    broker_url: str
    process: subprocess.Popen[bytes]
    log_path: str
    client: Celery = field(repr=False)
    ready_after: float = 0.0
    """Seconds from the start of the process until it answered a ping."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def send(self, task: str, *args: Any, **kwargs: Any) -> Any:
        """Send a task by name to this worker's queue."""
        return self.client.send_task(task, args=args, kwargs=kwargs, queue=self.queue)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """Warm shutdown: SIGTERM, then wait; the worker finishes its tasks and sends worker-offline."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap_group()

    def kill(self) -> None:
        """SIGKILL to every process of the worker, parent and pool children: no goodbye is sent."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def _reap_group(self) -> None:
        # Pool children that outlive their parent must not leak into later tests.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def start_worker(
    broker_url: str,
    name: str,
    *,
    queue: str | None = None,
    concurrency: int = 2,
    heartbeat_interval: int = 1,
    task_events: bool = True,
    pushgateway_url: str | None = None,
    push_interval: float = 0.5,
    ready_timeout: float = 60.0,
) -> CeleryWorker:
    """Start ``celery worker`` (prefork, ``-E`` unless ``task_events`` is false) in its own process group.

    Returns once the worker answers a ping.
    """
    node = host_format(f"{name}@%h")
    queue = queue or f"q-{name}"
    fd, log_path = tempfile.mkstemp(prefix=f"alertd-worker-{name}-", suffix=".log")
    env = dict(os.environ)
    env["ALERTD_TEST_BROKER_URL"] = broker_url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("ALERTD_TEST_PUSHGATEWAY_URL", None)
    if pushgateway_url:
        env["ALERTD_TEST_PUSHGATEWAY_URL"] = pushgateway_url
        env["ALERTD_TEST_PUSH_INTERVAL"] = str(push_interval)
    cmd = [
        sys.executable, "-m", "celery", "-A", "tests.celeryapp.tasks", "worker",
        "--pool=prefork", f"--concurrency={concurrency}", *(["-E"] if task_events else []), f"--hostname={name}@%h",
        "--without-mingle", "--without-gossip", f"--heartbeat-interval={heartbeat_interval}",
        "-Q", queue, "--loglevel=INFO",
    ]
    with os.fdopen(fd, "wb") as logfile:
        process = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = CeleryWorker(node, queue, broker_url, process, log_path, client_app(broker_url))

    started = time.monotonic()
    deadline = started + ready_timeout
    try:
        while True:
            if not worker.alive():
                raise RuntimeError(f"worker {node} exited with {process.returncode}:\n{worker.log()[-3000:]}")
            try:
                if worker.client.control.ping(destination=[node], timeout=0.3, limit=1):
                    break
            except Exception:  # the broker connection may not be up yet
                time.sleep(0.05)
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker {node} did not answer a ping in {ready_timeout}s:\n{worker.log()[-3000:]}")
    except BaseException:
        worker.kill()
        raise
    worker.ready_after = time.monotonic() - started
    return worker


@dataclass
class CeleryBeat:
    """A ``celery beat`` process (the default PersistentScheduler, its schedule file in a test folder)."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def sends(self) -> int:
        """How many tasks beat has sent so far, from its log."""
        return self.log().count("Sending due task")

    def last_send(self) -> float | None:
        """When beat last sent a task (seconds since the epoch), from the time stamp of its log line."""
        lines = [line for line in self.log().splitlines() if "Sending due task" in line]
        if not lines:
            return None
        stamp = lines[-1][1:].split(": ", 1)[0]  # "[2026-03-10 12:00:01,234: INFO/MainProcess] ..."
        return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()

    def pause(self) -> None:
        """SIGSTOP: beat is frozen with its broker connection open, as a hung process would be."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def start_beat(broker_url: str, queue: str, workdir: Path) -> CeleryBeat:
    """Start ``celery beat`` for ``tests.celeryapp.beat`` (entries sent to ``queue``), schedule file in ``workdir``."""
    env = dict(os.environ)
    env["ALERTD_TEST_BROKER_URL"] = broker_url
    env["ALERTD_TEST_BEAT_QUEUE"] = queue
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    log_path = workdir / "beat.log"
    cmd = [
        sys.executable, "-m", "celery", "-A", "tests.celeryapp.beat", "beat",
        f"--schedule={workdir / 'celerybeat-schedule'}", f"--pidfile={workdir / 'beat.pid'}", "--loglevel=INFO",
    ]
    with open(log_path, "wb") as logfile:
        process = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
        )
    return CeleryBeat(process, log_path)
