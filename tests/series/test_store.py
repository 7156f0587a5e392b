from __future__ import annotations

import math
import struct
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertd.models import LabelsKey, Sample, labels_key
from alertd.series import store as store_module
from alertd.series.functions import instant
from alertd.series.selector import Matcher, Selector, parse_selector
from alertd.series.store import STALE, SeriesStore, is_stale

NAN = float("nan")


def sample(t: float, v: float, name: str = "m", **labels: str) -> Sample:
    return Sample(name, labels, v, t)


def test_stale_marker_bits() -> None:
    assert struct.pack(">d", STALE).hex() == "7ff0000000000002"
    assert math.isnan(STALE)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(STALE, True), (NAN, False), (-NAN, False), (0.0, False), (math.inf, False)],
    ids=["stale", "nan", "negative-nan", "zero", "inf"],
)
def test_is_stale(value: float, expected: bool) -> None:
    assert is_stale(value) is expected


ADDS = [
    ("in-order", [(1, 1.0), (2, 2.0), (3, 3.0)], [True, True, True], [1, 2, 3], [1.0, 2.0, 3.0], 0),
    ("out-of-order-ignored", [(1, 1.0), (3, 3.0), (2, 2.0)], [True, True, False], [1, 3], [1.0, 3.0], 1),
    ("same-timestamp-replaces", [(1, 1.0), (2, 2.0), (2, 5.0)], [True, True, True], [1, 2], [1.0, 5.0], 0),
    ("older-than-newest-only", [(5, 1.0), (1, 1.0), (0, 1.0)], [True, False, False], [5], [1.0], 2),
    ("nan-ignored", [(1, 1.0), (2, NAN), (3, 3.0)], [True, False, True], [1, 3], [1.0, 3.0], 1),
    ("nan-first-creates-nothing", [(1, NAN)], [False], None, None, 1),
    ("nan-timestamp-ignored", [(1, 1.0), (NAN, 2.0)], [True, False], [1], [1.0], 1),
    ("inf-timestamp-ignored", [(math.inf, 1.0)], [False], None, None, 1),
    ("inf-value-kept", [(1, math.inf)], [True], [1], [math.inf], 0),
]


@pytest.mark.parametrize(
    ("points", "returns", "timestamps", "values", "ignored"), [c[1:] for c in ADDS], ids=[c[0] for c in ADDS]
)
def test_add(
    points: list[tuple[float, float]],
    returns: list[bool],
    timestamps: list[float] | None,
    values: list[float] | None,
    ignored: int,
) -> None:
    store = SeriesStore()
    assert [store.add(sample(t, v, queue="q")) for t, v in points] == returns
    s = store.get("m", {"queue": "q"})
    if timestamps is None:
        assert s is None
        assert store.series_count == 0
    else:
        assert s is not None
        assert s.timestamps == timestamps
        assert s.values == values
        assert store.sample_count == len(timestamps)
    assert store.ignored_count == ignored


def test_series_labels_are_a_read_only_copy() -> None:
    store = SeriesStore()
    labels = {"queue": "q"}
    store.add(Sample("m", labels, 1.0, 1.0))
    labels["queue"] = "changed"
    (s,) = store.select(parse_selector("m"))
    assert s.labels == {"queue": "q"}
    assert s.key == ("m", (("queue", "q"),))
    with pytest.raises(TypeError):
        s.labels["queue"] = "x"  # type: ignore[index]


def test_add_many_returns_names_that_received_samples() -> None:
    store = SeriesStore()
    store.add(sample(10, 1.0, name="old"))
    got = store.add_many([sample(1, 1.0, name="a"), sample(5, 1.0, name="old"), sample(1, NAN, name="b")])
    assert got == {"a"}
    assert store.names() == {"a", "old"}


def test_series_are_keyed_by_name_and_labels() -> None:
    store = SeriesStore()
    store.add_many(
        [sample(1, 1.0, a="1"), sample(1, 2.0, a="2"), sample(1, 3.0, name="n", a="1"), sample(2, 4.0, a="1")]
    )
    assert store.series_count == 3
    assert store.sample_count == 4
    assert {s.key for s in store.select(parse_selector('m{a="1"}'))} == {("m", (("a", "1"),))}


