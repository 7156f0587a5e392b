"""Test doubles for plugin authors and alertd's own tests: a recording notifier, a virtual clock, an in-memory
state store, builders of alerts and notifications, and a way to run a pipeline on the virtual clock.

    from alertd.testing import RecordingNotifier, VirtualClock, make_alert, make_notification
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from alertd.clock import VirtualClock
from alertd.errors import NotifyError, RetryableError
from alertd.models import Alert, AlertState, fingerprint
from alertd.notifiers.base import Notification, Notifier, NotifierContext, ReceiverSettings
from alertd.notifiers.reasons import Reason
from alertd.state.memory import MemoryStateStore

if TYPE_CHECKING:
    from alertd.notify.pipeline import NotificationPipeline

__all__ = [
    "MemoryStateStore",
    "RecordingNotifier",
    "VirtualClock",
    "make_alert",
    "make_notification",
    "make_notifier_context",
    "run_until",
]


class RecordingNotifier(Notifier):
    """Records every notification it is given; can be told to fail the next N attempts with a given error.

    ``attempts`` holds every call, ``sent`` only the deliveries that succeeded, and ``sent_at`` when each
    succeeded (on the context's clock: give it the pipeline's).
    """

    type_name = "recording"
    Settings = ReceiverSettings
    templates: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        name: str = "recording",
        settings: ReceiverSettings | None = None,
        context: NotifierContext | None = None,
    ) -> None:
        super().__init__(name, settings or ReceiverSettings(), context or make_notifier_context())
        self.attempts: list[Notification] = []
        self.sent: list[Notification] = []
        self.sent_at: list[float] = []
        self._failing = 0
        self._error: NotifyError = RetryableError("recording notifier told to fail")
        self.closed = False

    def fail(self, times: int = 1, error: NotifyError | None = None) -> RecordingNotifier:
        """Make the next ``times`` attempts raise ``error`` (default: a RetryableError)."""
        self._failing = times
        if error is not None:
            self._error = error
        return self

    def fail_forever(self, error: NotifyError | None = None) -> RecordingNotifier:
        return self.fail(-1, error)

    def recover(self) -> None:
        self._failing = 0

    async def send(self, notification: Notification) -> None:
        self.attempts.append(notification)
        if self._failing:
            self._failing -= 1 if self._failing > 0 else 0
            raise self._error
        self.sent.append(notification)
        self.sent_at.append(self.context.clock.now())

    async def close(self) -> None:
        self.closed = True

    @property
    def alert_names(self) -> list[list[str]]:
        """For each delivered notification, the names of its alerts: a compact thing to assert on."""
        return [sorted(a.name for a in n.alerts) for n in self.sent]

    @property
    def reasons(self) -> list[str]:
        return [n.reason for n in self.sent]


def make_notifier_context(clock: VirtualClock | None = None) -> NotifierContext:
    """A context whose HTTP client is never meant to be used (a notifier under test gets its own)."""
    import httpx

    return NotifierContext(http=httpx.AsyncClient(), clock=clock or VirtualClock())


def make_alert(**overrides: Any) -> Alert:
    """A firing alert named "TestAlert"; any field may be overridden, and ``labels`` are merged over the
    defaults. The fingerprint follows the rule and labels unless given."""
    labels: dict[str, str] = {"alertname": str(overrides.pop("name", "TestAlert")), "severity": "warning"}
    labels.update(overrides.pop("labels", {}) or {})
    rule = str(overrides.pop("rule", labels["alertname"]))
    state = AlertState(overrides.pop("state", AlertState.FIRING))
    fields: dict[str, Any] = {
        "fingerprint": fingerprint(rule, labels),
        "rule": rule,
        "labels": labels,
        "annotations": {"summary": f"{labels['alertname']} is firing"},
        "state": state,
        "value": 1.0,
        "starts_at": 0.0,
        "ends_at": None,
    }
    fields.update(overrides)
    if fields["state"] is AlertState.RESOLVED and fields["ends_at"] is None:
        fields["ends_at"] = fields["starts_at"]
    return Alert(**fields)


def make_notification(
    alerts: Iterable[Alert] | None = None,
    *,
    receiver: str = "test",
    group_labels: Mapping[str, str] | None = None,
    reason: str = "first notification",
    created_at: float = 0.0,
    **overrides: Any,
) -> Notification:
    """A notification of ``alerts`` (default: one firing alert), as the pipeline would hand it over; ``reason``
    may be a ``Reason`` or its text ("acknowledged by ann" gives the kind ``ACKNOWLEDGED``)."""
    chosen = tuple(alerts) if alerts is not None else (make_alert(),)
    labels = dict(group_labels) if group_labels is not None else {"alertname": chosen[0].name if chosen else ""}
    fields: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "receiver": receiver,
        "group_key": "{}:" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())),
        "group_labels": labels,
        "alerts": chosen,
        "reason": Reason.parse(reason),  # a ReasonKind, read from the text when a plain string is given
        "created_at": created_at,
    }
    fields.update(overrides)
    return Notification(**fields)


async def run_until(pipeline: NotificationPipeline, clock: VirtualClock, when: float) -> None:
    """Move the virtual clock to ``when``, stopping at every time something is due (a group flush, a retry)."""
    while True:
        due = pipeline.next_due()
        if due is None or due > when:
            break
        if due > clock.now():
            clock.set(due)
        await pipeline.tick()
    if when > clock.now():
        clock.set(when)
    await pipeline.tick()
