"""What counts as a well-formed event, field by field (the consumer drops the rest before Celery's code)."""

from __future__ import annotations

import pytest

from alertd.collectors.events import validate

NOW = 1_700_000_000.0
GOOD = {"type": "task-failed", "timestamp": NOW, "hostname": "w1@host", "uuid": "u-1", "clock": 7, "utcoffset": -1,
        "exception": "ValueError('x')", "traceback": "Traceback ..."}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({}, None, id="celery-task-failed"),
        pytest.param({"type": "worker-heartbeat", "freq": 2.0, "active": 1, "loadavg": [0.1, 0.2, 0.3]}, None,
                     id="celery-heartbeat"),
        pytest.param({"type": "mallory-was-here"}, None, id="unknown-type-is-not-junk"),
        pytest.param({"type": None}, validate.MISSING_FIELD, id="no-type"),
        pytest.param({"timestamp": None}, validate.MISSING_FIELD, id="no-timestamp"),
        pytest.param({"type": 7}, validate.BAD_FIELD, id="type-not-a-string"),
        pytest.param({"type": "x" * 65}, validate.BAD_FIELD, id="type-too-long"),
        pytest.param({"timestamp": "yesterday"}, validate.BAD_FIELD, id="timestamp-a-string"),
        pytest.param({"timestamp": True}, validate.BAD_FIELD, id="timestamp-a-bool"),
        pytest.param({"timestamp": float("inf")}, validate.BAD_FIELD, id="timestamp-infinite"),
        pytest.param({"timestamp": 1e12}, validate.BAD_FIELD, id="timestamp-far-future"),
        pytest.param({"hostname": ["w1"]}, validate.BAD_FIELD, id="hostname-a-list"),
        pytest.param({"hostname": "w" * 256}, validate.BAD_FIELD, id="hostname-too-long"),
        pytest.param({"name": "t" * 513}, validate.BAD_FIELD, id="task-name-too-long"),
        pytest.param({"exception": {"nested": 1}}, validate.BAD_FIELD, id="exception-not-text"),
        pytest.param({"clock": "7"}, validate.BAD_FIELD, id="clock-a-string"),
        pytest.param({"clock": -1}, validate.BAD_FIELD, id="clock-negative"),
        pytest.param({"utcoffset": 100}, validate.BAD_FIELD, id="utcoffset-out-of-range"),
        pytest.param({"freq": 0}, validate.BAD_FIELD, id="freq-zero"),
        pytest.param({"active": -3}, validate.BAD_FIELD, id="active-negative"),
        pytest.param({"loadavg": ["high"]}, validate.BAD_FIELD, id="loadavg-not-numbers"),
    ],
)
def test_check_event(change: dict[str, object], reason: str | None) -> None:
    event = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    assert validate.check_event(event) == reason


@pytest.mark.parametrize("body", [[1], "task-failed", 5, None])
def test_anything_but_an_object_is_not_an_event(body: object) -> None:
    assert validate.check_event(body) == validate.NOT_AN_OBJECT


def test_the_type_label_is_celerys_own_or_other() -> None:
    assert validate.event_type_label("task-failed") == "task-failed"
    assert validate.event_type_label("worker-heartbeat") == "worker-heartbeat"
    assert validate.event_type_label("mallory-was-here") == validate.OTHER
    assert validate.event_type_label(None) == validate.OTHER