WINDOWS = [
    ("left-open", 10, 30, [20, 30]),
    ("all", 0, 50, [10, 20, 30, 40, 50]),
    ("end-between", 15, 35, [20, 30]),
    ("empty-before", -10, 5, []),
    ("empty-after", 50, 100, []),
    ("reversed", 40, 20, []),
]


@pytest.mark.parametrize(("start", "end", "expected"), [c[1:] for c in WINDOWS], ids=[c[0] for c in WINDOWS])
def test_window(start: float, end: float, expected: list[float]) -> None:
    store = SeriesStore()
    store.add_many(sample(t, t / 10) for t in (10, 20, 30, 40, 50))
    (s,) = store.select(parse_selector("m"))
    ts, vs = s.window(start, end)
    assert ts == expected
    assert vs == [t / 10 for t in expected]


def test_window_skips_stale_markers() -> None:
    store = SeriesStore()
    store.add_many([sample(10, 1.0), sample(20, 2.0)])
    store.mark_stale("m", {}, 30)
    store.add(sample(40, 4.0))
    (s,) = store.select(parse_selector("m"))
    assert len(s.timestamps) == 4
    assert s.window(0, 50) == ([10, 20, 40], [1.0, 2.0, 4.0])
    assert s.newest() == (40, 4.0)


def _instant(store: SeriesStore, now: float) -> list[float]:
    return [r.value for r in instant(store.select(parse_selector("m")), now, store.lookback)]


def test_staleness_hides_and_new_sample_revives() -> None:
    store = SeriesStore(lookback=300)
    store.add(sample(100, 1.0))
    assert _instant(store, 150) == [1.0]
    store.mark_stale("m", {}, 160)
    assert _instant(store, 170) == []
    # Before the marker the old value is still what was seen.
    assert _instant(store, 155) == [1.0]
    newest = store.get("m", {})
    assert newest is not None and newest.newest() is not None
    assert is_stale(newest.newest()[1])  # type: ignore[index]
    store.add(sample(180, 2.0))
    assert _instant(store, 190) == [2.0]


def test_mark_stale_is_idempotent_and_ignores_unknown_series() -> None:
    store = SeriesStore()
    store.add(sample(1, 1.0, q="a"))
    store.mark_stale("m", {"q": "a"}, 2)
    store.mark_stale("m", {"q": "a"}, 3)
    store.mark_stale("m", {"q": "unknown"}, 3)
    store.mark_stale("other", {}, 3)
    s = store.get("m", {"q": "a"})
    assert s is not None
    assert s.timestamps == [1, 2]
    assert store.series_count == 1
    assert store.sample_count == 2


def test_mark_stale_out_of_order_is_ignored_same_timestamp_replaces() -> None:
    store = SeriesStore()
    store.add_many([sample(1, 1.0, q="a"), sample(5, 5.0, q="a"), sample(5, 5.0, q="b")])
    store.mark_stale("m", {"q": "a"}, 4)
    store.mark_stale("m", {"q": "b"}, 5)
    a, b = store.get("m", {"q": "a"}), store.get("m", {"q": "b"})
    assert a is not None and a.values == [1.0, 5.0]
    assert b is not None and b.timestamps == [5] and is_stale(b.values[0])


def test_stale_value_through_add() -> None:
    store = SeriesStore()
    assert store.add(sample(1, STALE)) is False
    assert store.series_count == 0
    store.add(sample(1, 1.0))
    assert store.add(sample(2, STALE)) is True
    assert store.add(sample(3, STALE)) is False
    assert _instant(store, 3) == []
    assert store.ignored_count == 0


def test_mark_stale_matching() -> None:
    store = SeriesStore()
    store.add_many([sample(1, 1.0, w="a"), sample(1, 1.0, w="b"), sample(1, 1.0, w="c")])
    store.mark_stale("m", {"w": "c"}, 2)
    assert store.mark_stale_matching(parse_selector('m{w=~"a|c"}'), 3) == 1
    assert _instant(store, 4) == [1.0]


LOOKBACK = [
    ("fresh", 100, [1.0]),
    ("exactly-now", 10, [1.0]),
    ("inside", 309, [1.0]),
    ("left-open-edge", 310, []),
    ("too-old", 400, []),
    ("before-first-sample", 5, []),
]


