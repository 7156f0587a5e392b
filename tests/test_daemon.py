"""`alertd run`, `collect` and `inspect` as a user runs them, against a private redis-server and a real worker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.loop_debug import slow_callbacks_in_log, wrong_thread_in_log
from tests.services import RedisServer, wait_until
from tests.workers import CeleryWorker

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
ALERTD = [sys.executable, "-m", "alertd"]


@pytest.fixture(scope="module")
def worker(module_redis: RedisServer, module_worker_factory: Callable[..., CeleryWorker]) -> CeleryWorker:
    return module_worker_factory(module_redis.url, "daemon")


def write_config(tmp_path: Path, broker_url: str, queue: str) -> Path:
    shutil.copytree(ROOT / "rules", tmp_path / "rules", ignore=shutil.ignore_patterns("tests"))
    cfg = tmp_path / "alertd.toml"
    cfg.write_text(
        f"""
rule_files = ["rules/*.toml"]
evaluation_interval = "1s"
[state]
url = "state.db"
[celery]
broker_url = "{broker_url}"
queues = ["{queue}"]
[events]
tick_interval = "0.2s"
[collectors.inspect]
interval = "5s"
[receivers.pages]
type = "console"
path = "pages.log"
[route]
receiver = "pages"
group_wait = "0s"
[http]
enabled = false
"""
    )
    return cfg


def firing(db: Path, alertname: str) -> list[dict[str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT labels FROM alerts WHERE state = 'firing'").fetchall()
    labels = [json.loads(r[0]) for r in rows]
    return [lab for lab in labels if lab.get("alertname") == alertname]


@pytest.fixture
def daemon(tmp_path: Path, worker: CeleryWorker) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    cfg = write_config(tmp_path, worker.broker_url, worker.queue)
    log = open(tmp_path / "alertd.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*ALERTD, "run", "-c", str(cfg)], stdout=log, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONASYNCIODEBUG": "1"})
    try:
        yield proc, tmp_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()


def test_a_payment_failure_fires_through_the_event_stream_and_sigterm_stops_cleanly(
    daemon: tuple[subprocess.Popen[str], Path], worker: CeleryWorker
) -> None:
    proc, workdir = daemon
    log = workdir / "alertd.log"
    wait_until(lambda: "alertd starting" in log.read_text(), timeout=30, what="alertd to start")
    # Celery events are not queued for a consumer that is not there yet: send once the stream is up. On Redis
    # the event subscription becomes effective a moment after the consumer starts, so an event published in
    # that moment is lost (as it would be for any consumer): send again if the first failure went unseen.
    wait_until(lambda: "event stream connected" in log.read_text(), timeout=30, what="the event stream")
    found: object = None
    for _ in range(5):
        sent = time.time()
        worker.send("tasks.payment.refund", 42)
        try:
            found = wait_until(lambda: firing(workdir / "state.db", "PaymentTaskFailed"), timeout=3,
                               what="PaymentTaskFailed firing")
            break
        except TimeoutError:
            continue
    assert isinstance(found, list)
    assert found[0]["task_name"] == "tasks.payment.refund"
    assert found[0]["exception_type"] == "RefundDeclined"
    print(f"payment failure to firing alert in the state store: {time.time() - sent:.2f}s")
    pages = workdir / "pages.log"
    wait_until(lambda: pages.exists() and "PaymentTaskFailed" in pages.read_text(), timeout=15,
               what="the page in the console receiver's file")
    print(f"payment failure to page delivered: {time.time() - sent:.2f}s")
    page = pages.read_text()
    assert "Payment task tasks.payment.refund failed: RefundDeclined" in page

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    text = log.read_text()
    assert "SIGTERM received: stopping" in text
    stopped = [line for line in text.splitlines() if "alertd stopped after" in line]
    assert len(stopped) == 1 and "evaluations" in stopped[0]
    assert "Traceback" not in text
    assert "asyncio debug mode: callbacks that hold the loop longer than 100 ms are logged" in text
    assert wrong_thread_in_log(text) == []
    print(f"callbacks that held the loop longer than 100 ms: {slow_callbacks_in_log(text)}")


def test_collect_prints_every_sample_and_inspect_shows_the_worker(tmp_path: Path, worker: CeleryWorker) -> None:
    cfg = write_config(tmp_path, worker.broker_url, worker.queue)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    collect = subprocess.run([*ALERTD, "collect", "-c", str(cfg)], capture_output=True, text=True, timeout=60, env=env)
    out = collect.stdout
    assert "# workers: ok" in out, collect.stdout + collect.stderr
    assert "celery_workers_responding{} 1" in out
    assert f'celery_worker_responding{{worker="{worker.name}"}} 1' in out
    assert 'alertd_collector_success{collector="workers"} 1' in out

    table = subprocess.run([*ALERTD, "inspect", "-c", str(cfg)], capture_output=True, text=True, timeout=60, env=env)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:3] == ["WORKER", "ACTIVE", "RESERVED"]
    assert worker.name in table.stdout
    as_json = subprocess.run([*ALERTD, "inspect", "-c", str(cfg), "--json"], capture_output=True, text=True,
                             timeout=60, env=env)
    snapshot = json.loads(as_json.stdout)
    assert worker.name in snapshot
    assert "tasks.payment.refund" in json.dumps(snapshot[worker.name])
