"""The settings model: the only list of alertd's options (``config.example.toml`` documents each one)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alertd.collectors.beat.settings import BeatSettings
from alertd.collectors.events.settings import EventSettings
from alertd.config.secrets import SECRET
from alertd.dispatch.config import (
    EscalationPolicyConfig,
    InhibitRuleConfig,
    NotifySettings,
    ReceiverConfig,
    RootRouteConfig,
    TimeRangeConfig,
)
from alertd.durations import Duration, Interval
from alertd.templating.budget import Budget


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StateSettings(_Section):
    url: str = Field("var/alertd.db", description="state store: a SQLite file path (relative to the config file) or memory://")
    resolved_retention: Duration = Field(900.0, description="how long a resolved alert is kept for its resolve")
    history_retention: Duration = Field(30 * 86400.0, description="how long alert history is kept")
    outage_tolerance: Duration = Field(
        300.0, description="a pending alert keeps its `for` progress across a restart if alertd was down less than this"
    )

    @field_validator("url")
    @classmethod
    def _known_store(cls, url: str) -> str:
        from alertd.errors import StateStoreError
        from alertd.state.base import sqlite_path

        try:
            sqlite_path(url)
        except StateStoreError as exc:
            raise ValueError(str(exc)) from None
        return url


class SeriesSettings(_Section):
    lookback: Duration = Field(300.0, description="how old the newest sample may be to count as the current value")
    retention: Duration = Field(3600.0, description="samples kept per series (raised to cover the longest window)")
    drop_after: Duration = Field(3600.0, description="a series with no sample for this long is forgotten")


class CelerySettings(_Section):
    broker_url: str = Field("redis://127.0.0.1:6379/0", description="the broker, as Celery takes it")
    app: str | None = Field(None, description="the Celery app as module:attribute, to read its settings")
    queues: list[str] = Field(default_factory=lambda: ["celery"], description="queues whose depth is watched")
    broker_transport_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("broker_url")
    @classmethod
    def _readable_broker(cls, url: str) -> str:
        from alertd.collectors.connection import classify_broker_url
        from alertd.errors import CollectorError

        try:
            classify_broker_url(url)
        except CollectorError as exc:
            raise ValueError(str(exc)) from None
        return url


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class HttpSettings(_Section):
    """``[http]``: the API, health checks, ``/metrics`` and the dashboard."""

    enabled: bool = Field(True, description="serve HTTP at all")
    listen: str = Field("127.0.0.1:9464", description="host:port; loopback unless you mean otherwise")
    token: str | None = Field(
        None, description="bearer token every call that changes something must carry (a secret)", json_schema_extra=SECRET
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="host names served besides loopback names and external_url's host ('*': any, unsafe)",
    )
    max_silence_duration: Duration = Field(
        365 * 86400.0, gt=0, description="longest silence or acknowledgement the API accepts"
    )
    tls_cert: str | None = Field(None, description="PEM certificate file; with tls_key, serve HTTPS")
    tls_key: str | None = Field(None, description="PEM private key file")

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"listen must be host:port, got {self.listen!r}")
        return self


class ReloadSettings(_Section):
    """``[reload]``: reloading the configuration and rules without a restart (SIGHUP and POST /-/reload too)."""

    watch: bool = Field(True, description="reload when the config file or a rule file changes")
    watch_interval: Interval = Field(2.0, description="how often the files are checked for a change")


class DeadmanSettings(_Section):
    """``[deadman]``: ping a URL while evaluation is healthy, so that an outside service notices alertd dying."""

    url: str | None = Field(
        None, description="URL to GET at every interval, none: no pings (a secret: its path is often a token)",
        json_schema_extra=SECRET,
    )
    interval: Interval = Field(60.0, description="time between pings")
    timeout: Duration = Field(10.0, description="time limit of one ping")
    max_evaluation_age: Duration | None = Field(
        None, description="no ping when the last evaluation is older than this (default: 3 x evaluation_interval)"
    )


class TemplateSettings(_Section):
    """``[templates]``: what rendering one template (a rule's annotations, a receiver's message) may spend."""

    time_limit: Duration = Field(0.1, gt=0, le=10, description="time of one rendering (then as much CPU time again)")
    max_iterations: int = Field(100_000, gt=0, le=10_000_000, description="loop iterations of one rendering")
    max_output: int = Field(
        65_536, gt=0, le=16 * 1024 * 1024,
        description="characters of output of one rendering, and of any single value a template builds",
    )

    def budget(self) -> Budget:
        return Budget(time=self.time_limit, iterations=self.max_iterations, output=self.max_output)


class Config(_Section):
    """alertd.toml."""

    rule_files: list[str] = Field(default_factory=lambda: ["rules/*.toml", "rules/*.yaml", "rules/*.yml"])
    evaluation_interval: Interval = 15.0
    external_url: str = "http://127.0.0.1:9464"
    state: StateSettings = Field(default_factory=StateSettings)
    series: SeriesSettings = Field(default_factory=SeriesSettings)
    celery: CelerySettings = Field(default_factory=CelerySettings)
    collectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    events: EventSettings = Field(default_factory=EventSettings)
    beat: BeatSettings = Field(default_factory=BeatSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    reload: ReloadSettings = Field(default_factory=ReloadSettings)
    deadman: DeadmanSettings = Field(default_factory=DeadmanSettings)
    templates: TemplateSettings = Field(default_factory=TemplateSettings)
    shutdown_grace: Duration = Field(10.0, description="time in-flight notifications get to finish at shutdown")
    # Notifications (docs/notifications.md): who is told, how alerts are grouped, muted and escalated.
    receivers: dict[str, ReceiverConfig] = Field(default_factory=dict)
    route: RootRouteConfig = Field(default_factory=RootRouteConfig)
    inhibit_rules: list[InhibitRuleConfig] = Field(default_factory=list)
    time_intervals: dict[str, list[TimeRangeConfig]] = Field(default_factory=dict)
    escalation_policies: dict[str, EscalationPolicyConfig] = Field(default_factory=dict)
    notify: NotifySettings = Field(default_factory=NotifySettings)