@pytest.mark.parametrize(("now", "expected"), [c[1:] for c in LOOKBACK], ids=[c[0] for c in LOOKBACK])
def test_lookback(now: float, expected: list[float]) -> None:
    store = SeriesStore(lookback=300)
    store.add(sample(10, 1.0))
    assert _instant(store, now) == expected


def test_instant_in_the_past_uses_the_sample_then() -> None:
    store = SeriesStore()
    store.add_many(sample(t, float(t)) for t in (10, 20, 30))
    assert _instant(store, 25) == [20.0]


def test_gc_trims_old_samples() -> None:
    store = SeriesStore(retention=100, lookback=50)
    store.add_many(sample(t, float(t)) for t in range(0, 301, 10))
    assert store.gc(300) == 0
    s = store.get("m", {})
    assert s is not None
    assert s.timestamps == list(range(210, 301, 10))
    assert store.sample_count == 10


def test_gc_keeps_lookback_when_longer_than_retention() -> None:
    store = SeriesStore(retention=20, lookback=50, drop_after=1000)
    store.add_many(sample(t, float(t)) for t in range(0, 101, 10))
    store.gc(100)
    s = store.get("m", {})
    assert s is not None and s.timestamps == [60, 70, 80, 90, 100]


def test_gc_keeps_newest_real_sample_of_a_quiet_series() -> None:
    store = SeriesStore(retention=100, lookback=10, drop_after=1000)
    store.add_many([sample(0, 1.0), sample(10, 2.0)])
    store.mark_stale("m", {}, 20)
    assert store.gc(500) == 0
    s = store.get("m", {})
    assert s is not None
    assert s.timestamps == [10, 20]
    assert store.sample_count == 2
    store.add(sample(600, 3.0))
    # The marker count must still be right after trimming, or window() would skip filtering.
    assert s.window(0, 1000) == ([10, 600], [2.0, 3.0])


def test_gc_drops_silent_series_and_their_index_entries() -> None:
    store = SeriesStore(retention=100, drop_after=200)
    store.add_many([sample(0, 1.0, w="old"), sample(150, 1.0, w="new")])
    assert store.gc(200) == 1
    assert store.series_count == 1
    assert store.sample_count == 1
    assert store.select(parse_selector('m{w="old"}')) == []
    assert [s.labels["w"] for s in store.select(parse_selector('m{w=~"old|new"}'))] == ["new"]
    assert store.gc(350) == 1
    assert store.names() == set()
    assert store._postings == {} and store._by_name == {}


def test_gc_bounds_memory_under_label_churn() -> None:
    store = SeriesStore(retention=300)
    tasks = [f"tasks.t{i}" for i in range(10)]
    created: set[LabelsKey] = set()
    step = 15.0
    for i in range(1000):
        now = i * step
        # Ten workers alive at a time; one is replaced every step (autoscaled or restarted pods).
        for w in range(i, i + 10):
            for task in tasks:
                labels = {"task_name": task, "worker": f"celery@pod-{w}"}
                store.add(Sample("celery_task_succeeded_total", labels, float(i), now))
                created.add(labels_key(labels))
        if i % 20 == 19:
            store.gc(now)
            # 10 live workers plus those silent for less than drop_after (300s = 20 steps).
            assert store.series_count <= 10 * (10 + 21)
    assert len(created) > 10_000
    assert store.series_count <= 10 * (10 + 21)
    assert store.sample_count <= store.series_count * (300 / step + 1)
    assert len(store._postings["celery_task_succeeded_total"]["worker"]) <= 10 + 21
    live = store.select(parse_selector('celery_task_succeeded_total{worker="celery@pod-1005"}'))
    assert len(live) == 10
    assert store.select(parse_selector('celery_task_succeeded_total{worker="celery@pod-3"}')) == []


