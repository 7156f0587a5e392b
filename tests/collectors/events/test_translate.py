"""The event translator: events and ticks on a virtual timeline in, samples out (no broker, no clock)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from alertd.collectors.events.translate import EventTranslator, exception_type
from alertd.models import Sample

W1, W2 = "w1@host", "w2@host"
FAIL = "celery_task_failures_total"

Step = tuple[str, Any]


def received(uuid: str, name: str, at: float) -> Step:
    return ("feed", {"type": "task-received", "uuid": uuid, "name": name, "timestamp": at, "hostname": W1})


def failed(uuid: str, at: float, exc: str = "ValueError('x')", **extra: Any) -> Step:
    return ("feed", {"type": "task-failed", "uuid": uuid, "exception": exc, "timestamp": at, "hostname": W1, **extra})


def event(kind: str, at: float, **fields: Any) -> Step:
    return ("feed", {"type": kind, "timestamp": at, **fields})


def heartbeat(host: str, at: float, freq: float = 2.0, **fields: Any) -> Step:
    return event("worker-heartbeat", at, hostname=host, freq=freq, **fields)


def tick(now: float) -> Step:
    return ("tick", now)


def run(steps: Sequence[Step], **kwargs: Any) -> tuple[EventTranslator, list[Sample]]:
    t = EventTranslator(**kwargs)
    out: list[Sample] = []
    for kind, arg in steps:
        out.extend(t.feed(arg) if kind == "feed" else t.tick(arg))
    return t, out


def latest(samples: Sequence[Sample]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The newest value of every series, keyed by (name, sorted labels)."""
    return {s.key: s.value for s in samples}


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, tuple(sorted(labels.items())))


def series(samples: Sequence[Sample], name: str, **labels: str) -> list[tuple[float, float]]:
    return [(s.timestamp, s.value) for s in samples if s.key == key(name, **labels)]


# -- counters ------------------------------------------------------------------------------------------


COUNTER_CASES: list[Any] = [
    pytest.param(
        [received("a", "tasks.payment.charge", 10.0), failed("a", 11.0)],
        FAIL, {"task_name": "tasks.payment.charge", "exception_type": "ValueError"},
        [(10.999, 0.0), (11.0, 1.0)],
        id="received-then-failed-zero-then-one",
    ),
    pytest.param(
        [failed("nobody-knows", 5.0, "KeyError('k')")],
        FAIL, {"task_name": "unknown", "exception_type": "KeyError"},
        [(4.999, 0.0), (5.0, 1.0)],
        id="unknown-uuid-is-unknown",
    ),
    pytest.param(
        [received("a", "t", 1.0), failed("a", 2.0), received("b", "t", 3.0), failed("b", 4.0)],
        FAIL, {"task_name": "t", "exception_type": "ValueError"},
        [(1.999, 0.0), (2.0, 1.0), (3.999, 1.0), (4.0, 2.0)],
        id="zero-injected-first-the-previous-value-restated-after-a-quiet-spell",
    ),
    pytest.param(
        [received("a", "t", 1.0), failed("a", 2.0), received("b", "t", 2.2), failed("b", 2.5)],
        FAIL, {"task_name": "t", "exception_type": "ValueError"},
        [(1.999, 0.0), (2.0, 1.0), (2.5, 2.0)],
        id="zero-injected-only-the-first-time-and-nothing-restated-in-a-burst",
    ),
    pytest.param(
        [received("a", "tasks.email.send", 1.0), event("task-succeeded", 2.0, uuid="a", hostname=W1)],
        "celery_task_successes_total", {"task_name": "tasks.email.send"},
        [(1.999, 0.0), (2.0, 1.0)],
        id="succeeded",
    ),
    pytest.param(
        [received("a", "tasks.retrying", 1.0), event("task-retried", 2.0, uuid="a", exception="RuntimeError()"),
         event("task-retried", 3.0, uuid="a")],
        "celery_task_retries_total", {"task_name": "tasks.retrying"},
        [(1.999, 0.0), (2.0, 1.0), (3.0, 2.0)],
        id="retried-keeps-the-name",
    ),
    pytest.param(
        [failed("x", 7.0, task_name="tasks.payment.refund")],
        FAIL, {"task_name": "tasks.payment.refund", "exception_type": "ValueError"},
        [(6.999, 0.0), (7.0, 1.0)],
        id="name-given-in-the-event",
    ),
    pytest.param(
        [received("a", "t", 1.0), ("feed", {"type": "task-failed", "uuid": "a", "exception": "E()",
                                            "timestamp": 2.0, "local_received": 2.5})],
        FAIL, {"task_name": "t", "exception_type": "E"},
        [(2.499, 0.0), (2.5, 1.0)],
        id="stamped-with-time-of-receipt",
    ),
    pytest.param(
        [received("a", "t", 1.0), failed("a", 2.0), failed("a", 3.0)],
        FAIL, {"task_name": "t", "exception_type": "ValueError"},
        [(1.999, 0.0), (2.0, 1.0)],
        id="name-forgotten-after-the-final-event",
    ),
]


