"""Instant PromQL queries against a Prometheus server's HTTP API (``/api/v1/query``) in, their results as
series out, so that rules can read what Prometheus already has.

``[collectors.prometheus.queries]`` names each query by the metric its results become: ``celery_queue_rate =
'sum by (queue) (rate(celery_tasks_total[5m]))'`` gives one ``celery_queue_rate{queue="..."}`` series per
element of the result (its labels without ``__name__``); a scalar result gives one series without labels. Each
query is a collector of its own (``prometheus:<metric>``): it runs on the section's interval and fails alone
(an ``error`` status, a timeout, a result of another type, more than ``max_samples`` elements, a body over
``max_bytes``), which ``alertd_collector_success`` reports to the CollectorFailing rule. NaN values are dropped.
The query's ``timeout`` is sent along, so that Prometheus gives up when alertd does.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, ClassVar

import httpx
from pydantic import Field, field_validator

from alertd.collectors.base import Collector, CollectorContext, CollectorSettings
from alertd.collectors.connection import display_url
from alertd.collectors.http_source import HttpSourceSettings, make_client, read_limited
from alertd.errors import CollectorError
from alertd.models import Sample

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class PrometheusSettings(HttpSourceSettings):
    url: str = Field("http://127.0.0.1:9090", description="the Prometheus server's base URL; /api/v1/query is called")
    max_samples: int = Field(
        10_000, gt=0, description="a query whose result has more elements than this fails instead of flooding the store"
    )
    queries: dict[str, str] = Field(
        default_factory=dict, description="metric name = PromQL instant query: the results become that metric's series"
    )

    @field_validator("queries")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for metric, query in value.items():
            if not METRIC_NAME.match(metric):
                raise ValueError(f"{metric!r} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
            if not query.strip():
                raise ValueError(f"the query of {metric!r} is empty")
        return value


def _value(pair: Any) -> float:
    """A ``[timestamp, "value"]`` pair's value (Prometheus writes NaN and ±Inf as strings)."""
    if not isinstance(pair, list) or len(pair) != 2:
        raise ValueError(f"not a [timestamp, value] pair: {str(pair)[:80]}")
    return float(pair[1])


def read_result(metric: str, payload: Any, max_samples: int, now: float) -> list[Sample]:
    """A decoded ``/api/v1/query`` answer in, samples of ``metric`` out; CollectorError when it is not a result."""
    if not isinstance(payload, dict):
        raise CollectorError("Prometheus answered something that is not a query result")
    if payload.get("status") != "success":
        kind = payload.get("errorType") or "error"
        raise CollectorError(f"Prometheus refused the query: {kind}: {str(payload.get('error') or '')[:300]}")
    data = payload.get("data")
    kind = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    values: list[tuple[dict[str, str], float]] = []
    try:
        if kind == "scalar":
            values.append(({}, _value(result)))
        elif kind == "vector" and isinstance(result, list):
            if len(result) > max_samples:
                raise CollectorError(f"the query returned {len(result):,} samples, more than max_samples ({max_samples:,})")
            for element in result:
                labels = {str(k): str(v) for k, v in (element.get("metric") or {}).items() if k != "__name__"}
                values.append((labels, _value(element.get("value"))))
        else:
            raise CollectorError(f"the query returned a {kind or 'malformed'} result: write an instant vector or scalar query")
    except (AttributeError, TypeError, ValueError) as exc:
        raise CollectorError(f"Prometheus answered a malformed result: {exc}") from None
    return [Sample(metric, labels, value, now) for labels, value in values if not math.isnan(value)]


class PrometheusCollector(Collector):
    """Runs one named query."""

    type_name: ClassVar[str] = "prometheus"
    Settings: ClassVar[type[CollectorSettings]] = PrometheusSettings
    default_enabled: ClassVar[bool] = False

    def __init__(self, settings: CollectorSettings, context: CollectorContext, metric: str = "") -> None:
        super().__init__(settings, context)
        if not isinstance(settings, PrometheusSettings):
            raise TypeError("a PrometheusCollector runs one query: build it with PrometheusCollector.instances")
        self.opts = settings
        self.metric = metric
        self.query = self.opts.queries.get(metric, "")
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def instances(cls, settings: CollectorSettings, context: CollectorContext) -> list[Collector]:
        if not isinstance(settings, PrometheusSettings):
            raise TypeError("the prometheus section's settings must be PrometheusSettings")
        return [cls(settings, context, metric) for metric in sorted(settings.queries)]

    @property
    def name(self) -> str:
        return f"prometheus:{self.metric}"

    @property
    def query_url(self) -> str:
        return self.opts.url.rstrip("/") + "/api/v1/query"

    async def collect(self) -> list[Sample]:
        if self._client is None:
            self._client = make_client(self.opts, "application/json")
        params = {"query": self.query, "timeout": f"{self.opts.timeout:g}s"}
        try:
            body = await read_limited(self._client, self.query_url, self.opts.max_bytes, timeout=self.opts.timeout, params=params)
        except CollectorError:
            await self._reset()
            raise
        try:
            payload = json.loads(body.content)
        except ValueError:
            if body.status != 200:
                raise body.error(display_url(self.query_url)) from None
            raise CollectorError(f"{display_url(self.query_url)} answered something that is not JSON") from None
        # Prometheus answers a bad query with 400 or 422 and an error payload, which says more than the status.
        return read_result(self.metric, payload, self.opts.max_samples, self.context.clock.now())

    async def _reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def close(self) -> None:
        await self._reset()
