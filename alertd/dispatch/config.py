"""The notification sections of alertd.toml in, validated models out: receivers, the route tree, inhibit rules,
time intervals, escalation policies and the pipeline's own settings.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alertd.dispatch.matchers import Matchers, MatchersField
from alertd.durations import Duration

# Keys of a receiver that the pipeline reads; every other key belongs to the notifier's ``Settings``.
PIPELINE_RECEIVER_KEYS = frozenset({"type", "fallback", "rate_limit", "rate_burst"})
ALL_LABELS = "..."
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ReceiverConfig(BaseModel):
    """``[receivers.<name>]``: a notifier type, the pipeline's keys, and the notifier's own settings."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="the notifier: console, or an installed plugin's type (slack, pagerduty...)")
    fallback: str | None = Field(None, description="receiver that gets what this one refuses for good")
    rate_limit: float | None = Field(
        None, gt=0, description="at most this many notifications per second to the receiver's destination "
        "(default: the notifier's budget, else notify.rate_limit)"
    )
    rate_burst: int = Field(1, ge=1, description="notifications that may go out at once before rate_limit applies")

    def notifier_settings(self) -> dict[str, Any]:
        """The keys the notifier's ``Settings`` model validates."""
        return dict(self.model_extra or {})


class RouteConfig(_Section):
    """One node of the route tree. Unset options are inherited from the parent route."""

    receiver: str | None = Field(None, description="where the notifications of this route go")
    matchers: MatchersField = Field(default_factory=Matchers, description="all must match (root: none)")
    continue_: bool = Field(False, alias="continue", description="after matching, try the next sibling too")
    group_by: list[str] | None = Field(None, description='labels that make a group; ["..."] is all labels')
    group_wait: Duration | None = Field(None, description="wait before the first notification of a new group")
    group_interval: Duration | None = Field(None, description="wait before notifying a group about changes")
    repeat_interval: Duration | None = Field(None, description="wait before repeating an unchanged notification")
    send_resolved: bool | None = Field(None, description="notify when the alerts of a group resolve")
    mute_time_intervals: list[str] | None = Field(None, description="named time intervals when nothing is sent")
    active_time_intervals: list[str] | None = Field(None, description="named time intervals outside which nothing is sent")
    escalation: str | None = Field(None, description="escalation policy: later receivers while unacknowledged")
    fallback: str | None = Field(None, description="receiver for what the route's receiver refuses for good")
    routes: list[RouteConfig] = Field(default_factory=list, description="child routes, tried in order")

    @field_validator("group_interval", "repeat_interval")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("must be longer than 0s")
        return value

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if ALL_LABELS in value and len(value) > 1:
            raise ValueError('"..." groups by all labels and cannot be combined with other labels')
        for label in value:
            if label != ALL_LABELS and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", label):
                raise ValueError(f"invalid label name {label!r}")
        return value


class RootRouteConfig(RouteConfig):
    """``[route]``: the root of the tree matches every alert and sets the defaults every child inherits."""

    receiver: str | None = Field(None, description="where every alert goes that no child route takes")
    group_by: list[str] | None = Field(default_factory=lambda: ["alertname"], description='default ["alertname"]')
    group_wait: Duration | None = 30.0
    group_interval: Duration | None = 300.0
    repeat_interval: Duration | None = 4 * 3600.0
    send_resolved: bool | None = True

    @model_validator(mode="after")
    def _root(self) -> RootRouteConfig:
        if self.matchers:
            raise ValueError("the root route matches every alert: it cannot have matchers")
        if self.continue_:
            raise ValueError("the root route cannot have continue = true")
        return self


