"""The scrape collector against a real Flower watching a real worker, loopback expositions (text, OpenMetrics,
TLS, authentication) and targets that misbehave: garbage, a hang, 50 MB with and without a Content-Length."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alertd.collectors.base import CollectorContext, CollectorRunner
from alertd.collectors.collect import build_collectors
from alertd.collectors.scrape import ScrapeCollector, ScrapeSettings, ScrapeTargetSettings
from alertd.config import load_config
from alertd.errors import ConfigErrors
from alertd.models import Sample
from tests.helpers import write
from tests.peers.exposition import OPENMETRICS_FORMAT, ExpositionPeer
from tests.peers.tls import shared_certificate
from tests.services import RedisServer, free_port, start_flower
from tests.workers import CeleryWorker

EXPOSITION = """\
# HELP celery_tasks_total Tasks seen
# TYPE celery_tasks_total counter
celery_tasks_total{task="tasks.payment.charge",state="SUCCESS"} 12
celery_tasks_total{task="tasks.payment.charge",state="FAILURE",job="exporter"} 2
# TYPE celery_queue_length gauge
celery_queue_length{queue="celery",instance=""} 7
# TYPE node_load1 gauge
node_load1 0.5
"""

OPENMETRICS = """\
# TYPE celery_tasks counter
celery_tasks_total{task="a"} 3.0
celery_tasks_created{task="a"} 1.7e9
# TYPE celery_workers gauge
celery_workers 2.0
# EOF
"""


def collector(targets: dict[str, dict[str, Any]], **section: Any) -> list[ScrapeCollector]:
    settings = ScrapeSettings.model_validate({**section, "targets": targets})
    made = ScrapeCollector.instances(settings, CollectorContext())
    assert all(isinstance(c, ScrapeCollector) for c in made)
    return made  # type: ignore[return-value]


async def run_all(collectors: list[ScrapeCollector]) -> dict[str, Any]:
    try:
        runs = await asyncio.gather(*(CollectorRunner(c).run() for c in collectors))
        return {run.collector: run for run in runs}
    finally:
        for c in collectors:
            await c.close()


def find(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def up(samples: list[Sample]) -> float:
    (sample,) = find(samples, "scrape_up")
    return sample.value


async def test_every_sample_gets_job_and_instance_and_its_own_are_kept_as_exported() -> None:
    with ExpositionPeer(EXPOSITION) as peer:
        (c,) = collector({"exporter-a": {"url": f"{peer.url}/metrics"}})
        runs = await run_all([c])
        instance = f"127.0.0.1:{peer.port}"
    run = runs["scrape:exporter-a"]
    assert run.ok, run.error
    success = find(run.samples, "celery_tasks_total", state="SUCCESS")
    assert [(s.labels, s.value) for s in success] == [
        ({"task": "tasks.payment.charge", "state": "SUCCESS", "job": "exporter-a", "instance": instance}, 12.0)
    ]
    (failed,) = find(run.samples, "celery_tasks_total", state="FAILURE")
    assert failed.labels["exported_job"] == "exporter" and failed.labels["job"] == "exporter-a"
    (queue,) = find(run.samples, "celery_queue_length")
    assert queue.labels == {"queue": "celery", "job": "exporter-a", "instance": instance}  # the empty one dropped
    assert up(run.samples) == 1.0
    assert find(run.samples, "scrape_samples")[0].value == 4.0
    assert find(run.samples, "scrape_response_bytes")[0].value == len(EXPOSITION.encode())
    assert find(run.samples, "alertd_collector_success", collector="scrape:exporter-a")[0].value == 1.0
    assert c.stale_groups == [{"job": "exporter-a", "instance": instance}]
    # OpenMetrics is asked for first, the text format accepted.
    assert peer.requests[0].headers["accept"].startswith("application/openmetrics-text")


async def test_metric_prefixes_keep_only_those_metrics() -> None:
    with ExpositionPeer(EXPOSITION) as peer:
        (c,) = collector({"t": {"url": peer.url, "metric_prefixes": ["celery_queue", "node_"], "job": "node"}})
        runs = await run_all([c])
    names = {s.name for s in runs["scrape:t"].samples if not s.name.startswith(("scrape_", "alertd_"))}
    assert names == {"celery_queue_length", "node_load1"}
    assert find(runs["scrape:t"].samples, "node_load1")[0].labels["job"] == "node"


async def test_openmetrics_is_parsed_as_openmetrics_without_created_samples() -> None:
    with ExpositionPeer(OPENMETRICS, OPENMETRICS_FORMAT) as peer:
        (c,) = collector({"om": {"url": peer.url, "instance": "exporter:9808"}})
        runs = await run_all([c])
    run = runs["scrape:om"]
    assert run.ok, run.error
    got = {(s.name, s.labels.get("task")): s.value for s in run.samples if s.name.startswith("celery_")}
    assert got == {("celery_tasks_total", "a"): 3.0, ("celery_workers", None): 2.0}
    assert find(run.samples, "celery_workers")[0].labels["instance"] == "exporter:9808"


async def test_bearer_token_basic_auth_and_a_private_ca() -> None:
    certificate = shared_certificate()
    with ExpositionPeer(EXPOSITION, certificate=certificate) as tls_peer, ExpositionPeer(EXPOSITION) as plain:
        made = collector({
            "tls": {"url": f"{tls_peer.url}/metrics", "ca_file": certificate.ca_file, "bearer_token": "s3cret"},
            "basic": {"url": f"{plain.url}/metrics", "username": "prom", "password": "pw"},
            "untrusted": {"url": f"{tls_peer.url}/metrics", "job": "other"},
        })
        runs = await run_all(made)
    assert runs["scrape:tls"].ok, runs["scrape:tls"].error
    assert runs["scrape:basic"].ok, runs["scrape:basic"].error
    assert tls_peer.requests[0].headers["authorization"] == "Bearer s3cret"
    assert plain.requests[0].headers["authorization"] == "Basic cHJvbTpwdw=="  # prom:pw
    # Without the CA file the system's CAs do not know the peer's certificate.
    assert not runs["scrape:untrusted"].ok and "TLS" in runs["scrape:untrusted"].error
    assert up(runs["scrape:untrusted"].samples) == 0.0


def test_targets_take_the_section_defaults_and_must_not_share_job_and_instance() -> None:
    settings = ScrapeSettings.model_validate({
        "interval": "30s", "timeout": "3s", "max_bytes": 1000,
        "targets": {"a": {"url": "http://h:1/metrics"}, "b": {"url": "http://h:2/metrics", "interval": "5s"}},
    })
    a, b = settings.targets["a"], settings.targets["b"]
    assert (a.interval, a.timeout, a.max_bytes) == (30.0, 3.0, 1000)
    assert (b.interval, b.timeout) == (5.0, 3.0)
    with pytest.raises(ValueError, match="would both label their series job='x'"):
        ScrapeSettings.model_validate({"targets": {
            "a": {"url": "http://h:1/metrics", "job": "x"}, "b": {"url": "http://h:1/other", "job": "x"}}})
    with pytest.raises(ValueError, match="exclusive"):
        ScrapeTargetSettings.model_validate({"url": "http://h/", "bearer_token": "t", "username": "u", "password": "p"})
    with pytest.raises(ValueError, match="http:// or https://"):
        ScrapeTargetSettings.model_validate({"url": "h:9100/metrics"})


def test_configured_targets_become_one_collector_each_and_secrets_stay_hidden(tmp_path: Path) -> None:
    token = write(tmp_path / "token", "from-a-file\n")
    config = write(tmp_path / "alertd.toml", f"""
