"""A Prometheus Pushgateway's ``/metrics`` in, the pushed metrics of its fresh groups and the age of every group out.

Workers push per process under their own grouping key (``alertd.instrument``: job, instance, pid). A group is
the label set of its ``push_time_seconds`` sample; a group older than ``stale_after`` is a process that stopped
pushing (it died, or was recycled by ``max_tasks_per_child``): its series are not returned, and ``stale_groups``
lists it so that the daemon marks its series stale. Rules see absence, never a frozen value or zero.

Samples: every pushed counter (as ``<name>_total``), gauge, histogram (``_bucket`` with ``le``, ``_sum``,
``_count``) and summary sample with all its labels, plus ``push_time_seconds`` and ``push_failure_time_seconds``;
``alertd_pushgateway_group_age_seconds{<group labels>}``, ``alertd_pushgateway_groups`` and
``alertd_pushgateway_stale_groups``. Labels with an empty value are dropped, as Prometheus does. Not kept: the
Pushgateway's own ``go_*``, ``process_*`` and ``pushgateway_*`` metrics (they have no ``job`` label; the same
names pushed by a worker are kept), the ``<name>_created`` gauges that accompany pushed counters, histograms and
summaries, and NaN values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import httpx
from pydantic import Field, field_validator

from alertd.collectors.base import Collector, CollectorContext, CollectorSettings
from alertd.collectors.connection import describe_error
from alertd.collectors.exposition import Series, prefix_filter
from alertd.collectors.exposition import parse_exposition as read_exposition
from alertd.durations import Duration, Interval
from alertd.models import Sample
from alertd.owner import in_thread

OWN_PREFIXES = ("go_", "process_", "pushgateway_")
GROUP_METRICS = ("push_time_seconds", "push_failure_time_seconds")


class PushgatewaySettings(CollectorSettings):
    enabled: bool = Field(True, description="run this collector (only when its section is in the configuration)")
    interval: Interval = Field(15.0, description="how often the Pushgateway is scraped")
    timeout: Duration = Field(5.0, description="how long one scrape (request and parsing) may take")
    url: str = Field("http://127.0.0.1:9091", description="the Pushgateway's base URL; /metrics is read")
    stale_after: Duration = Field(
        300.0, description="a group whose push_time_seconds is older than this is stale: its series read as absent"
    )
    metric_prefixes: list[str] = Field(
        default_factory=list,
        description="keep only metrics whose name starts with one of these (filtered before parsing); empty: all",
    )

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"the Pushgateway URL must start with http:// or https://, not {value!r}")
        return value.rstrip("/")


def parse_exposition(text: str, prefixes: Sequence[str] = ()) -> list[Series]:
    """Prometheus text exposition in, ``(sample name, labels, value)`` out, without the Pushgateway's own metrics.

    Labels are as exposed, empty values included (the Pushgateway writes ``instance=""`` for a group pushed
    without one). With ``prefixes``, sample lines of other metrics are dropped before the parser sees them
    (``push_time_seconds`` and ``push_failure_time_seconds`` are always kept). Raises CollectorError on
    malformed text.
    """
    by_prefix = prefix_filter((*prefixes, *GROUP_METRICS) if prefixes else ())

    def keep(line: str) -> bool:
        if line.startswith(OWN_PREFIXES) and 'job="' not in line:
            return False
        return by_prefix is None or by_prefix(line)

    series = read_exposition(text, keep, source="pushgateway")
    return [s for s in series if "job" in s[1] or not s[0].startswith(OWN_PREFIXES)]


@dataclass
class Reading:
    """One scrape, split by group."""

    samples: list[Sample] = field(default_factory=list)
    groups: list[tuple[dict[str, str], float]] = field(default_factory=list)  # (labels, age)
    stale_groups: list[dict[str, str]] = field(default_factory=list)


def _clean(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if v != ""}


def split_groups(series: list[Series], now: float, stale_after: float) -> Reading:
    """Assign each sample to its group and keep the samples of fresh groups only.

    A group is the label set of a ``push_time_seconds`` sample. A sample belongs to the group whose labels it
    has, the group with the most labels first (groups ``{job}`` and ``{job, pid}`` may both exist). Stale
    groups are listed with every grouping label name of the Pushgateway, empty where the group has none, so
    that label matchers built from them select that group's series and no other.
    """
    reading = Reading()
    push_times: dict[tuple[tuple[str, str], ...], float] = {}
    shapes: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for name, labels, value in series:
        if name == "push_time_seconds":
            names = tuple(sorted(labels))
            push_times[tuple((k, labels[k]) for k in names)] = value
            shapes.setdefault(names, set()).add(tuple(labels[k] for k in names))
    all_names = sorted({n for names in shapes for n in names})
    stale: set[tuple[tuple[str, str], ...]] = set()
    for key, pushed in push_times.items():
        age = now - pushed
        reading.groups.append((_clean(dict(key)), age))
        if age > stale_after:
            stale.add(key)
            reading.stale_groups.append(dict.fromkeys(all_names, "") | dict(key))
    by_size = sorted(shapes, key=len, reverse=True)
    for name, labels, value in series:
        if stale:
            for names in by_size:
                values = tuple(labels.get(k, "") for k in names)
                if values in shapes[names]:
                    hidden = tuple(zip(names, values, strict=True)) in stale
                    break
            else:
                hidden = False
            if hidden:
                continue
        reading.samples.append(Sample(name, _clean(labels), value, now))
    return reading


class PushgatewayCollector(Collector):
    """Scrapes a Pushgateway and hides the series of groups that stopped pushing."""

    type_name: ClassVar[str] = "pushgateway"
    Settings: ClassVar[type[CollectorSettings]] = PushgatewaySettings
    default_enabled: ClassVar[bool] = False

    def __init__(self, settings: CollectorSettings, context: CollectorContext) -> None:
        super().__init__(settings, context)
        self.opts = settings if isinstance(settings, PushgatewaySettings) else PushgatewaySettings(**settings.model_dump())
        self.stale_groups: list[dict[str, str]] = []
        self._client: httpx.AsyncClient | None = None

    @property
    def metrics_url(self) -> str:
        return self.opts.url.rstrip("/") + "/metrics"

    async def fetch(self) -> str:
        if self._client is None:
            # Ask for the text format: a Pushgateway may otherwise answer in protobuf.
            self._client = httpx.AsyncClient(
                timeout=self.opts.timeout, headers={"Accept": "text/plain;version=0.0.4;q=1,*/*;q=0.1"}
            )
        try:
            response = await self._client.get(self.metrics_url)
            response.raise_for_status()
        except Exception as exc:
            if not isinstance(exc, httpx.HTTPStatusError):
                await self._reset()
            raise describe_error(exc, self.metrics_url, timeout=self.opts.timeout) from None
        return response.text

    async def collect(self) -> list[Sample]:
        text = await self.fetch()
        now = self.context.clock.now()
        # Parsing is pure Python and takes about a second for 50,000 samples: a thread keeps the loop responsive.
        reading = await in_thread(self._read, text, now)
        self.stale_groups = reading.stale_groups
        out = reading.samples
        for labels, age in reading.groups:
            out.append(Sample("alertd_pushgateway_group_age_seconds", labels, age, now))
        out.append(Sample("alertd_pushgateway_groups", {}, float(len(reading.groups)), now))
        out.append(Sample("alertd_pushgateway_stale_groups", {}, float(len(reading.stale_groups)), now))
        return out

    def _read(self, text: str, now: float) -> Reading:
        return split_groups(parse_exposition(text, self.opts.metric_prefixes), now, self.opts.stale_after)

    async def _reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def close(self) -> None:
        await self._reset()
