"""The settings model: the only list of alertd's options (``config.example.toml`` documents each one)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alertd.collectors.events.settings import EventSettings
from alertd.dispatch.config import (
    EscalationPolicyConfig,
    InhibitRuleConfig,
    NotifySettings,
    ReceiverConfig,
    RootRouteConfig,
    TimeRangeConfig,
)
from alertd.durations import Duration


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StateSettings(_Section):
    url: str = Field("var/alertd.db", description="state store: a SQLite file path (relative to the config file) or memory://")
    resolved_retention: Duration = Field(900.0, description="how long a resolved alert is kept for its resolve")
    history_retention: Duration = Field(30 * 86400.0, description="how long alert history is kept")
    outage_tolerance: Duration = Field(
        300.0, description="a pending alert keeps its `for` progress across a restart if alertd was down less than this"
    )


class SeriesSettings(_Section):
    lookback: Duration = Field(300.0, description="how old the newest sample may be to count as the current value")
    retention: Duration = Field(3600.0, description="samples kept per series (raised to cover the longest window)")
    drop_after: Duration = Field(3600.0, description="a series with no sample for this long is forgotten")


class CelerySettings(_Section):
    broker_url: str = Field("redis://127.0.0.1:6379/0", description="the broker, as Celery takes it")
    app: str | None = Field(None, description="the Celery app as module:attribute, to read its settings")
    queues: list[str] = Field(default_factory=lambda: ["celery"], description="queues whose depth is watched")
    broker_transport_options: dict[str, Any] = Field(default_factory=dict)


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class Config(_Section):
    """alertd.toml."""

    rule_files: list[str] = Field(default_factory=lambda: ["rules/*.toml", "rules/*.yaml", "rules/*.yml"])
    evaluation_interval: Duration = 15.0
    external_url: str = "http://127.0.0.1:9464"
    state: StateSettings = Field(default_factory=StateSettings)
    series: SeriesSettings = Field(default_factory=SeriesSettings)
    celery: CelerySettings = Field(default_factory=CelerySettings)
    collectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    events: EventSettings = Field(default_factory=EventSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    # Notifications (docs/notifications.md): who is told, how alerts are grouped, muted and escalated.
    receivers: dict[str, ReceiverConfig] = Field(default_factory=dict)
    route: RootRouteConfig = Field(default_factory=RootRouteConfig)
    inhibit_rules: list[InhibitRuleConfig] = Field(default_factory=list)
    time_intervals: dict[str, list[TimeRangeConfig]] = Field(default_factory=dict)
    escalation_policies: dict[str, EscalationPolicyConfig] = Field(default_factory=dict)
    notify: NotifySettings = Field(default_factory=NotifySettings)