[collectors.scrape]
interval = "20s"
[collectors.scrape.targets.flower]
url = "http://127.0.0.1:5555/metrics"
bearer_token_file = "{token}"
[collectors.scrape.targets.node]
url = "http://127.0.0.1:9100/metrics"
enabled = false
""")
    loaded = load_config(config)
    built = build_collectors(loaded, CollectorContext())
    assert [c.name for c in built if c.type_name == "scrape"] == ["scrape:flower"]
    (flower,) = [c for c in built if c.name == "scrape:flower"]
    assert flower.settings.interval == 20.0
    assert isinstance(flower, ScrapeCollector)
    assert flower.opts.bearer_token is not None and flower.opts.bearer_token.get_secret_value() == "from-a-file"
    assert "from-a-file" in loaded.secret_values()
    assert "from-a-file" not in str(loaded.redacted())

    bad = write(tmp_path / "bad.toml", '[collectors.scrape.targets.x]\nurl = "ftp://h/metrics"\n')
    with pytest.raises(ConfigErrors, match=r"collectors\.scrape\.targets\.x\.url"):
        load_config(bad)


# -- targets that misbehave ----------------------------------------------------------------------------------

MIB = 2**20


class Misbehaving:
    """Loopback endpoints: /good, /garbage, /hang (answers nothing until stopped), /huge (50 MB with a
    Content-Length) and /stream (50 MB of valid lines, no Content-Length: only reading tells the size)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        outer = self
        chunk = b"".join(b'celery_filler{n="%06d"} 1\n' % i for i in range(2500))  # about 64 KiB
        total = 50 * 10**6

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the end of the body is the end of the connection

            def do_GET(self) -> None:
                try:
                    if self.path == "/hang":
                        outer.release.wait(30)
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; version=0.0.4")
                    if self.path in ("/good", "/garbage"):
                        body = EXPOSITION.encode() if self.path == "/good" else b"\x00<html>not metrics {{{\n" * 50
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                    if self.path == "/huge":
                        self.send_header("Content-Length", str(total))
                    self.end_headers()
                    for _ in range(total // len(chunk)):
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the collector gave up, as it should

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Misbehaving:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def misbehaving() -> Iterator[Misbehaving]:
    with Misbehaving() as server:
        yield server


async def test_each_bad_target_fails_alone_with_bounded_memory(misbehaving: Misbehaving) -> None:
    names = ("good", "garbage", "hang", "huge", "stream")
    made = collector({n: {"url": f"{misbehaving.url}/{n}"} for n in names}, timeout="1s")
    tracemalloc.start()
    try:
        started = time.monotonic()
        runs = await run_all(made)
        took = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert runs["scrape:good"].ok, runs["scrape:good"].error
    assert up(runs["scrape:good"].samples) == 1.0
    assert find(runs["scrape:good"].samples, "celery_tasks_total", job="good")
    errors = {n: runs[f"scrape:{n}"].error for n in names[1:]}
    assert "malformed metrics" in str(errors["garbage"])
    assert errors["hang"] == "timed out after 1s"
    assert "announced 50,000,000 bytes, more than max_bytes (10,485,760)" in str(errors["huge"])
    assert "sent more than max_bytes (10,485,760): abandoned" in str(errors["stream"])
    for n in names[1:]:
        samples = runs[f"scrape:{n}"].samples
        assert up(samples) == 0.0
        assert find(samples, "scrape_up")[0].labels == {"target": n, "job": n, "instance": misbehaving.url[7:]}
        assert find(samples, "alertd_collector_success", collector=f"scrape:{n}")[0].value == 0.0
        assert not find(samples, "celery_filler")
    assert took < 5.0  # the hang costs its timeout, nothing more; nobody waited for 50 MB
    # The body is abandoned at max_bytes: the 50 MB never sit in memory (at most 10 MiB of chunks).
    assert peak < 20 * MIB, f"peak {peak / MIB:.1f} MiB"


# -- a real Flower -------------------------------------------------------------------------------------------


@pytest.mark.integration
async def test_flower_task_metrics_arrive_as_series(
    redis_server: RedisServer, worker_factory: Callable[..., CeleryWorker]
) -> None:
    worker = worker_factory(redis_server.url, "flowered")
    flower = start_flower(redis_server.url)
    try:
        (c,) = collector({"flower": {"url": f"{flower.url}/metrics", "metric_prefixes": ["flower_"]}})

        async def scrape_until(done: Callable[[list[Sample]], bool], what: str) -> list[Sample]:
            deadline = time.monotonic() + 60
            while True:
                run = await CollectorRunner(c).run()
                assert run.ok, run.error
                if done(run.samples):
                    return run.samples
                assert time.monotonic() < deadline, f"Flower never {what}:\n{flower.log()[-2000:]}"
                await asyncio.sleep(0.2)

        def counted(samples: list[Sample], kind: str, task: str) -> float:
            return sum(s.value for s in find(samples, "flower_events_total", type=kind, task=task))

        try:
            # Events are not queued for a consumer that is not there yet: Flower must see the worker (its
            # heartbeats) before the tasks are sent.
            await scrape_until(lambda ss: find(ss, "flower_worker_online", worker=worker.name), "saw the worker")
            for _ in range(3):
                worker.send("tasks.payment.charge", 5.0)
            worker.send("tasks.fail", "KeyError")
            samples = await scrape_until(
                lambda ss: counted(ss, "task-succeeded", "tasks.payment.charge") >= 3
                and counted(ss, "task-failed", "tasks.fail") >= 1,
                "counted the tasks",
            )
        finally:
            await c.close()
    finally:
        flower.stop()
        Path(flower.log_path).unlink(missing_ok=True)
    (succeeded,) = find(samples, "flower_events_total", type="task-succeeded", task="tasks.payment.charge")
    assert succeeded.value == 3.0
    assert succeeded.labels["worker"] == worker.name
    assert succeeded.labels["job"] == "flower" and succeeded.labels["instance"] == f"127.0.0.1:{flower.port}"
    # Flower's task runtime histogram comes through with its buckets.
    assert find(samples, "flower_task_runtime_seconds_count", task="tasks.payment.charge")[0].value == 3.0
    assert find(samples, "flower_task_runtime_seconds_bucket", task="tasks.payment.charge", le="+Inf")
    assert up(samples) == 1.0
    assert not any(s.name.startswith("process_") for s in samples)  # metric_prefixes kept only Flower's
