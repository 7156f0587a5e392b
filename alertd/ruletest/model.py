"""The rule test file format as pydantic models."""

from __future__ import annotations

from typing import Any

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


class RuleTest(_Strict):
    name: str
    interval: Duration = 60.0
    series: list[InputSeries] = Field(default_factory=list)
    events: list[InputEvent] = Field(default_factory=list)
    alerts: list[AlertExpectation] = Field(default_factory=list)


class TestFile(_Strict):
    rule_files: list[str]
    evaluation_interval: Duration = 60.0
    tests: list[RuleTest]

    def event_dicts(self, test: RuleTest) -> list[dict[str, Any]]:
        return [{**(e.model_extra or {}), "type": e.type, "at": e.at} for e in test.events]