SELECTS = [
    ("by-name", "m", {"a1", "a2", "b1", "b2x"}),
    ("unknown-name", "nope", set()),
    ("equality", 'm{q="a"}', {"a1", "a2"}),
    ("two-equalities", 'm{q="a",w="2"}', {"a2"}),
    ("equality-no-value", 'm{q="zzz"}', set()),
    ("equality-unknown-label", 'm{zzz="a"}', set()),
    ("regex", 'm{q=~"b|c"}', {"b1", "b2x"}),
    ("regex-pattern", 'm{w=~"[2-3]"}', {"a2", "b2x"}),
    ("regex-matching-empty", 'm{extra=~"x|"}', {"a1", "a2", "b1", "b2x"}),
    ("regex-literals", 'm{id=~"a1|b\\\\.x|b1"}', {"a1", "b1"}),
    ("regex-plus-equality", 'm{q="b",w=~"1|3"}', {"b1"}),
    ("regex-plus-negation", 'm{q=~".+",extra!="x"}', {"a1", "a2", "b1"}),
    ("not-equal", 'm{w!="1"}', {"a2", "b2x"}),
    ("not-regex", 'm{q!~"a"}', {"b1", "b2x"}),
    ("label-missing", 'm{extra=""}', {"a1", "a2", "b1"}),
    ("label-present", 'm{extra!=""}', {"b2x"}),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in SELECTS], ids=[c[0] for c in SELECTS])
def test_select(text: str, expected: set[str]) -> None:
    store = SeriesStore()
    store.add_many(
        [
            sample(1, 1.0, q="a", w="1", id="a1"),
            sample(1, 1.0, q="a", w="2", id="a2"),
            sample(1, 1.0, q="b", w="1", id="b1"),
            sample(1, 1.0, q="b", w="2", extra="x", id="b2x"),
            sample(1, 1.0, name="other", q="a", w="1", id="o"),
        ]
    )
    assert {s.labels["id"] for s in store.select(parse_selector(text))} == expected


_values = st.sampled_from(["", "x", "y", "xy", "z1"])
_labels = st.dictionaries(st.sampled_from(["a", "b", "c"]), _values, max_size=3)
_matchers = st.one_of(
    st.builds(Matcher, st.sampled_from(["a", "b", "c"]), st.sampled_from(["=", "!="]), _values),
    st.builds(
        Matcher,
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["=~", "!~"]),
        st.sampled_from(["x|y", "x.*", ".*", ".+", "", "z[0-9]", "x|", "z1|\\.|y"]),
    ),
)
_selectors = st.builds(Selector, st.sampled_from(["m", "n"]), st.lists(_matchers, max_size=3).map(tuple))
_ops = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(["m", "n"]), _labels, st.integers(0, 100)),
    st.tuples(st.just("gc"), st.integers(0, 150)),
    st.tuples(st.just("stale"), st.sampled_from(["m", "n"]), _labels, st.integers(0, 100)),
)


@pytest.mark.parametrize("values_per_series", [0, 10**9], ids=["set-operations", "per-series-loop"])
@settings(max_examples=300, deadline=None)
@given(ops=st.lists(_ops, max_size=40), selectors=st.lists(_selectors, min_size=1, max_size=5))
def test_index_agrees_with_brute_force(
    values_per_series: int, ops: list[tuple[Any, ...]], selectors: list[Selector]
) -> None:
    # Both ways select() applies non-equality matchers: over a label's values, or series by series.
    with mock.patch.object(store_module, "_VALUES_PER_SERIES", values_per_series):
        _check_index(ops, selectors)


def _check_index(ops: list[tuple[Any, ...]], selectors: list[Selector]) -> None:
    store = SeriesStore(retention=30, lookback=10, drop_after=40)
    # The model: every live series with its labels, newest timestamp and whether that sample is a marker.
    model: dict[tuple[str, LabelsKey], tuple[dict[str, str], float, bool]] = {}
    for op in ops:
        if op[0] == "add":
            _, name, labels, t = op
            key = (name, labels_key(labels))
            if key not in model or t >= model[key][1]:
                model[key] = (labels, t, False)
            store.add(Sample(name, labels, 1.0, float(t)))
        elif op[0] == "stale":
            _, name, labels, t = op
            key = (name, labels_key(labels))
            if key in model and not model[key][2] and t >= model[key][1]:
                model[key] = (labels, t, True)
            store.mark_stale(name, labels, float(t))
        else:
            now = op[1]
            model = {k: v for k, v in model.items() if v[1] > now - 40}
            store.gc(float(now))
        assert store.series_count == len(model)
        assert store.sample_count == sum(len(s.timestamps) for s in store._series.values())
        for sel in selectors:
            expected = {k for k, (labels, _, _) in model.items() if k[0] == sel.name and sel.matches(labels)}
            assert {s.key for s in store.select(sel)} == expected, str(sel)
