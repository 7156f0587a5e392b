"""The prometheus collector against a real Prometheus server (Debian's ``prometheus``) that scrapes a loopback
exposition, and against loopback servers that answer badly or not at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alertd.collectors.base import CollectorContext, CollectorRun, CollectorRunner
from alertd.collectors.collect import build_collectors
from alertd.collectors.prometheus import PrometheusCollector, PrometheusSettings
from alertd.config import load_config
from alertd.errors import ConfigErrors
from alertd.models import Sample
from tests.helpers import write
from tests.peers import HttpPeer, Reply, Request
from tests.peers.exposition import ExpositionPeer
from tests.services import PrometheusServer, start_prometheus

EXPOSITION = """\
# TYPE shop_queue_waiting gauge
shop_queue_waiting{queue="orders"} 3
shop_queue_waiting{queue="emails"} 4
"""


@pytest.fixture(scope="module")
def exposition() -> Iterator[ExpositionPeer]:
    with ExpositionPeer(EXPOSITION) as peer:
        yield peer


@pytest.fixture(scope="module")
def prometheus(exposition: ExpositionPeer) -> Iterator[PrometheusServer]:
    server = start_prometheus(f"{exposition.url}/metrics", scrape_interval="1s")
    try:
        yield server
    finally:
        server.stop()


def collectors(url: str, queries: dict[str, str], **settings: Any) -> dict[str, PrometheusCollector]:
    opts = PrometheusSettings.model_validate({"url": url, "queries": queries, **settings})
    made = PrometheusCollector.instances(opts, CollectorContext())
    return {c.name: c for c in made if isinstance(c, PrometheusCollector)}


async def run_all(made: dict[str, PrometheusCollector], *, close: bool = True) -> dict[str, CollectorRun]:
    try:
        runs = await asyncio.gather(*(CollectorRunner(c).run() for c in made.values()))
        return {run.collector: run for run in runs}
    finally:
        for c in made.values() if close else ():
            await c.close()


def values(run: CollectorRun, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in run.samples if s.name == name}


@pytest.mark.integration
async def test_query_results_arrive_as_series(prometheus: PrometheusServer, exposition: ExpositionPeer) -> None:
    made = collectors(prometheus.url, {
        "shop_waiting": "shop_queue_waiting",
        "shop_waiting_total": "sum(shop_queue_waiting)",
        "shop_answer": "scalar(sum(shop_queue_waiting)) * 6",
    })
    # Prometheus has the samples after its first scrape: until then the vector is empty.
    deadline = time.monotonic() + 30
    try:
        while True:
            runs = await run_all(made, close=False)
            assert all(r.ok for r in runs.values()), [r.error for r in runs.values()]
            if values(runs["prometheus:shop_waiting_total"], "shop_waiting_total"):
                break
            assert time.monotonic() < deadline, "Prometheus never scraped the exposition"
            await asyncio.sleep(0.2)
    finally:
        for c in made.values():
            await c.close()
    instance = ("instance", f"127.0.0.1:{exposition.port}")
    assert values(runs["prometheus:shop_waiting"], "shop_waiting") == {
        (instance, ("job", "test"), ("queue", "emails")): 4.0,
        (instance, ("job", "test"), ("queue", "orders")): 3.0,
    }
    assert values(runs["prometheus:shop_waiting_total"], "shop_waiting_total") == {(): 7.0}
    assert values(runs["prometheus:shop_answer"], "shop_answer") == {(): 42.0}
    assert all(
        [s.value for s in r.samples if s.name == "alertd_collector_success"] == [1.0] for r in runs.values()
    )


@pytest.mark.integration
async def test_bad_queries_fail_alone(prometheus: PrometheusServer) -> None:
    made = collectors(prometheus.url, {
        "broken": "sum(rate(shop_queue_waiting[1m]",
        "ranged": "shop_queue_waiting[1m]",
        "flood": 'label_replace(vector(1), "x", "y", "", "")  or shop_queue_waiting',
        "fine": "vector(5)",
    }, max_samples=1)
    runs = await run_all(made)
    assert runs["prometheus:fine"].ok and values(runs["prometheus:fine"], "fine") == {(): 5.0}
    assert "Prometheus refused the query: bad_data: " in str(runs["prometheus:broken"].error)
    assert "returned a matrix result" in str(runs["prometheus:ranged"].error)
    assert "more than max_samples (1)" in str(runs["prometheus:flood"].error)
    for name in ("broken", "ranged", "flood"):
        run = runs[f"prometheus:{name}"]
        assert not run.ok
        assert [s.value for s in run.samples if s.name == "alertd_collector_success"] == [0.0]
        assert not [s for s in run.samples if s.name == name]


class SlowPrometheus(HttpPeer):
    """Answers every query after ``delay`` seconds, or with what ``reply`` says."""

    def __init__(self, reply: Reply) -> None:
        super().__init__()
        self.reply = reply

    def answer(self, request: Request) -> Reply:
        return self.reply


async def test_a_server_that_hangs_or_answers_too_much_or_not_json() -> None:
    huge = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"n": str(i)}, "value": [1.0, "1"]} for i in range(50_000)]}}
    with SlowPrometheus(Reply(200, {}, delay=10)) as slow, SlowPrometheus(Reply(200, huge)) as big, \
            SlowPrometheus(Reply(502, "<html>bad gateway</html>")) as proxy:
        runs = {}
        for peer, name in ((slow, "slow"), (big, "big"), (proxy, "proxy")):
            runs.update(await run_all(collectors(peer.url, {name: "up"}, timeout="1s", max_bytes=1_000_000)))
        query = slow.requests[0].path
    assert runs["prometheus:slow"].error == "timed out after 1s"
    assert "more than max_bytes (1,000,000)" in str(runs["prometheus:big"].error)
    assert "answered HTTP 502: <html>bad gateway</html>" in str(runs["prometheus:proxy"].error)
    # The query and alertd's timeout travel to Prometheus, which then gives up too.
    assert query == "/api/v1/query?query=up&timeout=1s"


def test_queries_are_named_by_metric_and_each_is_a_collector(tmp_path: Path) -> None:
    config = write(tmp_path / "alertd.toml", """
