"""The values that flow through alertd: samples from collectors, alert states, alerts for the pipeline."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

LabelsKey = tuple[tuple[str, str], ...]
"""A label set as a sorted tuple of pairs: hashable, the identity of a series or an alert."""

EMPTY_LABELS: Mapping[str, str] = MappingProxyType({})


def labels_key(labels: Mapping[str, str]) -> LabelsKey:
    return tuple(sorted(labels.items()))


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one series at one time, as a collector reports it."""

    name: str
    labels: Mapping[str, str]
    value: float
    timestamp: float

    @property
    def key(self) -> tuple[str, LabelsKey]:
        return (self.name, labels_key(self.labels))


class AlertState(enum.StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


def fingerprint(rule: str, labels: Mapping[str, str]) -> str:
    """A stable identity for one (rule, label set): the same across restarts, replicas and versions."""
    payload = json.dumps([rule, sorted(labels.items())], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as the notification pipeline sees it: firing, or resolved at ``ends_at``."""

    fingerprint: str
    rule: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: AlertState
    value: float | None
    starts_at: float
    ends_at: float | None = None
    generator_url: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", self.rule)

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def resolved(self) -> bool:
        return self.state is AlertState.RESOLVED
