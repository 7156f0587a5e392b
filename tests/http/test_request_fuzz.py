"""Strict request validation: hand-picked bad bodies, then property-based fuzzing of every route that takes a
body or a query. A real daemon serves on loopback from a thread of its own (its own event loop), so that
Hypothesis can drive it with a plain client. No answer may be a 500, and nothing stored may be garbage."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertd.config.model import HttpSettings
from alertd.daemon import Daemon, build
from alertd.http.bodies import EARLIEST, LATEST, MAX_MATCHERS
from alertd.http.server import start_http_server
from alertd.models import Sample
from tests.http.test_api import write

YEAR = 365 * 86400.0
OK = {200, 201, 400, 404, 409, 413, 415}


class Served:
    """A daemon and its HTTP server on an event loop in another thread."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.daemon, self.server = self.call(self._start(tmp_path))
        self.url = self.server.url

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    async def _start(self, tmp_path: Path) -> tuple[Daemon, Any]:
        daemon = build(str(write(tmp_path)))
        daemon.ingest([Sample("queue_depth", {"queue": "payments"}, 50.0, time.time())])
        daemon.evaluate_all()
        return daemon, await start_http_server(daemon, HttpSettings(listen="127.0.0.1:0"))

    async def _silences(self) -> list[Any]:
        assert self.daemon.pipeline is not None
        return self.daemon.pipeline.silences.list()

    def silences(self) -> list[Any]:
        return list(self.call(self._silences()))

    def close(self) -> None:
        async def stop() -> None:
            await self.server.close()
            await self.daemon.close()

        self.call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("fuzz"))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30) as c:
        yield c


def fingerprint(client: httpx.Client) -> str:
    return str(client.get("/api/v1/alerts", params={"state": "firing"}).json()["alerts"][0]["fingerprint"])


