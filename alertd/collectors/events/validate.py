"""What a well-formed Celery event looks like: a message from the event exchange is checked here, before it
reaches the receiver's clock, the translator or a label.

Anyone who can publish on the broker can publish on ``celeryev``, so every field that alertd reads is checked
for its type and bounds; a message or an event that fails is dropped with one of ``REASONS``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# Celery's own event types (celery/events, celery/worker); any other type is counted as OTHER.
KNOWN_TYPES = frozenset({
    "task-sent", "task-received", "task-started", "task-succeeded", "task-failed", "task-rejected",
    "task-revoked", "task-retried", "task-cancelled",
    "worker-online", "worker-heartbeat", "worker-offline", "worker-elect",
})
OTHER = "other"

# Why a message or an event was dropped: the values of ``alertd_events_malformed_total{reason}``.
TOO_LARGE = "too_large"          # the body is longer than max_message_bytes
TOO_DEEP = "too_deep"            # nested deeper than the decoder's recursion limit
CONTENT_TYPE = "content_type"    # a serializer the receiver does not accept (pickle, yaml...)
UNDECODABLE = "undecodable"      # not valid JSON (or a broken compression or encoding)
NOT_AN_OBJECT = "not_an_object"  # the body, or an item of a batch, is not a JSON object
MISSING_FIELD = "missing_field"  # no type or no timestamp
BAD_FIELD = "bad_field"          # a field of the wrong type, out of range or too long
REASONS = (TOO_LARGE, TOO_DEEP, CONTENT_TYPE, UNDECODABLE, NOT_AN_OBJECT, MISSING_FIELD, BAD_FIELD)

# Timestamps outside 2000-01-01 .. 2100-01-01 are not a worker's clock.
_EARLIEST, _LATEST = 946_684_800.0, 4_102_444_800.0
# Longest accepted strings, by field: Celery's own values are far shorter (uuids are 36 characters).
_STRINGS = {
    "type": 64,
    "hostname": 255,
    "uuid": 255,
    "name": 512,
    "task_name": 512,
    "exception_type": 255,
}
_TEXTS = ("exception", "traceback")  # free text: any length within the message bound, but text


def event_type_label(kind: object) -> str:
    """The ``type`` label of an event counter: one of Celery's event types, or ``other``."""
    return kind if isinstance(kind, str) and kind in KNOWN_TYPES else OTHER


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_event(event: object) -> str | None:
    """None when ``event`` can be handed to the receiver and the translator, else the reason it cannot."""
    if not isinstance(event, Mapping):
        return NOT_AN_OBJECT
    kind = event.get("type")
    timestamp = event.get("timestamp")
    if kind is None or timestamp is None:
        return MISSING_FIELD
    if not _number(timestamp) or not _EARLIEST <= timestamp <= _LATEST:
        return BAD_FIELD
    for field, limit in _STRINGS.items():
        value = event.get(field)
        if value is not None and not (isinstance(value, str) and len(value) <= limit):
            return BAD_FIELD
    if any(event.get(field) is not None and not isinstance(event.get(field), str) for field in _TEXTS):
        return BAD_FIELD
    return _check_numbers(event)


def _check_numbers(event: Mapping[str, Any]) -> str | None:
    # The receiver adjusts its Lamport clock with ``clock`` and the timestamp with ``utcoffset`` (hours).
    clock = event.get("clock")
    if clock is not None and not (isinstance(clock, int) and not isinstance(clock, bool) and clock >= 0):
        return BAD_FIELD
    offset = event.get("utcoffset")
    if offset is not None and not (_number(offset) and -24 <= offset <= 24):
        return BAD_FIELD
    freq = event.get("freq")
    if freq is not None and not (_number(freq) and 0 < freq <= 86_400):
        return BAD_FIELD
    active = event.get("active")
    if active is not None and not (_number(active) and active >= 0):
        return BAD_FIELD
    load = event.get("loadavg")
    if load is not None and not (isinstance(load, list | tuple) and len(load) <= 3 and all(map(_number, load))):
        return BAD_FIELD
    return None
