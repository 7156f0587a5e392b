"""Any Prometheus text or OpenMetrics endpoint (Flower's ``/metrics``, celery-exporter, a node exporter) in, its
samples with ``job`` and ``instance`` labels out: one collector per ``[collectors.scrape.targets.<name>]``.

Each target runs on its own interval under its own timeout and fails alone: ``scrape_up{target,job,instance}``
is 1 after a good read and 0 after a failed one (an error status, a network failure, a timeout, a body over
``max_bytes``, text that does not parse), and ``alertd_collector_success{collector="scrape:<name>"}`` says the
same to the CollectorFailing rule. After every run, the target's series that the run did not report are marked
stale (as Prometheus does): a failed target's series read as absent, never as their last value.

Labels: every sample gets ``job`` (the target's ``job``, default its name) and ``instance`` (default the URL's
host:port); a sample that carries its own ``job`` or ``instance`` keeps it as ``exported_job`` /
``exported_instance``. Labels with an empty value are dropped, as Prometheus does. Also per run:
``scrape_samples`` (how many samples the target gave, after ``metric_prefixes``) and ``scrape_response_bytes``.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import Field, model_validator

from alertd.collectors.base import Collector, CollectorContext, CollectorSettings
from alertd.collectors.connection import display_url
from alertd.collectors.exposition import ACCEPT, OPENMETRICS_TYPE, Series, parse_exposition, prefix_filter
from alertd.collectors.http_source import DEFAULT_MAX_BYTES, HttpSourceSettings, make_client, read_limited
from alertd.durations import Duration, Interval
from alertd.errors import CollectorError
from alertd.models import Sample
from alertd.owner import in_thread

TARGET_LABELS = ("job", "instance")
SECTION_DEFAULTS = ("interval", "timeout", "max_bytes")


class ScrapeTargetSettings(HttpSourceSettings):
    url: str = Field(description="the full URL of the exposition, e.g. http://flower:5555/metrics")
    job: str | None = Field(None, description="the job label of every sample; default: the target's name")
    instance: str | None = Field(None, description="the instance label of every sample; default: the URL's host:port")
    metric_prefixes: list[str] = Field(
        default_factory=list,
        description="keep only metrics whose name starts with one of these (filtered before parsing); empty: all",
    )

    @property
    def instance_label(self) -> str:
        if self.instance:
            return self.instance
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


class ScrapeSettings(CollectorSettings):
    """``[collectors.scrape]``: defaults for every target, and the targets."""

    enabled: bool = Field(True, description="run the scrape targets (only when this section is in the configuration)")
    interval: Interval = Field(15.0, description="how often each target is read, unless the target says otherwise")
    timeout: Duration = Field(
        5.0, description="how long one read (request and parsing) may take, unless the target says otherwise"
    )
    max_bytes: int = Field(
        DEFAULT_MAX_BYTES, gt=0, description="the largest response read, unless the target says otherwise"
    )
    targets: dict[str, ScrapeTargetSettings] = Field(
        default_factory=dict, description="the endpoints to read, by name: [collectors.scrape.targets.<name>]"
    )

    @model_validator(mode="before")
    @classmethod
    def _targets_inherit(cls, data: Any) -> Any:
        """A target without its own interval, timeout or max_bytes takes the section's."""
        if not isinstance(data, dict) or not isinstance(data.get("targets"), dict):
            return data
        defaults = {k: data[k] for k in SECTION_DEFAULTS if k in data}
        targets = {
            name: {**defaults, **target} if isinstance(target, dict) else target
            for name, target in data["targets"].items()
        }
        return {**data, "targets": targets}

    @model_validator(mode="after")
    def _distinct_targets(self) -> ScrapeSettings:
        seen: dict[tuple[str, str], str] = {}
        for name, target in sorted(self.targets.items()):
            if not name:
                raise ValueError("a scrape target needs a name")
            key = (target.job or name, target.instance_label)
            if key in seen:
                raise ValueError(
                    f"targets {seen[key]!r} and {name!r} would both label their series job={key[0]!r}, "
                    f"instance={key[1]!r}: give one of them its own job or instance"
                )
            seen[key] = name
        return self


def target_labels(labels: dict[str, str], job: str, instance: str) -> dict[str, str]:
    """The sample's labels without empty values, its own job/instance renamed, the target's added."""
    out = {k: v for k, v in labels.items() if v != ""}
    for name in TARGET_LABELS:
        if name in out:
            out[f"exported_{name}"] = out.pop(name)
    out["job"] = job
    out["instance"] = instance
    return out


class ScrapeCollector(Collector):
    """Reads one scrape target."""

    type_name: ClassVar[str] = "scrape"
    Settings: ClassVar[type[CollectorSettings]] = ScrapeSettings
    default_enabled: ClassVar[bool] = False

    def __init__(self, settings: CollectorSettings, context: CollectorContext, target: str = "") -> None:
        if not isinstance(settings, ScrapeTargetSettings):
            raise TypeError("a ScrapeCollector reads one target: build it with ScrapeCollector.instances")
        super().__init__(settings, context)
        self.opts = settings
        self.target = target
        self.job = settings.job or target
        self.instance = settings.instance_label
        self.up_labels = {"target": target, "job": self.job, "instance": self.instance}
        # Every run: this target's series that the run did not report are stale (the daemon marks them).
        self.stale_groups = [{"job": self.job, "instance": self.instance}]
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def instances(cls, settings: CollectorSettings, context: CollectorContext) -> list[Collector]:
        if not isinstance(settings, ScrapeSettings):
            raise TypeError("the scrape section's settings must be ScrapeSettings")
        return [cls(t, context, name) for name, t in sorted(settings.targets.items()) if t.enabled]

    @property
    def name(self) -> str:
        return f"scrape:{self.target}"

    async def collect(self) -> list[Sample]:
        if self._client is None:
            self._client = make_client(self.opts, ACCEPT)
        try:
            body = await read_limited(self._client, self.opts.url, self.opts.max_bytes, timeout=self.opts.timeout)
        except CollectorError:
            await self._reset()  # a connection abandoned mid-body must not go back to the pool
            raise
        if body.status != 200:
            raise body.error(display_url(self.opts.url))
        size = len(body.content)
        openmetrics = body.content_type.startswith(OPENMETRICS_TYPE)
        # Parsing is pure Python (about 20 µs a sample): a thread keeps the loop responsive. The body goes in
        # a holder that the parser empties, so that the bytes are freed once decoded, not after parsing.
        holder = [body.content]
        del body
        series = await in_thread(self._parse, holder, openmetrics)
        now = self.context.clock.now()
        out = [Sample(name, target_labels(labels, self.job, self.instance), value, now) for name, labels, value in series]
        out.append(Sample("scrape_up", self.up_labels, 1.0, now))
        out.append(Sample("scrape_samples", self.up_labels, float(len(series)), now))
        out.append(Sample("scrape_response_bytes", self.up_labels, float(size), now))
        return out

    def _parse(self, holder: list[bytes], openmetrics: bool) -> list[Series]:
        try:
            text = holder.pop().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CollectorError(f"scrape target {self.target} returned text that is not UTF-8 (byte {exc.start})") from None
        return parse_exposition(
            text, prefix_filter(self.opts.metric_prefixes), openmetrics=openmetrics, source=f"scrape target {self.target}"
        )

    def failure_samples(self, error: str) -> list[Sample]:
        return [Sample("scrape_up", self.up_labels, 0.0, self.context.clock.now())]

    async def _reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def close(self) -> None:
        await self._reset()