@pytest.mark.parametrize(("steps", "name", "labels", "expected"), COUNTER_CASES)
def test_counters(steps: Sequence[Step], name: str, labels: Mapping[str, str], expected: list[tuple[float, float]]) -> None:
    _, out = run(steps)
    got = series(out, name, **labels)
    assert [t for t, _ in got] == pytest.approx([t for t, _ in expected])
    assert [v for _, v in got] == [v for _, v in expected]


def test_last_failure_timestamp_is_the_workers_time_of_failure() -> None:
    _, out = run([received("a", "t", 1.0), ("feed", {"type": "task-failed", "uuid": "a", "exception": "E()",
                                                     "timestamp": 2.0, "local_received": 2.3})])
    assert latest(out)[key("celery_task_last_failure_timestamp_seconds", task_name="t", exception_type="E")] == 2.0


def test_task_names_are_bounded() -> None:
    steps = [received(f"u{i}", f"t{i}", float(i)) for i in range(5)]
    t, out = run([*steps, failed("u0", 10.0), failed("u4", 11.0)], max_task_names=3)
    assert len(t._task_names) <= 3
    assert series(out, FAIL, task_name="unknown", exception_type="ValueError")[-1][1] == 1.0
    assert series(out, FAIL, task_name="t4", exception_type="ValueError")[-1][1] == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("ValueError('x')", "ValueError", id="call"),
        pytest.param("TimeLimitExceeded(5,)", "TimeLimitExceeded", id="tuple-args"),
        pytest.param("WorkerLostError('Worker exited prematurely: signal 9 (SIGKILL).')", "WorkerLostError", id="lost"),
        pytest.param("celery.exceptions.Reject('no')", "Reject", id="dotted"),
        pytest.param("KeyError", "KeyError", id="bare-name"),
        pytest.param("", "unknown", id="empty"),
        pytest.param(None, "unknown", id="missing"),
        pytest.param("<object at 0x1>", "unknown", id="garbage"),
        pytest.param("E" * 129 + "()", "unknown", id="too-long-for-a-class-name"),
    ],
)
def test_exception_type(text: object, expected: str) -> None:
    assert exception_type(text) == expected


# -- liveness ------------------------------------------------------------------------------------------


LIVENESS_CASES: list[Any] = [
    pytest.param(
        [heartbeat(W1, 0.0), tick(3.9)], {"up": 1, "lost": 0, "offline": 0}, 1,
        id="within-window-up",
    ),
    pytest.param(
        [heartbeat(W1, 0.0), tick(4.1)], {"up": 0, "lost": 1, "offline": 0}, 0,
        id="silence-past-window-lost",
    ),
    pytest.param(
        [heartbeat(W1, 0.0, freq=1.0), tick(2.5)], {"up": 0, "lost": 1, "offline": 0}, 0,
        id="window-follows-freq",
    ),
    pytest.param(
        [heartbeat(W1, 0.0), heartbeat(W1, 2.0), heartbeat(W1, 4.0), tick(7.0)], {"up": 1, "lost": 0, "offline": 0}, 1,
        id="regular-heartbeats-up",
    ),
    pytest.param(
        [heartbeat(W1, 0.0), event("worker-offline", 1.0, hostname=W1), tick(60.0)],
        {"up": 0, "lost": 0, "offline": 1}, 0,
        id="graceful-offline-not-lost",
    ),
    pytest.param(
        [heartbeat(W1, 0.0), tick(5.0), heartbeat(W1, 6.0), tick(6.5)], {"up": 1, "lost": 0, "offline": 0}, 1,
        id="lost-then-back",
    ),
    pytest.param(
        [event("worker-online", 0.0, hostname=W1, freq=2.0), event("worker-offline", 1.0, hostname=W1),
         event("worker-online", 2.0, hostname=W1, freq=2.0), tick(3.0)],
        {"up": 1, "lost": 0, "offline": 0}, 1,
        id="restarted-after-offline",
    ),
    pytest.param(
        [heartbeat(W1, 0.0), tick(5.0), event("task-succeeded", 5.5, uuid="a", hostname=W1), tick(6.0)],
        {"up": 1, "lost": 0, "offline": 0}, 1,
        id="task-event-from-lost-worker-revives-it",
    ),
    pytest.param(
        [heartbeat(W1, 0.0), event("worker-offline", 1.0, hostname=W1), event("task-succeeded", 1.1, uuid="a", hostname=W1),
         tick(2.0)],
        {"up": 0, "lost": 0, "offline": 1}, 0,
        id="late-task-event-after-offline-does-not-revive",
    ),
]


