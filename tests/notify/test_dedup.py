"""Dedup decisions: whether a group is notified, and the reason, from what the receiver was last told."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from alertd.notify.dedup import (
    FIRST,
    INHIBITION_ENDED,
    NEW_ALERTS,
    PREVIOUS_FAILED,
    REPEAT,
    RESOLVED,
    SILENCE_ENDED,
    Decision,
    decide,
)
from alertd.state.base import NotificationLogEntry

NOW = 10_000.0
REPEAT_INTERVAL = 3600.0


def entry(firing: set[str], resolved: Collection[str] = (), *, sent_ago: float = 60.0, failed: bool = False) -> NotificationLogEntry:
    return NotificationLogEntry("g", "r", NOW - sent_ago, frozenset(firing), frozenset(resolved), "x", "id", failed)


CASES = [
    ("first", None, {"a"}, set(), True, {}, Decision(True, FIRST)),
    ("never-notified-only-resolved", None, set(), {"a"}, True, {}, Decision(False, "only resolved alerts, never notified")),
    ("unchanged", entry({"a"}), {"a"}, set(), True, {}, Decision(False, "unchanged")),
    ("new-alert", entry({"a"}), {"a", "b"}, set(), True, {}, Decision(True, NEW_ALERTS)),
    ("one-of-two-resolved", entry({"a", "b"}), {"a"}, {"b"}, True, {}, Decision(True, RESOLVED)),
    ("one-resolved-no-send-resolved", entry({"a", "b"}), {"a"}, {"b"}, False, {}, Decision(False, "unchanged")),
    ("all-resolved", entry({"a"}), set(), {"a"}, True, {}, Decision(True, RESOLVED)),
    ("all-resolved-no-send-resolved-records", entry({"a"}), set(), {"a"}, False, {}, Decision(False, RESOLVED, record=True)),
    ("resolve-already-sent", entry({"a"}, {"b"}), {"a"}, {"b"}, True, {}, Decision(False, "unchanged")),
    ("fired-and-resolved-between-flushes", entry(set(), {"a"}), set(), {"b"}, True, {},
     Decision(False, "fired and resolved between two flushes")),
    ("repeat-due", entry({"a"}, sent_ago=REPEAT_INTERVAL), {"a"}, set(), True, {}, Decision(True, REPEAT)),
    ("repeat-not-yet", entry({"a"}, sent_ago=REPEAT_INTERVAL - 1), {"a"}, set(), True, {}, Decision(False, "unchanged")),
    ("previous-failed", entry({"a"}, failed=True), {"a"}, set(), True, {}, Decision(True, PREVIOUS_FAILED)),
    ("silence-ended", entry({"a"}), {"a"}, set(), True, {"a": "silence (s1)"}, Decision(True, SILENCE_ENDED)),
    ("inhibition-ended", entry({"a"}), {"a"}, set(), True, {"a": "inhibition (inhibit_rules[0])"},
     Decision(True, INHIBITION_ENDED)),
    ("unmuted-but-resolved-is-not-news", entry({"a"}), {"a"}, {"b"}, False, {"b": "silence (s1)"}, Decision(False, "unchanged")),
    ("silence-ended-never-notified", None, {"a"}, set(), True, {"a": "silence (s1)"}, Decision(True, SILENCE_ENDED)),
]


@pytest.mark.parametrize(
    ("entry_", "firing", "resolved", "send_resolved", "unmuted", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decide(
    entry_: NotificationLogEntry | None,
    firing: set[str],
    resolved: set[str],
    send_resolved: bool,
    unmuted: dict[str, str],
    expected: Decision,
) -> None:
    got = decide(entry_, firing, resolved, now=NOW, repeat_interval=REPEAT_INTERVAL, send_resolved=send_resolved,
                 unmuted=unmuted)
    assert got == expected
