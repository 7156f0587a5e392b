"""Schedule evaluation with Celery's own classes: interval, crontab and solar entries, and the ones alertd refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import Celery
from celery.schedules import crontab, schedule, solar

from alertd.collectors.beat.schedules import next_due, period, read_beat_schedule


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def app_with(entries: dict[str, Any], timezone: str = "UTC") -> Celery:
    app = Celery("beat-tests", set_as_current=False)
    app.conf.timezone = timezone
    app.conf.beat_schedule = entries
    return app


class Unevaluable(schedule):
    """A custom schedule whose estimate fails, as a buggy subclass would."""

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        raise RuntimeError("no estimate")


@pytest.mark.parametrize(
    ("given", "after", "due", "every"),
    [
        pytest.param(30, "2026-03-10 12:00:05", "2026-03-10 12:00:35", 30, id="seconds"),
        pytest.param(2.5, "2026-03-10 12:00:05", "2026-03-10 12:00:07.500", 2.5, id="float-seconds"),
        pytest.param(timedelta(hours=1), "2026-03-10 12:00:05", "2026-03-10 13:00:05", 3600, id="timedelta"),
        pytest.param(crontab(minute="*/15"), "2026-03-10 12:07:30", "2026-03-10 12:15:00", 900, id="crontab-every-15m"),
        pytest.param(crontab(minute="*/15"), "2026-03-10 12:15:00.2", "2026-03-10 12:30:00", 900,
                     id="crontab-run-just-after-due"),
        pytest.param(crontab(minute=0, hour=3), "2026-03-10 12:00:00", "2026-03-11 03:00:00", 86400, id="crontab-daily"),
        # 2026-03-10 is a Tuesday: the next Monday 09:00 is the 16th, then a week.
        pytest.param(crontab(minute=0, hour=9, day_of_week="mon"), "2026-03-10 12:00:00", "2026-03-16 09:00:00",
                     7 * 86400, id="crontab-weekly"),
        pytest.param(crontab(minute=0, hour=0, day_of_month=1), "2026-03-10 12:00:00", "2026-04-01 00:00:00",
                     30 * 86400, id="crontab-monthly"),
    ],
)
def test_next_due_and_period(given: Any, after: str, due: str, every: float) -> None:
    entries, problems, _ = read_beat_schedule(app_with({"e": {"task": "t", "schedule": given}}), ts(after))
    assert problems == []
    sched = entries[0].schedule
    assert next_due(sched, ts(after)) == pytest.approx(ts(due))
    assert period(sched, ts(after)) == pytest.approx(every)


def test_crontab_follows_the_app_timezone() -> None:
    app = app_with({"e": {"task": "t", "schedule": crontab(minute=0, hour=9)}}, timezone="Europe/Berlin")
    entries, _, _ = read_beat_schedule(app, ts("2026-03-10 00:00:00"))
    # 09:00 in Berlin in March (CET, UTC+1) is 08:00 UTC.
    assert next_due(entries[0].schedule, ts("2026-03-10 00:00:00")) == pytest.approx(ts("2026-03-10 08:00:00"))


def test_solar_sunrise_is_computed_and_moves_a_day_on() -> None:
    app = app_with({"e": {"task": "t", "schedule": solar("sunrise", 52.52, 13.40)}})  # Berlin
    entries, problems, _ = read_beat_schedule(app, ts("2026-01-15 00:00:00"))
    assert problems == []
    first = next_due(entries[0].schedule, ts("2026-01-15 00:00:00"))
    # Sunrise in Berlin in mid-January is a little after 07:00 UTC (08:00 local).
    assert ts("2026-01-15 06:45:00") < first < ts("2026-01-15 07:30:00")
    assert period(entries[0].schedule, ts("2026-01-15 00:00:00")) == pytest.approx(86400, abs=180)


def test_the_schedule_clock_is_left_as_it_was() -> None:
    sched = schedule(timedelta(seconds=10))
    before = sched.nowfun
    next_due(sched, ts("2026-03-10 12:00:00"))
    assert sched.nowfun is before


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param({"task": "t", "schedule": "every day"}, "schedule: must be seconds, a timedelta", id="string"),
        pytest.param({"task": "t", "schedule": None}, "schedule: must be seconds", id="missing"),
        pytest.param({"task": "t", "schedule": True}, "schedule: must be seconds", id="bool"),
        pytest.param({"task": "t", "schedule": [1, 2]}, "schedule: must be seconds", id="list"),
        pytest.param({"task": "t", "schedule": 0}, "cannot be evaluated", id="zero"),
        pytest.param({"task": "t", "schedule": -5}, "cannot be evaluated", id="negative"),
        pytest.param({"task": "t", "schedule": float("nan")}, "schedule: ", id="nan"),
        pytest.param({"task": "t", "schedule": Unevaluable(5)}, "RuntimeError: no estimate", id="failing-subclass"),
        pytest.param({"schedule": 5}, "task: must be a task name", id="no-task"),
        pytest.param({"task": 42, "schedule": 5}, "task: must be a task name", id="task-not-a-string"),
        pytest.param("*/5 * * * *", "an entry must be a mapping", id="entry-not-a-mapping"),
    ],
)
def test_an_entry_alertd_cannot_evaluate_is_one_problem(entry: Any, message: str) -> None:
    app = app_with({"good": {"task": "t", "schedule": 60}, "bad": entry})
    entries, problems, overflow = read_beat_schedule(app, ts("2026-03-10 12:00:00"))
    assert [e.name for e in entries] == ["good"]
    assert len(problems) == 1 and problems[0].entry == "bad"
    assert message in problems[0].message
    assert problems[0].field == "beat_schedule['bad']"
    assert "\n" not in problems[0].message
    assert overflow == 0


def test_a_beat_schedule_that_is_not_a_mapping_is_a_problem() -> None:
    _, problems, _ = read_beat_schedule(app_with(["not", "a", "mapping"]), 0.0)  # type: ignore[arg-type]
    assert problems and "must be a mapping" in problems[0].message


class Unreadable(dict):  # type: ignore[type-arg]
    def items(self) -> Any:
        raise RuntimeError("lazy settings failed")


def test_a_beat_schedule_that_cannot_be_read_is_a_problem() -> None:
    app = app_with({})
    app.conf.beat_schedule = Unreadable(a={"task": "t", "schedule": 5})
    entries, problems, _ = read_beat_schedule(app, 0.0)
    assert entries == []
    assert problems[0].message == "beat_schedule cannot be read: RuntimeError: lazy settings failed"


def test_entries_beyond_the_cap_are_counted_not_kept() -> None:
    app = app_with({f"e{i}": {"task": "t", "schedule": 60} for i in range(25)})
    entries, problems, overflow = read_beat_schedule(app, 0.0, max_entries=10)
    assert len(entries) == 10 and overflow == 15 and problems == []


def test_args_are_kept_as_the_worker_shows_them() -> None:
    app = app_with({
        "a": {"task": "t", "schedule": 60, "args": [5, "x"]},
        "b": {"task": "t", "schedule": 60},
    })
    entries, _, _ = read_beat_schedule(app, 0.0)
    assert [e.args_repr for e in entries] == ["(5, 'x')", "()"]
