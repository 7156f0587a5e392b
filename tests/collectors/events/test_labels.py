"""Labels from the broker are bounded: a cap per label, an overflow bucket, idle values and counters forgotten."""

from __future__ import annotations

import time
from collections import Counter

from alertd.collectors.events.labels import OVERFLOW, LabelCap
from alertd.collectors.events.translate import EventTranslator
from alertd.models import Sample
from alertd.series.selector import Selector
from alertd.series.store import SeriesStore

FAIL = "celery_task_failures_total"
T0 = 1_700_000_000.0


def _failure(name: str, at: float, exc: str = "ValueError('x')") -> dict[str, object]:
    return {"type": "task-failed", "uuid": f"u-{name}", "task_name": name, "exception": exc, "timestamp": at,
            "local_received": at, "hostname": "w1@host"}


def test_a_cap_holds_its_limit_and_makes_room_as_values_go_idle() -> None:
    overflowed: list[str] = []
    cap = LabelCap("task_name", 3, idle_after=10.0, on_overflow=overflowed.append)
    assert [cap.admit(v, T0 + i) for i, v in enumerate("abc")] == ["a", "b", "c"]
    assert cap.admit("d", T0 + 3) == OVERFLOW
    assert cap.admit("a", T0 + 4) == "a"  # a value already held is always admitted (and now seen last)
    assert cap.admit(OVERFLOW, T0 + 4) == OVERFLOW and len(cap) == 3
    assert overflowed == ["task_name"] and cap.overflows == 1
    # b and c were last seen more than 10 s before: the next new value takes the room they leave, a stays.
    assert cap.admit("e", T0 + 12.5) == "e"
    assert "a" in cap and "b" not in cap and "c" not in cap and len(cap) == 2


def test_100000_task_names_stay_at_the_cap_in_samples_and_in_the_store() -> None:
    limit, names = 10_000, 100_000
    overflows: Counter[str] = Counter()
    t = EventTranslator(max_label_values=limit, label_idle_after=3600.0, on_overflow=lambda label: overflows.update([label]))
    store = SeriesStore(retention=3600.0)
    started = time.perf_counter()
    series_at_half = 0
    for i in range(names):
        store.add_many(t.feed(_failure(f"tasks.spam_{i}", T0 + i * 0.001)))
        if i == names // 2:
            series_at_half = store.series_count
    elapsed = time.perf_counter() - started
    print(f"\n{names} distinct names in {elapsed:.2f}s; series {series_at_half} at 50,000, "
          f"{store.series_count} at 100,000")

    held = {s.labels["task_name"] for s in store.select(Selector(FAIL, ()))}
    assert len(held) == limit + 1 and OVERFLOW in held
    assert len(t.caps["task_name"]) == limit
    assert overflows == {"task_name": names - limit}
    overflow = store.get(FAIL, {"task_name": OVERFLOW, "exception_type": "ValueError"})
    assert overflow is not None and overflow.values[-1] == names - limit  # every failure is still counted
    assert len(t._counters) == limit + 1
    assert store.series_count == series_at_half  # past the cap, new names add no series

    # An hour later with no event: the names and their counters are forgotten, room for new names again.
    t.tick(T0 + names * 0.001 + 3600.5)
    assert len(t.caps["task_name"]) == 0 and not t._counters
    assert store.gc(T0 + names * 0.001 + 3600.5) >= limit  # and the store drops their idle series
    samples = t.feed(_failure("tasks.payment.charge", T0 + 7300.0))
    assert {s.labels.get("task_name") for s in samples if s.name == FAIL} == {"tasks.payment.charge"}


def test_exception_types_are_capped_like_task_names() -> None:
    overflows: Counter[str] = Counter()
    t = EventTranslator(max_label_values=10, on_overflow=lambda label: overflows.update([label]))
    out: list[Sample] = []
    for i in range(15):
        out += t.feed(_failure("tasks.pay", T0 + i, exc=f"Error{i}('x')"))
    types = {s.labels["exception_type"] for s in out if s.name == FAIL}
    assert len(types) == 11 and OVERFLOW in types
    assert overflows == {"exception_type": 5}


def test_workers_past_the_cap_are_not_tracked() -> None:
    overflows: Counter[str] = Counter()
    t = EventTranslator(max_label_values=10, on_overflow=lambda label: overflows.update([label]))
    for i in range(25):
        t.feed({"type": "worker-heartbeat", "hostname": f"w{i}@host", "freq": 2.0, "timestamp": T0,
                "local_received": T0})
    assert len(t.workers) == 10 and "w10@host" not in t.workers
    assert overflows == {"worker": 15}
    # A worker already held keeps reporting.
    samples = t.feed({"type": "worker-heartbeat", "hostname": "w3@host", "freq": 2.0, "timestamp": T0 + 1,
                      "local_received": T0 + 1})
    assert any(s.name == "celery_worker_up" and s.labels == {"worker": "w3@host"} for s in samples)
