"""Beat entries' runs from task events, through the event translator, on given times."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from celery import Celery
from celery.schedules import crontab

from alertd.collectors.beat import BeatSettings, BeatTracker, beat_tracker_for, read_beat_schedule
from alertd.collectors.events.translate import EventTranslator
from alertd.models import Sample

T0 = 1_773_144_000.0  # 2026-03-10 12:00:00 UTC


def make_app(entries: dict[str, Any]) -> Celery:
    app = Celery("beat-tests", set_as_current=False)
    app.conf.timezone = "UTC"
    app.conf.beat_schedule = entries
    return app


def translator_for(entries: dict[str, Any], **kwargs: Any) -> EventTranslator:
    found, problems, _ = read_beat_schedule(make_app(entries), T0)
    assert problems == []
    return EventTranslator(beat=BeatTracker(found, now=T0, **kwargs))


def run(
    tr: EventTranslator, uuid: str, task: str, received: float, started: float, outcome: str = "task-succeeded",
    args: str = "()",
) -> list[Sample]:
    out = tr.feed({"type": "task-received", "uuid": uuid, "name": task, "args": args, "hostname": "w@h",
                   "timestamp": received, "local_received": received})
    out += tr.feed({"type": "task-started", "uuid": uuid, "hostname": "w@h", "local_received": started})
    out += tr.feed({"type": outcome, "uuid": uuid, "hostname": "w@h", "local_received": started + 0.1,
                    "exception": "ValueError('x')"})
    return out


def latest(samples: list[Sample], name: str, entry: str | None = None) -> float | None:
    found = [s.value for s in samples if s.name == name and (entry is None or s.labels.get("entry") == entry)]
    return found[-1] if found else None


def test_before_any_run_the_entry_is_due_one_period_after_watching_began() -> None:
    tr = translator_for({"sync": {"task": "tasks.sync", "schedule": 60}})
    out = tr.tick(T0)
    due = [s for s in out if s.name == "celery_beat_entry_next_due_timestamp_seconds"]
    assert [(s.labels, s.value) for s in due] == [({"entry": "sync", "task": "tasks.sync"}, T0 + 60)]
    assert latest(out, "celery_beat_entry_period_seconds") == 60
    assert latest(out, "celery_beat_last_sent_timestamp_seconds") == T0
    assert latest(out, "celery_beat_entries") == 1
    assert latest(out, "celery_beat_entry_last_run_timestamp_seconds") is None


def test_a_run_sets_last_run_delay_and_the_next_due_time() -> None:
    tr = translator_for({"sync": {"task": "tasks.sync", "schedule": 60}})
    out = run(tr, "u1", "tasks.sync", received=T0 + 60.01, started=T0 + 61.5)
    assert latest(out, "celery_beat_entry_last_run_timestamp_seconds") == T0 + 61.5
    assert latest(out, "celery_beat_entry_last_run_delay_seconds") == pytest.approx(1.5)
    # Beat counts an interval from the moment it sent the task: the next run is due 60s after receipt.
    assert latest(out, "celery_beat_entry_next_due_timestamp_seconds") == pytest.approx(T0 + 120.01)
    assert latest(out, "celery_beat_entry_last_run_failed") == 0
    assert latest(out, "celery_beat_last_sent_timestamp_seconds") == T0 + 60.01
    # The translator's own counters are still there.
    assert latest(out, "celery_task_successes_total") == 1


def test_a_crontab_run_is_due_at_the_next_cron_time() -> None:
    tr = translator_for({"quarter": {"task": "tasks.q", "schedule": crontab(minute="*/15")}})
    assert latest(tr.tick(T0), "celery_beat_entry_next_due_timestamp_seconds") == T0 + 900
    out = run(tr, "u1", "tasks.q", received=T0 + 900.2, started=T0 + 900.3)
    assert latest(out, "celery_beat_entry_next_due_timestamp_seconds") == T0 + 1800
    assert latest(out, "celery_beat_entry_last_run_delay_seconds") == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("outcomes", "failed", "in_a_row"),
    [
        pytest.param(["task-failed"], 1, 1, id="one-failure"),
        pytest.param(["task-failed"] * 3, 1, 3, id="three-failures"),
        pytest.param(["task-failed", "task-failed", "task-succeeded"], 0, 0, id="success-resets"),
        pytest.param(["task-succeeded", "task-failed", "task-failed"], 1, 2, id="two-after-a-success"),
    ],
)
def test_consecutive_failures(outcomes: list[str], failed: float, in_a_row: float) -> None:
    tr = translator_for({"sync": {"task": "tasks.sync", "schedule": 60}})
    out: list[Sample] = []
    for i, outcome in enumerate(outcomes, start=1):
        out += run(tr, f"u{i}", "tasks.sync", received=T0 + 60 * i, started=T0 + 60 * i + 0.1, outcome=outcome)
    assert latest(out, "celery_beat_entry_last_run_failed") == failed
    assert latest(out, "celery_beat_entry_consecutive_failures") == in_a_row


def test_a_run_whose_started_event_was_lost_counts_from_its_receipt() -> None:
    tr = translator_for({"sync": {"task": "tasks.sync", "schedule": 60}})
    tr.feed({"type": "task-received", "uuid": "u1", "name": "tasks.sync", "local_received": T0 + 60.0})
    out = tr.feed({"type": "task-failed", "uuid": "u1", "local_received": T0 + 61.0, "exception": "E()"})
    assert latest(out, "celery_beat_entry_last_run_timestamp_seconds") == T0 + 60.0
    assert latest(out, "celery_beat_entry_consecutive_failures") == 1


def test_entries_of_one_task_are_told_apart_by_args_then_by_due_time() -> None:
    tr = translator_for({
        "eu": {"task": "tasks.report", "schedule": 60, "args": ["eu"]},
        "us": {"task": "tasks.report", "schedule": 60, "args": ["us"]},
        "hourly": {"task": "tasks.sweep", "schedule": 3600},
        "minutely": {"task": "tasks.sweep", "schedule": 60},
    })
    out = run(tr, "u1", "tasks.report", received=T0 + 60, started=T0 + 60.1, args="('us',)")
    assert latest(out, "celery_beat_entry_last_run_timestamp_seconds", "us") == T0 + 60.1
    assert latest(out, "celery_beat_entry_last_run_timestamp_seconds", "eu") is None
    out = run(tr, "u2", "tasks.sweep", received=T0 + 60, started=T0 + 60.1)
    assert latest(out, "celery_beat_entry_last_run_timestamp_seconds", "minutely") == T0 + 60.1
    assert latest(out, "celery_beat_entry_last_run_timestamp_seconds", "hourly") is None


def test_tasks_no_entry_sends_are_ignored_and_runs_in_flight_are_bounded() -> None:
    found, _, _ = read_beat_schedule(make_app({"sync": {"task": "tasks.sync", "schedule": 60}}), T0)
    tracker = BeatTracker(found, now=T0, max_runs=5)
    tr = EventTranslator(beat=tracker)
    out = run(tr, "x", "tasks.other", received=T0 + 1, started=T0 + 2)
    assert not [s for s in out if s.name.startswith("celery_beat_")]
    for i in range(50):  # received, never started nor ended (a worker that died holding them)
        tr.feed({"type": "task-received", "uuid": f"r{i}", "name": "tasks.sync", "local_received": T0 + i})
    assert len(tracker._runs) == 5


def test_series_are_restated_every_refresh_interval_only() -> None:
    tr = translator_for({"sync": {"task": "tasks.sync", "schedule": 60}}, refresh_interval=30.0)
    assert latest(tr.tick(T0), "celery_beat_entry_next_due_timestamp_seconds") is not None
    assert latest(tr.tick(T0 + 10), "celery_beat_entry_next_due_timestamp_seconds") is None
    assert latest(tr.tick(T0 + 30), "celery_beat_entry_next_due_timestamp_seconds") is not None


def test_a_garbage_entry_is_logged_and_counted_and_the_others_are_watched(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app({"good": {"task": "tasks.sync", "schedule": 60}, "bad": {"task": "tasks.x", "schedule": "soon"}})
    with caplog.at_level(logging.WARNING):
        tracker = beat_tracker_for(app, BeatSettings(), T0)
    assert tracker is not None
    out = tracker.tick(T0)
    assert {s.labels["entry"] for s in out if s.name == "celery_beat_entry_next_due_timestamp_seconds"} == {"good"}
    assert latest(out, "celery_beat_entries_invalid") == 1
    assert "beat entry not watched: beat_schedule['bad']: schedule: must be seconds" in caplog.text


@pytest.mark.parametrize(
    ("app", "settings"),
    [
        pytest.param(None, BeatSettings(), id="no-app"),
        pytest.param(make_app({}), BeatSettings(), id="no-entries"),
        pytest.param(make_app({"a": {"task": "t", "schedule": 5}}), BeatSettings(enabled=False), id="disabled"),
    ],
)
def test_no_tracker_when_there_is_nothing_to_watch(app: Celery | None, settings: BeatSettings) -> None:
    assert beat_tracker_for(app, settings, T0) is None


def test_overflow_is_counted() -> None:
    app = make_app({f"e{i}": {"task": f"t{i}", "schedule": 60} for i in range(12)})
    tracker = beat_tracker_for(app, BeatSettings(max_entries=10), T0)
    assert tracker is not None
    out = tracker.tick(T0)
    assert latest(out, "celery_beat_entries") == 10
    assert latest(out, "celery_beat_entries_overflow") == 2
