"""The notifier contract: receiver settings validated at load time, one async ``send``, and nothing else.

A notifier raises ``RetryableError`` (with ``retry_after`` when the service said so) or ``PermanentError``;
retries, backoff, rate limits, metrics and logging live in the notification pipeline, once. A notifier may say
what its service rate-limits (``destination``) and the budget the service documents (``rate_budget``); the
pipeline enforces both.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from alertd.clock import Clock, SystemClock
from alertd.durations import Duration
from alertd.models import Alert
from alertd.notifiers.reasons import Reason


class ReceiverSettings(BaseModel):
    """Settings every receiver has; a notifier's own ``Settings`` subclasses this."""

    model_config = ConfigDict(extra="forbid")

    timeout: Duration = Field(10.0, description="one delivery attempt's time limit")
    templates: dict[str, str] = Field(
        default_factory=dict, description="Jinja templates that replace the notifier's defaults, by name"
    )


@dataclass(frozen=True)
class Notification:
    """One message for one receiver about one group of alerts, as the pipeline hands it to a notifier."""

    id: str  # unique per notification: an idempotency key (outbox row, webhook-id)
    receiver: str
    group_key: str  # stable across repeats, restarts and replicas (PagerDuty dedup_key, Slack thread)
    group_labels: Mapping[str, str]
    alerts: tuple[Alert, ...]
    reason: Reason  # why it is sent: its .kind (ReasonKind), and the text people read
    created_at: float
    external_url: str = ""
    rendered: Mapping[str, str] = field(default_factory=dict)  # the notifier's templates, rendered
    truncated_alerts: int = 0  # alerts left out to keep the message within the service's limits

    @property
    def status(self) -> Literal["firing", "resolved"]:
        return "firing" if any(not a.resolved for a in self.alerts) else "resolved"

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if not a.resolved]

    @property
    def resolved(self) -> list[Alert]:
        return [a for a in self.alerts if a.resolved]

    @property
    def common_labels(self) -> dict[str, str]:
        return _common(a.labels for a in self.alerts)

    @property
    def common_annotations(self) -> dict[str, str]:
        return _common(a.annotations for a in self.alerts)

    @property
    def severity(self) -> str:
        """The most severe severity among the firing alerts (or all alerts, when resolved)."""
        order = {"critical": 0, "error": 1, "warning": 2, "info": 3}
        pool = self.firing or list(self.alerts)
        return min((a.severity for a in pool), key=lambda s: order.get(s, 4), default="")


def _common(maps: Any) -> dict[str, str]:
    it = iter(maps)
    first = next(it, None)
    if first is None:
        return {}
    common = dict(first)
    for m in it:
        common = {k: v for k, v in common.items() if m.get(k) == v}
    return common


@dataclass(frozen=True)
class RateBudget:
    """What a service accepts from one destination: ``rate`` requests per second on average, ``burst`` at once."""

    rate: float
    burst: int = 1


def destination_key(kind: str, *parts: str) -> str:
    """A destination's key from values that may be secrets (a webhook URL, a routing key): never the values."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    return f"{kind}:{digest}"


@dataclass
class NotifierContext:
    """What a notifier may use: a shared HTTP client and the clock."""

    http: httpx.AsyncClient
    clock: Clock = field(default_factory=SystemClock)


class Notifier(abc.ABC):
    """Delivers notifications to one kind of service. One instance per configured receiver."""

    type_name: ClassVar[str]
    Settings: ClassVar[type[ReceiverSettings]] = ReceiverSettings
    # Default Jinja templates by name; the pipeline renders them (or the receiver's overrides) into
    # ``Notification.rendered`` before ``send``.
    templates: ClassVar[dict[str, str]] = {}
    # What the service documents as the most it accepts per destination; None: no budget. A receiver's
    # ``rate_limit`` replaces it.
    rate_budget: ClassVar[RateBudget | None] = None

    def __init__(self, name: str, settings: ReceiverSettings, context: NotifierContext) -> None:
        self.name = name
        self.settings = settings
        self.context = context

    @abc.abstractmethod
    async def send(self, notification: Notification) -> None:
        """Deliver, or raise RetryableError / PermanentError. Called by the pipeline only."""

    def destination(self) -> str:
        """What the service rate-limits, as a key: receivers with the same key share one budget and one pause
        after a 429. Default: the receiver's name. Not shown to users, but never make it a secret: see
        ``destination_key``."""
        return f"receiver:{self.name}"

    async def close(self) -> None:  # noqa: B027 - optional: most notifiers use the shared HTTP client
        """Release what the notifier holds; called at shutdown and on reload."""
