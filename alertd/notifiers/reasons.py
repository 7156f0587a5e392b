"""Why a notification is sent: a typed value that notifiers test (``notification.reason.kind``) and that reads
as the text people see ("first notification", "escalated to level 2: unacknowledged for 15m",
"acknowledged by ann: looking"), since ``Reason`` is a ``str``."""

from __future__ import annotations

import re
from enum import StrEnum


class ReasonKind(StrEnum):
    FIRST = "first"  # the group's first notification to this receiver
    NEW_ALERTS = "new_alerts"  # alerts joined the group
    RESOLVED = "resolved"  # alerts of the group resolved
    REPEAT = "repeat"  # repeat_interval elapsed with nothing new
    SILENCE_ENDED = "silence_ended"
    INHIBITION_ENDED = "inhibition_ended"
    PREVIOUS_FAILED = "previous_failed"  # the previous notification was given up: this one says it again
    ESCALATION = "escalation"  # an escalation level's receiver, after the policy's wait
    ACKNOWLEDGED = "acknowledged"  # someone acknowledged an alert of the group (alertd ack, the API)
    FALLBACK = "fallback"  # the receiver refused for good; this goes to its fallback receiver
    TEST = "test"  # alertd notify: a test notification
    OTHER = "other"  # a text written by an older alertd that matches none of the above


TEXTS = {
    ReasonKind.FIRST: "first notification",
    ReasonKind.NEW_ALERTS: "new alerts",
    ReasonKind.RESOLVED: "alerts resolved",
    ReasonKind.REPEAT: "repeat interval elapsed",
    ReasonKind.SILENCE_ENDED: "silence ended",
    ReasonKind.INHIBITION_ENDED: "inhibition ended",
    ReasonKind.PREVIOUS_FAILED: "previous notification failed",
    ReasonKind.ESCALATION: "escalated",
    ReasonKind.ACKNOWLEDGED: "acknowledged",
    ReasonKind.FALLBACK: "fallback",
    ReasonKind.TEST: "test notification",
    ReasonKind.OTHER: "",
}
_LEVEL = re.compile(r"^escalated to level (\d+)")


class Reason(str):
    """A reason: its ``kind`` (and escalation ``level``), and the text shown to people."""

    kind: ReasonKind
    level: int | None

    def __new__(cls, kind: ReasonKind, text: str | None = None, *, level: int | None = None) -> Reason:
        obj = super().__new__(cls, TEXTS[kind] if text is None else text)
        obj.kind = kind
        obj.level = level
        return obj

    def __reduce__(self) -> tuple[object, ...]:
        return (Reason, (self.kind, str(self)), {"level": self.level})

    @classmethod
    def escalation(cls, level: int, waited: str) -> Reason:
        return cls(ReasonKind.ESCALATION, f"escalated to level {level}: unacknowledged for {waited}", level=level)

    @classmethod
    def acknowledged(cls, by: str, comment: str = "") -> Reason:
        return cls(ReasonKind.ACKNOWLEDGED, f"acknowledged by {by}" + (f": {comment}" if comment else ""))

    @classmethod
    def fallback(cls, receiver: str, reason: str) -> Reason:
        return cls(ReasonKind.FALLBACK, f"fallback for {receiver}: {reason}")

    @classmethod
    def parse(cls, text: str, kind: str | None = None, level: int | None = None) -> Reason:
        """A reason read back (the outbox): its stored kind, else recognised from the text."""
        if isinstance(text, Reason):
            return text
        if kind is not None and kind in ReasonKind.__members__.values():
            return cls(ReasonKind(kind), text, level=level)
        for candidate, known in TEXTS.items():
            if known and text == known:
                return cls(candidate, text)
        if match := _LEVEL.match(text):
            return cls(ReasonKind.ESCALATION, text, level=int(match.group(1)))
        for prefix, candidate in (("acknowledged", ReasonKind.ACKNOWLEDGED), ("fallback for", ReasonKind.FALLBACK)):
            if text.startswith(prefix):
                return cls(candidate, text)
        return cls(ReasonKind.OTHER, text)