def post(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    return client.post(path, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("body, field", [
    ({"matchers": ['queue="x"'], "duration": "1h", "color": "red"}, "color: Extra inputs are not permitted"),
    ({"matchers": 'queue="x"', "duration": "1h"}, "matchers: Input should be a valid array"),
    ({"matchers": [], "duration": "1h"}, "matchers: List should have at least 1 item"),
    ({"matchers": ['queue="x"'] * (MAX_MATCHERS + 1), "duration": "1h"}, "matchers: List should have at most"),
    ({"matchers": ["q=" + "x" * 2000], "duration": "1h"}, "matchers.0: String should have at most 1000"),
    ({"matchers": ['queue="x"'], "ends_at": "tomorrow"}, "ends_at: Input should be a valid number"),
    ({"matchers": ['queue="x"'], "ends_at": 1e300}, "ends_at: Input should be less than or equal to"),
    ({"matchers": ['queue="x"'], "ends_at": True}, "ends_at: Input should be a valid number"),
    ({"matchers": ['queue="x"'], "duration": "1h", "ends_at": 2e9}, "not both"),
    ({"matchers": ['queue="x"']}, 'give duration (like "2h") or ends_at'),
    ({"matchers": ['queue="x"'], "duration": "3650d"}, "max_silence_duration (365d)"),
    ({"matchers": ['queue="x"'], "ends_at": 4e9}, "at most [http] max_silence_duration"),
    ({"matchers": ['queue="x"'], "ends_at": EARLIEST + 1}, "would already be over"),
    ({"matchers": ['queue="x"'], "duration": "1h", "created_by": "x" * 300}, "created_by: String should have"),
    ({"matchers": ['queue="x"'], "duration": "1h", "comment": 7}, "comment: Input should be a valid string"),
    ([1, 2], "body: Input should be an object"),
])
def test_a_bad_silence_is_one_400_that_names_the_field(served: Served, client: httpx.Client, body: Any,
                                                        field: str) -> None:
    before = len(served.silences())
    response = post(client, "/api/v1/silences", body)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]
    assert len(served.silences()) == before


@pytest.mark.parametrize("raw, field", [
    (b'{"matchers": ["q=\\"x\\""], "ends_at": NaN}', "ends_at"),
    (b'{"matchers": ["q=\\"x\\""], "ends_at": Infinity}', "ends_at"),
    (b'{"matchers": ["q=\\"x\\""], "ends_at": 1e400}', "ends_at"),
    (b"[" * 30_000 + b"]" * 30_000, "body"),
    (b"\xff\xfe not json", "body"),
    (b'{"matchers": ["q=\\"x\\""], "duration": "1h"', "body"),
])
def test_bodies_that_break_json_parsers_are_400(served: Served, client: httpx.Client, raw: bytes, field: str) -> None:
    response = client.post("/api/v1/silences", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(field) or field in response.json()["error"]


def test_a_huge_body_is_refused_before_it_is_read(client: httpx.Client) -> None:
    response = post(client, "/api/v1/silences", {"matchers": ['q="x"'], "duration": "1h", "comment": "x" * 200_000})
    assert response.status_code == 413


def test_filters_and_acks_are_bounded(served: Served, client: httpx.Client) -> None:
    many = client.get("/api/v1/alerts", params=[("filter", f'q="{i}"') for i in range(21)])
    assert many.status_code == 400 and "at most 20 filters" in many.json()["error"]
    long = client.get("/api/v1/alerts", params={"filter": "q=" + "x" * 1001})
    assert long.status_code == 400
    fp = fingerprint(client)
    for body, text in (({}, "by: Field required"), ({"by": "   "}, "by: String should have at least 1"),
                       ({"by": "ann", "duration": "9999d"}, "max_silence_duration"),
                       ({"by": "ann", "until": 1}, "until: Extra inputs")):
        response = post(client, f"/api/v1/alerts/{fp}/ack", body)
        assert response.status_code == 400 and text in response.json()["error"], (body, response.text)
    assert post(client, f"/api/v1/alerts/{fp}/ack", {"by": "ann", "duration": "2h"}).status_code == 200


def test_the_openapi_document_shows_the_same_limits(client: httpx.Client) -> None:
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert schemas["NewSilence"]["additionalProperties"] is False
    assert schemas["NewSilence"]["properties"]["matchers"]["maxItems"] == MAX_MATCHERS
    assert schemas["Ack"]["required"] == ["by"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
FIELDS = ["matchers", "starts_at", "ends_at", "duration", "created_by", "comment", "by", "x"]
MATCHER = st.one_of(
    st.text(max_size=30),
    st.builds(lambda name, op, value: f'{name}{op}"{value}"', st.sampled_from(["queue", "alertname", "a b", ""]),
              st.sampled_from(["=", "!=", "=~", "!~", "=="]), st.text(max_size=20)),
)
VALUES = {
    "matchers": st.lists(MATCHER, max_size=4) | JSON,
    "starts_at": st.floats() | st.integers() | st.floats(EARLIEST, LATEST) | JSON,
    "ends_at": st.floats() | st.integers() | st.floats(EARLIEST, LATEST) | JSON,
    "duration": st.sampled_from(["1h", "0s", "10y", "-1h", "1h30m", "99999999999999999999d", ""]) | JSON,
}
BODY = st.fixed_dictionaries({}, optional={f: VALUES.get(f, JSON) for f in FIELDS}) | JSON


def assert_nothing_stored_is_garbage(served: Served) -> None:
    for silence in served.silences():
        assert math.isfinite(silence.starts_at) and math.isfinite(silence.ends_at)
        assert silence.starts_at < silence.ends_at <= LATEST + YEAR
        assert 1 <= len(silence.matchers) <= MAX_MATCHERS
        assert silence.ends_at - silence.starts_at <= YEAR + 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODY)
def test_fuzz_silences_never_500_nor_store_garbage(served: Served, client: httpx.Client, body: Any) -> None:
    response = post(client, "/api/v1/silences", body)
    assert response.status_code in OK, (body, response.status_code, response.text)
    assert isinstance(response.json(), dict)
    assert_nothing_stored_is_garbage(served)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODY, path=st.sampled_from(["real", "other"]))
def test_fuzz_acks_never_500(client: httpx.Client, body: Any, path: str) -> None:
    fp = fingerprint(client) if path == "real" else "f" * 64
    response = post(client, f"/api/v1/alerts/{fp}/ack", body)
    assert response.status_code in OK, (body, response.status_code, response.text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.lists(st.tuples(st.sampled_from(["state", "filter", "status", "x"]), MATCHER | st.text(max_size=30)),
                      max_size=5),
       path=st.sampled_from(["/api/v1/alerts", "/api/v1/silences", "/api/v1/status", "/health/celery"]))
def test_fuzz_queries_never_500(client: httpx.Client, query: list[tuple[str, str]], path: str) -> None:
    response = client.get(path, params=query)
    assert response.status_code in OK | {503}, (path, query, response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()))
def test_fuzz_raw_bodies_on_every_mutating_route_never_500(served: Served, client: httpx.Client, raw: bytes) -> None:
    for path in ("/api/v1/silences", f"/api/v1/alerts/{fingerprint(client)}/ack"):
        response = client.post(path, content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code in OK, (path, raw, response.status_code, response.text)
    assert_nothing_stored_is_garbage(served)
