"""The rule test file format as pydantic models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alertd.durations import Duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class InputSeries(_Strict):
    """One input series: labels as a selector with only ``=`` matchers, values in the promtool notation."""

    select: str
    values: str


class InputEvent(_Strict):
    """A Celery event at a test time; the other keys are the event's fields (task_name, exception, hostname...)."""

    model_config = ConfigDict(extra="allow")

    at: Duration
    type: str


class ExpectedAlert(_Strict):
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class AlertExpectation(_Strict):
    """At time ``at``, the alerts of ``rule`` that are firing and pending (a list that is left out is not checked)."""

    at: Duration
    rule: str
    firing: list[ExpectedAlert] | None = None
    pending: list[ExpectedAlert] | None = None

    @model_validator(mode="after")
    def _something(self) -> AlertExpectation:
        if self.firing is None and self.pending is None:
            raise ValueError("an expectation needs firing = [...] or pending = [...] (an empty list expects none)")
        return self


class ExpectedNotificationAlert(_Strict):
    """An alert in a notification: its name, and labels it must carry (others may be there too)."""

    name: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    status: Literal["firing", "resolved"] | None = None


class ExpectedNotification(_Strict):
    """One notification; what is left out is not checked."""

    group_labels: dict[str, str] | None = None
    status: Literal["firing", "resolved"] | None = None
    reason: str | None = None
    alerts: list[ExpectedNotificationAlert] | None = None
    # Text that the rendered templates contain: a string (any template) or {template = "text"}.
    contains: str | dict[str, str] | None = None


class NotificationExpectation(_Strict):
    """The notifications ``receiver`` got after the previous expectation for it, up to ``at`` (an empty list
    expects none)."""

    at: Duration
    receiver: str
    notifications: list[ExpectedNotification]


class InputSilence(_Strict):
    """A silence created at ``at``, for ``duration``."""

    at: Duration
    matchers: list[str]
    duration: Duration = 3600.0
    comment: str = ""


class InputAck(_Strict):
    """At ``at``, the firing alerts that ``matchers`` match are acknowledged (for ``expires``, if given)."""

    at: Duration
    matchers: list[str]
    expires: Duration | None = None
    by: str = "alertd test"


class RuleTest(_Strict):
    name: str
    interval: Duration = 60.0
    series: list[InputSeries] = Field(default_factory=list)
    events: list[InputEvent] = Field(default_factory=list)
    alerts: list[AlertExpectation] = Field(default_factory=list)
    notifications: list[NotificationExpectation] = Field(default_factory=list)
    silences: list[InputSilence] = Field(default_factory=list)
    acks: list[InputAck] = Field(default_factory=list)


NOTIFY_SECTIONS = ("receivers", "route", "inhibit_rules", "time_intervals", "escalation_policies", "notify")


class TestFile(_Strict):
    rule_files: list[str]
    evaluation_interval: Duration = 60.0
    tests: list[RuleTest]
    # Where notification expectations take receivers and routes from: an alertd configuration file
    # (relative to the test file), or these sections written inline, as in alertd.toml.
    config: str | None = None
    receivers: dict[str, Any] | None = None
    route: dict[str, Any] | None = None
    inhibit_rules: list[Any] | None = None
    time_intervals: dict[str, Any] | None = None
    escalation_policies: dict[str, Any] | None = None
    notify: dict[str, Any] | None = None

    @property
    def notification_settings(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in NOTIFY_SECTIONS if getattr(self, k) is not None}

    @property
    def tests_notifications(self) -> bool:
        return self.config is not None or bool(self.notification_settings)

    def event_dicts(self, test: RuleTest) -> list[dict[str, Any]]:
        return [{**(e.model_extra or {}), "type": e.type, "at": e.at} for e in test.events]