[collectors.prometheus]
url = "http://prometheus:9090"
interval = "30s"
[collectors.prometheus.queries]
celery_queue_rate = 'sum by (queue) (rate(celery_tasks_total[5m]))'
node_up = 'up{job="node"}'
""")
    built = build_collectors(load_config(config), CollectorContext())
    assert sorted(c.name for c in built if c.type_name == "prometheus") == [
        "prometheus:celery_queue_rate", "prometheus:node_up"]
    assert all(c.settings.interval == 30.0 for c in built if c.type_name == "prometheus")
    bad = write(tmp_path / "bad.toml", '[collectors.prometheus.queries]\n"rate-of-x" = "x"\n')
    with pytest.raises(ConfigErrors, match="is not a metric name"):
        load_config(bad)


def test_results_of_every_kind() -> None:
    from alertd.collectors.prometheus import read_result
    from alertd.errors import CollectorError

    def read(payload: Any) -> list[Sample]:
        return read_result("m", payload, 10, 100.0)

    vector = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "x", "a": "1"}, "value": [1.0, "+Inf"]},
        {"metric": {"a": "2"}, "value": [1.0, "NaN"]}]}}
    assert [(s.name, s.labels, s.value) for s in read(vector)] == [("m", {"a": "1"}, float("inf"))]
    assert [s.value for s in read({"status": "success", "data": {"resultType": "scalar", "result": [1, "2.5"]}})] == [2.5]
    for payload, message in (
        ({"status": "error", "errorType": "timeout", "error": "query timed out"}, "timeout: query timed out"),
        ({"status": "success", "data": {"resultType": "string", "result": [1, "x"]}}, "a string result"),
        ({"status": "success", "data": {"resultType": "vector", "result": [{"value": 3}]}}, "malformed result"),
        ([1, 2], "not a query result"),
    ):
        with pytest.raises(CollectorError, match=message):
            read(payload)
