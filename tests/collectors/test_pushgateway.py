"""The Pushgateway collector against a private prometheus-pushgateway fed by prometheus_client, and a server answering garbage."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, push_to_gateway

from alertd.clock import VirtualClock
from alertd.collectors.base import CollectorContext, CollectorRunner
from alertd.collectors.pushgateway import (
    PushgatewayCollector,
    PushgatewaySettings,
    parse_exposition,
    split_groups,
)
from alertd.errors import CollectorError
from alertd.models import Sample
from tests.services import Pushgateway, free_port

W1 = {"instance": "w1", "pid": "101"}
W2 = {"instance": "w2", "pid": "202"}


def push(gateway: Pushgateway, grouping: dict[str, str], failures: int, job: str = "celery") -> None:
    """What one worker process pushes: a counter, a histogram and a gauge, like alertd.instrument."""
    registry = CollectorRegistry()
    failed = Counter("celery_tasks_failed_total", "Tasks failed", ["task_name", "exception_type"], registry=registry)
    failed.labels("tasks.payment.refund", "RefundDeclined").inc(failures)
    duration = Histogram("celery_task_duration_seconds", "Run time", ["task_name"], buckets=(0.5, 5), registry=registry)
    duration.labels("tasks.payment.refund").observe(0.2)
    duration.labels("tasks.payment.refund").observe(2.0)
    Gauge("celery_active_tasks", "Running", ["task_name"], registry=registry).labels("tasks.payment.refund").set(1)
    Gauge("process_open_fds", "A worker's own process metric", registry=registry).set(12)
    push_to_gateway(gateway.url, job=job, registry=registry, grouping_key=grouping)


def make(url: str, clock: VirtualClock | None = None, **settings: Any) -> PushgatewayCollector:
    context = CollectorContext(clock=clock) if clock is not None else CollectorContext()
    return PushgatewayCollector(PushgatewaySettings.model_validate({"url": url, **settings}), context)


async def collect(c: PushgatewayCollector) -> list[Sample]:
    try:
        return await c.collect()
    finally:
        await c.close()


def find(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


@pytest.mark.integration
async def test_pushed_series_come_back_with_all_their_labels(pushgateway: Pushgateway) -> None:
    push(pushgateway, W1, failures=3)
    push(pushgateway, W2, failures=1)
    c = make(pushgateway.url)
    try:
        run = await CollectorRunner(c).run()
    finally:
        await c.close()
    assert run.ok, run.error
    samples = run.samples
    assert find(samples, "alertd_collector_success")[0].value == 1.0
    failed = {s.labels["instance"]: s for s in find(samples, "celery_tasks_failed_total")}
    assert failed["w1"].labels == {"job": "celery", **W1, "task_name": "tasks.payment.refund", "exception_type": "RefundDeclined"}
    assert (failed["w1"].value, failed["w2"].value) == (3.0, 1.0)
    buckets = {s.labels["le"]: s.value for s in find(samples, "celery_task_duration_seconds_bucket", **W1)}
    assert buckets == {"0.5": 1.0, "5": 2.0, "+Inf": 2.0}  # as the Pushgateway writes them
    assert find(samples, "celery_task_duration_seconds_sum", **W2)[0].value == pytest.approx(2.2)
    assert find(samples, "celery_task_duration_seconds_count", **W2)[0].value == 2.0
    assert find(samples, "celery_active_tasks", **W1)[0].value == 1.0
    assert find(samples, "process_open_fds", **W2)[0].labels == {"job": "celery", **W2}  # a worker's, kept
    assert len(find(samples, "push_time_seconds")) == 2 and len(find(samples, "push_failure_time_seconds")) == 2
    names = {s.name for s in samples}
    assert not any(n.startswith(("go_", "pushgateway_")) or n.endswith("_created") for n in names)
    assert not [s for s in samples if s.name.startswith("process_") and "job" not in s.labels]
    ages = {s.labels["instance"]: s.value for s in find(samples, "alertd_pushgateway_group_age_seconds")}
    assert set(ages) == {"w1", "w2"} and all(-1 < a < 60 for a in ages.values())
    assert find(samples, "alertd_pushgateway_groups")[0].value == 2.0
    assert find(samples, "alertd_pushgateway_stale_groups")[0].value == 0.0
    assert c.stale_groups == []


@pytest.mark.integration
async def test_a_group_that_stopped_pushing_is_stale_and_its_series_are_absent(pushgateway: Pushgateway) -> None:
    push(pushgateway, W1, failures=3)
    push(pushgateway, W2, failures=1)
    push(pushgateway, {}, failures=7, job="beat")  # pushed without instance: the Pushgateway writes instance=""
    fresh = await collect(make(pushgateway.url))
    pushed = {s.labels["job"] + s.labels.get("instance", ""): s.value for s in find(fresh, "push_time_seconds")}
    assert pushed["celeryw2"] > pushed["celeryw1"]
    # Seen 10s after the last push, with stale_after between the ages of the two celery groups: w1 only is stale
    # (and beat, pushed last, is fresh).
    newest = max(pushed.values())
    clock = VirtualClock(newest + 10)
    stale_after = 10 + (newest - pushed["celeryw2"]) + (pushed["celeryw2"] - pushed["celeryw1"]) / 2
    c = make(pushgateway.url, clock=clock, stale_after=stale_after)
    samples = await collect(c)
    assert c.stale_groups == [{"job": "celery", **W1}]
    assert not [s for s in samples if s.labels.get("instance") == "w1" and not s.name.startswith("alertd_")]
    assert find(samples, "celery_tasks_failed_total", instance="w2")[0].value == 1.0
    assert find(samples, "celery_tasks_failed_total", job="beat")[0].value == 7.0
    ages = {s.labels["job"] + s.labels.get("instance", ""): s.value for s in find(samples, "alertd_pushgateway_group_age_seconds")}
    assert ages["celeryw1"] == pytest.approx(newest + 10 - pushed["celeryw1"])
    assert ages["beat"] == pytest.approx(newest + 10 - pushed["beat"])
    assert find(samples, "alertd_pushgateway_groups")[0].value == 3.0
    assert find(samples, "alertd_pushgateway_stale_groups")[0].value == 1.0

    # Everything stale: the beat group is listed with every grouping label name, empty where it has none, so
    # that matchers built from it (a missing label matches "") select its series and not the workers'.
    c = make(pushgateway.url, clock=VirtualClock(newest + 600), stale_after="5m")
    samples = await collect(c)
    beat = next(g for g in c.stale_groups if g["job"] == "beat")
    assert beat == {"job": "beat", "instance": "", "pid": ""}
    assert {s.name for s in samples} == {"alertd_pushgateway_group_age_seconds", "alertd_pushgateway_groups",
                                         "alertd_pushgateway_stale_groups"}

    def selects(group: dict[str, str], s: Sample) -> bool:
        return all(s.labels.get(k, "") == v for k, v in group.items())

    for s in fresh:
        if not s.name.startswith("alertd_"):
            owners = [g for g in c.stale_groups if selects(g, s)]
            assert len(owners) == 1, (s, owners)


@pytest.mark.integration
async def test_metric_prefixes_keep_only_those_metrics(pushgateway: Pushgateway) -> None:
    push(pushgateway, W1, failures=3)
    samples = await collect(make(pushgateway.url, metric_prefixes=["celery_tasks_failed"]))
    assert {s.name for s in samples} == {
        "celery_tasks_failed_total", "push_time_seconds", "push_failure_time_seconds",
        "alertd_pushgateway_group_age_seconds", "alertd_pushgateway_groups", "alertd_pushgateway_stale_groups",
    }


class _Garbage(http.server.BaseHTTPRequestHandler):
    body = b"# TYPE ok gauge\nok 1\nnot a metric line at all\n"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def garbage_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.integration
async def test_malformed_metrics_are_a_clear_collector_error(garbage_server: str) -> None:
    c = make(garbage_server)
    with pytest.raises(CollectorError) as info:
        await c.collect()
    message = str(info.value)
    assert message.startswith("pushgateway returned malformed metrics: ")
    assert message.endswith("(line 3)")
    assert info.value.__cause__ is None and info.value.__suppress_context__
    run = await CollectorRunner(c).run()
    await c.close()
    assert not run.ok and run.error == f"CollectorError: {message}"
    assert find(run.samples, "alertd_collector_success")[0].value == 0.0


@pytest.mark.integration
async def test_a_pushgateway_that_is_down_is_a_clear_collector_error() -> None:
    port = free_port()
    with pytest.raises(CollectorError, match=rf"^connection refused by http://127\.0\.0\.1:{port}/metrics: "):
        await collect(make(f"http://127.0.0.1:{port}"))


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('a{b="c} 1\n', 1),
        ("# HELP x y\n# TYPE x counter\nx_total 1\nx_total one\n", 4),
        ("<html><body>502 Bad Gateway</body></html>\n", 1),
        ("ok 1\n\n\n# TYPE z bogus_type_with no\nz{le=\"1\",le=\"2\"} 3\n", 5),
    ],
)
def test_parse_errors_name_the_line(text: str, line: int) -> None:
    with pytest.raises(CollectorError) as info:
        parse_exposition(text)
    assert str(info.value).startswith("pushgateway returned malformed metrics: ")
    assert str(info.value).endswith(f"(line {line})")


def test_a_sample_belongs_to_the_group_with_the_most_labels() -> None:
    series: list[tuple[str, dict[str, str], float]] = [
        ("push_time_seconds", {"job": "j", "instance": ""}, 100.0),
        ("push_time_seconds", {"job": "j", "instance": "", "pid": "7"}, 1000.0),
        ("m", {"job": "j", "instance": ""}, 1.0),
        ("m", {"job": "j", "instance": "", "pid": "7"}, 2.0),
    ]
    reading = split_groups(series, now=1010.0, stale_after=60.0)
    assert reading.stale_groups == [{"job": "j", "instance": "", "pid": ""}]
    assert [(s.name, s.labels, s.value) for s in reading.samples] == [
        ("push_time_seconds", {"job": "j", "pid": "7"}, 1000.0),
        ("m", {"job": "j", "pid": "7"}, 2.0),
    ]
    assert reading.groups == [({"job": "j"}, 910.0), ({"job": "j", "pid": "7"}, 10.0)]


def test_settings_check_the_url() -> None:
    with pytest.raises(ValueError, match="must start with http:// or https://"):
        PushgatewaySettings(url="127.0.0.1:9091")
    assert PushgatewaySettings(url="http://gw:9091/").url == "http://gw:9091"
    assert PushgatewaySettings().stale_after == 300.0
    assert PushgatewayCollector.default_enabled is False