@pytest.mark.parametrize(("steps", "expected", "online"), LIVENESS_CASES)
def test_liveness(steps: Sequence[Step], expected: Mapping[str, int], online: int) -> None:
    _, out = run(steps)
    values = latest(out)
    for state, value in expected.items():
        assert values[key(f"celery_worker_{state}", worker=W1)] == value, state
    assert values[key("celery_workers_online")] == online


def test_heartbeat_age_active_and_load() -> None:
    _, out = run([heartbeat(W1, 10.0, active=3, loadavg=[0.5, 0.4, 0.3]), tick(11.5)])
    values = latest(out)
    assert values[key("celery_worker_heartbeat_age_seconds", worker=W1)] == pytest.approx(1.5)
    assert values[key("celery_worker_active_tasks", worker=W1)] == 3
    assert values[key("celery_worker_load1", worker=W1)] == 0.5


def test_online_counts_only_live_workers() -> None:
    t, out = run([heartbeat(W1, 0.0, freq=10.0), heartbeat(W2, 0.0, freq=1.0), tick(3.0)])
    assert latest(out)[key("celery_workers_online")] == 1
    assert t.known_workers() == [W1]


def test_lost_and_offline_workers_are_forgotten() -> None:
    t, out = run(
        [heartbeat(W1, 0.0), heartbeat(W2, 0.0), event("worker-offline", 1.0, hostname=W2), tick(5.0), tick(3000.0)],
        forget_after=3600.0,
    )
    assert set(t.workers) == {W1, W2}
    out = t.tick(3602.0)  # w2 went offline at 1s, w1 was lost at 4s (0s + 2 x 2s)
    assert set(t.workers) == {W1}
    out = t.tick(3700.0)
    assert t.workers == {}
    assert not [s for s in out if s.labels.get("worker")]
    assert latest(out)[key("celery_workers_online")] == 0


def test_no_worker_is_lost_while_the_stream_is_down() -> None:
    t, _ = run([heartbeat(W1, 0.0)])
    t.set_stream_up(False, 1.0)
    values = latest(t.tick(30.0))
    assert values[key("celery_worker_lost", worker=W1)] == 0
    assert values[key("alertd_event_stream_up")] == 0
    t.set_stream_up(True, 31.0)
    assert latest(t.tick(34.0))[key("celery_worker_lost", worker=W1)] == 0  # a full window from reconnection
    assert latest(t.tick(35.5))[key("celery_worker_lost", worker=W1)] == 1


def test_event_counters_and_lag() -> None:
    _, out = run([("feed", {"type": "worker-heartbeat", "hostname": W1, "timestamp": 10.0, "local_received": 10.2}),
                  ("feed", {"type": "task-started", "uuid": "a", "timestamp": 11.0, "local_received": 11.05})])
    values = latest(out)
    assert values[key("alertd_events_received_total")] == 2
    assert values[key("alertd_event_lag_seconds")] == pytest.approx(0.05)


def test_event_without_a_time_is_ignored() -> None:
    t, out = run([("feed", {"type": "task-failed", "uuid": "a"})])
    assert out == []
    assert t.events_received == 0