class InhibitRuleConfig(_Section):
    """``[[inhibit_rules]]``: a firing source alert mutes the target alerts that agree on ``equal``."""

    source_matchers: MatchersField = Field(description="the alerts that mute")
    target_matchers: MatchersField = Field(description="the alerts that are muted")
    equal: list[str] = Field(default_factory=list, description="labels that must be equal in source and target")

    @field_validator("source_matchers", "target_matchers")
    @classmethod
    def _not_empty(cls, value: Matchers) -> Matchers:
        if not value:
            raise ValueError("at least one matcher is needed (an empty list would match every alert)")
        return value


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december")
_TIME_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class TimeRangeConfig(_Section):
    """One part of a named time interval; every list that is given must match (an empty list: any)."""

    times: list[str] = Field(default_factory=list, description='"HH:MM-HH:MM", end exclusive, "24:00" allowed')
    weekdays: list[str] = Field(default_factory=list, description='"monday", or a range "monday:friday"')
    days_of_month: list[str] = Field(default_factory=list, description='"1", "1:15", "-1" (last day)')
    months: list[str] = Field(default_factory=list, description='"january", "1:3"')
    years: list[str] = Field(default_factory=list, description='"2026", "2026:2027"')
    location: str = Field("UTC", description="IANA time zone the times are in, e.g. Europe/Berlin")

    @field_validator("location")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin") from None
        return value

    @field_validator("times")
    @classmethod
    def _times(cls, value: list[str]) -> list[str]:
        for text in value:
            m = _TIME_RANGE.match(text)
            if not m:
                raise ValueError(f'invalid time range {text!r}: write "09:00-17:00"')
            h1, m1, h2, m2 = (int(g) for g in m.groups())
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if m1 > 59 or m2 > 59 or start >= 24 * 60 or end > 24 * 60 or end <= start:
                raise ValueError(f"invalid time range {text!r}: the end must follow the start within one day")
        return value

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_range(text, names=WEEKDAYS, low=1, high=7)
        return value

    @field_validator("days_of_month")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_range(text, low=-31, high=31, signed=True)
        return value

    @field_validator("months")
    @classmethod
    def _months(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_range(text, names=MONTHS, low=1, high=12)
        return value

    @field_validator("years")
    @classmethod
    def _years(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_range(text, low=1, high=9999)
        return value


def parse_range(
    text: str, *, names: tuple[str, ...] = (), low: int, high: int, signed: bool = False
) -> tuple[int, int]:
    """ "monday:friday" -> (1, 5); "3" -> (3, 3); "-1" -> (-1, -1). Raises ValueError."""

    def one(part: str) -> int:
        p = part.strip().lower()
        if p in names:
            return names.index(p) + 1
        try:
            n = int(p)
        except ValueError:
            known = f" (or one of {', '.join(names)})" if names else ""
            raise ValueError(f"invalid value {part!r} in {text!r}: expected a number{known}") from None
        if not low <= n <= high or (signed and n == 0):
            raise ValueError(f"{n} in {text!r} is out of range {low}..{high}")
        return n

    # "-1" is one signed day; "1:-1" a range to the last day.
    parts = text.split(":")
    if len(parts) == 1:
        n = one(parts[0])
        return n, n
    if len(parts) != 2:
        raise ValueError(f"invalid range {text!r}: write start:end")
    start, end = one(parts[0]), one(parts[1])
    if not signed and end < start:
        raise ValueError(f"invalid range {text!r}: the end comes before the start")
    return start, end


class EscalationLevelConfig(_Section):
    receiver: str = Field(description="who is notified at this level")
    after: Duration = Field(description="how long the alert has been unacknowledged before this level")


class EscalationPolicyConfig(_Section):
    """``[escalation_policies.<name>]``: level 0 is the route's receiver; these levels come after it."""

    levels: list[EscalationLevelConfig] = Field(min_length=1, description="later levels, in order of `after`")

    @field_validator("levels")
    @classmethod
    def _ordered(cls, value: list[EscalationLevelConfig]) -> list[EscalationLevelConfig]:
        afters = [level.after for level in value]
        if afters != sorted(afters):
            raise ValueError("levels must be in order of `after`")
        return value


class NotifySettings(_Section):
    """``[notify]``: how the pipeline delivers."""

    retry_base: Duration = Field(1.0, description="first retry waits up to this long (full jitter)")
    retry_max: Duration = Field(300.0, description="retries wait at most this long")
    deadline: Duration = Field(6 * 3600.0, description="no attempt starts this long after the notification was made")
    rate_limit: float | None = Field(
        None, gt=0, description="notifications per second to a destination without a budget of its own"
    )
    outbox_resume: bool = Field(True, description="deliver notifications left in the outbox by a previous run")
    outbox_retention: Duration = Field(7 * 86400.0, description="how long finished outbox rows are kept")
    max_alerts: int = Field(100, ge=1, description="alerts listed in one notification; the rest are counted")
    max_rendered_length: int = Field(20000, ge=100, description="characters of one rendered template")


def is_name(value: str) -> bool:
    return bool(_NAME.match(value))
