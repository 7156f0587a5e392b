from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from alertd.models import Sample
from alertd.series.functions import (
    FUNCTIONS,
    Result,
    absent,
    age,
    aggregate,
    delta,
    histogram_quantile,
    increase,
    instant,
    rate,
)
from alertd.series.selector import parse_selector
from alertd.series.store import Series, SeriesStore

INF = math.inf
NAN = math.nan


def series(points: Sequence[tuple[float, float]], **labels: str) -> Series:
    store = SeriesStore()
    for t, v in points:
        store.add(Sample("m", labels, v, t))
    s = store.get("m", labels)
    assert s is not None
    return s


def values(results: list[Result]) -> list[float]:
    return [r.value for r in results]


def every10(*vals: float, start: float = 10) -> list[tuple[float, float]]:
    return [(start + 10 * i, v) for i, v in enumerate(vals)]


# Window (0, 60] at now=60 unless stated. Notation: to_start/to_end = gap from the first/last sample to the window
# edge, sampled = last_t - first_t, avg = sampled / (n-1); a gap >= 1.1*avg is cut to avg/2; a counter is not
# extrapolated back past its zero point sampled*first/increase; result *= (sampled + to_start + to_end) / sampled.
INCREASE = [
    # The sample at t=0 sits on the open left edge and is left out: samples 10..60, values 10..60.
    # raw 50, to_start 10 (< 11), to_end 0, zero point 50*10/50 = 10 (not < 10): 50 * 60/50 = 60.
    ("steady-left-edge-excluded", every10(0, 10, 20, 30, 40, 50, 60, start=0), 60.0, 60.0),
    # Samples 5..55: raw 50, to_start 5, to_end 5, zero point 5: 50 * 60/50 = 60.
    ("offset-samples", every10(5, 15, 25, 35, 45, 55, start=5), 60.0, 60.0),
    # Reset after 30: raw 25-10 = 15, +30 for the drop = 45; zero point 50*10/45 = 11.1 > 10: 45 * 1.2 = 54.
    ("counter-reset", every10(10, 20, 30, 5, 15, 25), 54.0, 54.0),
    # Two resets: raw 2-5 = -3, +8 (8->1) +9 (9->2) = 14; to_start 10, zero point 50*5/14 = 17.9: 14 * 1.2 = 16.8.
    ("two-resets", every10(5, 6, 8, 1, 9, 2), 16.8, 16.8),
    # Zero-point clamp: 1, 11, ..., 51: raw 50, zero point 50*1/50 = 1 < 10: 50 * (50+1)/50 = 51.
    ("zero-point-clamp", every10(1, 11, 21, 31, 41, 51), 51.0, 51.0),
    # Counter born at 40 from 0: to_start 40 >= 11 -> 5, then zero point 0 < 5 -> 0: 20 * 20/20 = 20.
    ("starts-inside-window", [(40, 0), (50, 10), (60, 20)], 20.0, 20.0),
    # Stops at 30: to_start 10, to_end 30 >= 11 -> 5: 20 * (20+10+5)/20 = 35.
    ("ends-inside-window", every10(10, 20, 30), 35.0, 35.0),
    # Flat counter: raw 0, no zero point (needs an increase): 0.
    ("flat", every10(7, 7, 7, 7, 7, 7), 0.0, 0.0),
    # Only t=60 lies in (0, 60].
    ("one-sample-in-window", [(0, 1), (60, 2)], None, None),
    ("no-sample-in-window", [(-10, 1), (0, 2)], None, None),
]


@pytest.mark.parametrize(
    ("points", "expected_increase", "expected_rate_x60"),
    [c[1:] for c in INCREASE],
    ids=[c[0] for c in INCREASE],
)
def test_increase_and_rate(
    points: list[tuple[float, float]], expected_increase: float | None, expected_rate_x60: float | None
) -> None:
    s = series(points, job="celery")
    inc = increase([s], 60, 60)
    rt = rate([s], 60, 60)
    if expected_increase is None:
        assert inc == [] and rt == []
        return
    assert values(inc) == [pytest.approx(expected_increase)]
    assert values(rt) == [pytest.approx(expected_rate_x60 / 60)]  # type: ignore[operator]
    assert inc[0].labels == {"job": "celery"}


DELTA = [
    # A gauge has no resets: 40 - 10 = 30, to_start 10, to_end 0: 30 * 1.2 = 36.
    ("gauge-up-and-down", every10(10, 20, 5, 15, 25, 40), 36.0),
    ("gauge-falling", every10(60, 50, 40, 30, 20, 10), -60.0),
    # No zero-point clamp for gauges: 50 * 1.2 = 60 where increase() gives 51.
    ("no-zero-point", every10(1, 11, 21, 31, 41, 51), 60.0),
    ("one-sample", [(60, 2)], None),
]


@pytest.mark.parametrize(("points", "expected"), [c[1:] for c in DELTA], ids=[c[0] for c in DELTA])
def test_delta(points: list[tuple[float, float]], expected: float | None) -> None:
    got = delta([series(points)], 60, 60)
    assert values(got) == ([] if expected is None else [pytest.approx(expected)])


def test_increase_treats_every_drop_as_reset() -> None:
    # The falling gauge as a counter: raw -50, drops add 60+50+40+30+20 = 200 -> 150; zero point 20 > 10: 180.
    assert values(increase([series(every10(60, 50, 40, 30, 20, 10))], 60, 60)) == [pytest.approx(180.0)]


def test_increase_skips_stale_markers() -> None:
    store = SeriesStore()
    store.add_many(Sample("m", {}, float(v), float(t)) for t, v in every10(10, 20, 30))
    store.mark_stale("m", {}, 40)
    store.add_many(Sample("m", {}, float(v), float(t)) for t, v in [(50, 50), (60, 60)])
    # Samples 10,20,30,50,60 (the marker is no sample): raw 50, avg 12.5, to_start 10 < 13.75: 50 * 60/50 = 60.
    assert values(increase(store.select(parse_selector("m")), 60, 60)) == [pytest.approx(60.0)]


def test_range_functions_keep_series_order_and_labels() -> None:
    a = series(every10(0, 10, 20, 30, 40, 50), w="a")
    b = series([(60, 1)], w="b")
    c = series(every10(0, 0, 0, 0, 0, 0), w="c")
    assert [dict(r.labels) for r in increase([a, b, c], 60, 60)] == [{"w": "a"}, {"w": "c"}]


OVER_TIME = [
    ("min-60", "min_over_time", 60, 1.0),
    ("max-60", "max_over_time", 60, 9.0),
    ("sum-60", "sum_over_time", 60, 23.0),
    ("avg-60", "avg_over_time", 60, 23 / 6),
    ("count-60", "count_over_time", 60, 6.0),
    ("last-60", "last_over_time", 60, 9.0),
    # (30, 60] holds t=40, 50, 60: values 1, 5, 9.
    ("min-30", "min_over_time", 30, 1.0),
    ("max-30", "max_over_time", 30, 9.0),
    ("sum-30", "sum_over_time", 30, 15.0),
    ("avg-30", "avg_over_time", 30, 5.0),
    ("count-30", "count_over_time", 30, 3.0),
    ("last-30", "last_over_time", 30, 9.0),
    ("count-5", "count_over_time", 5, None),
]


@pytest.mark.parametrize(
    ("fn", "window", "expected"), [c[1:] for c in OVER_TIME], ids=[c[0] for c in OVER_TIME]
)
def test_over_time(fn: str, window: float, expected: float | None) -> None:
    s = series(every10(3, 1, 4, 1, 5, 9), q="a")
    got = FUNCTIONS[fn]([s], 60 if expected is not None else 65, window)
    if expected is None:
        assert got == []
    else:
        assert values(got) == [pytest.approx(expected)]
        assert got[0].labels == {"q": "a"}


@pytest.mark.parametrize(
    ("fn", "points", "expected"),
    [
        ("avg_over_time", [(10, 1e308), (20, 1e308)], 1e308),
        ("sum_over_time", [(10, 1e308), (20, 1e308)], INF),
        ("sum_over_time", [(10, INF), (20, -INF)], NAN),
        ("avg_over_time", [(10, INF), (20, 1.0)], INF),
        ("sum_over_time", [(10, 0.1), (20, 0.2), (30, 0.3)], 0.6),
    ],
    ids=["avg-no-overflow", "sum-overflow", "sum-inf-minus-inf", "avg-inf", "sum-compensated"],
)
def test_over_time_extremes(fn: str, points: list[tuple[float, float]], expected: float) -> None:
    (got,) = values(FUNCTIONS[fn]([series(points)], 60, 60))
    assert got == expected or (math.isnan(got) and math.isnan(expected))


def test_over_time_skips_stale_markers() -> None:
    store = SeriesStore()
    store.add_many(Sample("m", {}, float(t), float(t)) for t in (10, 20))
    store.mark_stale("m", {}, 30)
    sel = store.select(parse_selector("m"))
    assert values(FUNCTIONS["last_over_time"](sel, 60, 60)) == [20.0]
    assert values(FUNCTIONS["count_over_time"](sel, 60, 60)) == [2.0]


def test_functions_registry() -> None:
    assert set(FUNCTIONS) == {
        "increase", "rate", "delta", "min_over_time", "max_over_time", "avg_over_time",
        "sum_over_time", "count_over_time", "last_over_time",
    }  # fmt: skip
    assert FUNCTIONS["rate"] is rate


AGE = [
    ("fresh", [(100, 1)], 100, [0.0]),
    ("old-sample-any-age", [(100, 1)], 10_000, [9900.0]),
    ("newest-before-now", [(100, 1), (200, 2)], 150, [50.0]),
    ("no-sample-yet", [(100, 1)], 50, []),
]


@pytest.mark.parametrize(("points", "now", "expected"), [c[1:] for c in AGE], ids=[c[0] for c in AGE])
def test_age(points: list[tuple[float, float]], now: float, expected: list[float]) -> None:
    assert values(age([series(points)], now)) == expected


def test_age_looks_past_a_stale_marker() -> None:
    store = SeriesStore()
    store.add(Sample("m", {}, 1.0, 100.0))
    store.mark_stale("m", {}, 200)
    assert values(age(store.select(parse_selector("m")), 400)) == [300.0]


def test_instant_returns_series_labels() -> None:
    got = instant([series([(10, 3.0)], queue="q"), series([(10, 4.0)], queue="r")], 20, 300)
    assert [(dict(r.labels), r.value) for r in got] == [({"queue": "q"}, 3.0), ({"queue": "r"}, 4.0)]


ABSENT = [
    ("empty-gives-labels", 'up{job="worker",queue=~"a.*"}', [], [({"job": "worker"}, 1.0)]),
    ("regex-only", 'up{queue=~"a.*"}', [], [({}, 1.0)]),
    ("present-gives-nothing", 'up{job="worker"}', [Result({"job": "worker"}, 0.0)], []),
]


@pytest.mark.parametrize(("text", "results", "expected"), [c[1:] for c in ABSENT], ids=[c[0] for c in ABSENT])
def test_absent(text: str, results: list[Result], expected: list[tuple[dict[str, str], float]]) -> None:
    got = absent(parse_selector(text), results)
    assert [(dict(r.labels), r.value) for r in got] == expected


def buckets(counts: Sequence[tuple[str, float]], **labels: str) -> list[Result]:
    return [Result({**labels, "le": le}, c) for le, c in counts]


STANDARD = [("0.1", 10.0), ("0.5", 30.0), ("1", 40.0), ("+Inf", 50.0)]

QUANTILES = [
    # rank 25 falls in (0.1, 0.5] holding 30-10 = 20: 0.1 + 0.4 * (25-10)/20 = 0.4.
    ("median", 0.5, STANDARD, 0.4),
    # rank 5 in the lowest bucket, interpolated from 0: 0.1 * 5/10 = 0.05.
    ("lowest-bucket-from-zero", 0.1, STANDARD, 0.05),
    # rank 45 lies past the "1" bucket (40): the +Inf bucket answers with the bound below it.
    ("in-inf-bucket", 0.9, STANDARD, 1.0),
    ("q-one", 1.0, STANDARD, 1.0),
    ("q-zero", 0.0, STANDARD, 0.0),
    ("q-negative", -0.1, STANDARD, -INF),
    ("q-above-one", 1.1, STANDARD, INF),
    ("q-nan", NAN, STANDARD, NAN),
    ("unsorted-input", 0.5, list(reversed(STANDARD)), 0.4),
    ("no-inf-bucket", 0.5, STANDARD[:-1], NAN),
    ("only-inf-bucket", 0.5, [("+Inf", 10.0)], NAN),
    ("no-observations", 0.5, [("0.1", 0.0), ("1", 0.0), ("+Inf", 0.0)], NAN),
    # The 0.5 bucket dips to 8; it is raised to 10: rank 25 in (0.5, 1] holding 30: 0.5 + 0.5 * 15/30 = 0.75.
    ("non-monotonic", 0.5, [("0.1", 10.0), ("0.5", 8.0), ("1", 40.0), ("+Inf", 50.0)], 0.75),
    # A difference of float rounding counts as equal: rank 5 in (0, 0.1]: 0.05.
    ("rounding-noise", 0.1, [("0.1", 10.0), ("0.5", 10.0 - 1e-14), ("+Inf", 50.0)], 0.05),
    # A lowest bound <= 0 is returned as is.
    ("negative-lowest-bound", 0.25, [("-1", 10.0), ("0", 20.0), ("+Inf", 40.0)], -1.0),
    # "1" and "1.0" are one bucket with 20+20 = 40; rank 20 in (0.5, 1] holding 30: 0.5 + 0.5 * 10/30.
    (
        "duplicate-bounds-coalesce",
        0.5,
        [("0.5", 10.0), ("1", 20.0), ("1.0", 20.0), ("+Inf", 40.0)],
        0.5 + 0.5 / 3,
    ),
    # As in Prometheus, q=0 over an empty lowest bucket is 0/0.
    ("q-zero-empty-lowest", 0.0, [("1", 0.0), ("+Inf", 10.0)], NAN),
    ("bad-le-ignored", 0.5, [*STANDARD, ("abc", 1000.0), ("1_0", 1000.0)], 0.4),
]


@pytest.mark.parametrize(
    ("q", "counts", "expected"), [c[1:] for c in QUANTILES], ids=[c[0] for c in QUANTILES]
)
def test_histogram_quantile(q: float, counts: list[tuple[str, float]], expected: float) -> None:
    (got,) = histogram_quantile(q, buckets(counts, job="api"))
    assert got.labels == {"job": "api"}
    if math.isnan(expected):
        assert math.isnan(got.value)
    else:
        assert got.value == pytest.approx(expected)


def test_histogram_quantile_groups_by_labels_without_le() -> None:
    results = [
        *buckets(STANDARD, task="a"),
        *buckets([("1", 10.0), ("2", 10.0), ("+Inf", 10.0)], task="b"),
        Result({"task": "c"}, 5.0),  # no le: not a bucket
    ]
    got = histogram_quantile(0.5, results)
    assert [(dict(r.labels), r.value) for r in got] == [
        ({"task": "a"}, pytest.approx(0.4)),
        ({"task": "b"}, 0.5),
    ]


def test_histogram_quantile_empty() -> None:
    assert histogram_quantile(0.5, []) == []


RESULTS = [
    Result({"job": "a", "inst": "1"}, 1.0),
    Result({"job": "a", "inst": "2"}, 3.0),
    Result({"job": "b", "inst": "1"}, 5.0),
    Result({"inst": "3"}, 7.0),
    Result({"job": "", "inst": "4"}, 9.0),
]

AGGREGATES = [
    ("sum-all", "sum", None, [({}, 25.0)]),
    ("min-all", "min", None, [({}, 1.0)]),
    ("max-all", "max", None, [({}, 9.0)]),
    ("avg-all", "avg", None, [({}, 5.0)]),
    ("count-all", "count", None, [({}, 5.0)]),
    ("sum-by-empty-list", "sum", [], [({}, 25.0)]),
    # A missing job and job="" form one group without the label.
    ("sum-by-job", "sum", ["job"], [({"job": "a"}, 4.0), ({"job": "b"}, 5.0), ({}, 16.0)]),
    ("min-by-job", "min", ["job"], [({"job": "a"}, 1.0), ({"job": "b"}, 5.0), ({}, 7.0)]),
    ("max-by-job", "max", ["job"], [({"job": "a"}, 3.0), ({"job": "b"}, 5.0), ({}, 9.0)]),
    ("avg-by-job", "avg", ["job"], [({"job": "a"}, 2.0), ({"job": "b"}, 5.0), ({}, 8.0)]),
    ("count-by-job", "count", ["job"], [({"job": "a"}, 2.0), ({"job": "b"}, 1.0), ({}, 2.0)]),
    (
        "sum-by-two",
        "sum",
        ["inst", "job"],
        [
            ({"inst": "1", "job": "a"}, 1.0),
            ({"inst": "2", "job": "a"}, 3.0),
            ({"inst": "1", "job": "b"}, 5.0),
            ({"inst": "3"}, 7.0),
            ({"inst": "4"}, 9.0),
        ],
    ),
    ("by-unknown-label", "count", ["zone"], [({}, 5.0)]),
]


@pytest.mark.parametrize(
    ("op", "by", "expected"), [c[1:] for c in AGGREGATES], ids=[c[0] for c in AGGREGATES]
)
def test_aggregate(op: str, by: list[str] | None, expected: list[tuple[dict[str, str], float]]) -> None:
    got = aggregate(op, by, RESULTS)  # type: ignore[arg-type]
    assert [(dict(r.labels), r.value) for r in got] == expected


@pytest.mark.parametrize(
    ("op", "vals", "expected"),
    [
        ("min", [NAN, 2.0, 1.0], 1.0),
        ("max", [1.0, NAN, 2.0], 2.0),
        ("min", [NAN, NAN], NAN),
        ("count", [NAN], 1.0),
    ],
    ids=["min-skips-nan", "max-skips-nan", "min-all-nan", "count-counts-nan"],
)
def test_aggregate_nan(op: str, vals: list[float], expected: float) -> None:
    (got,) = aggregate(op, None, [Result({}, v) for v in vals])  # type: ignore[arg-type]
    assert got.value == expected or (math.isnan(got.value) and math.isnan(expected))


@pytest.mark.parametrize("by", [None, ["job"]], ids=["by-none", "by-job"])
def test_aggregate_empty(by: list[str] | None) -> None:
    assert aggregate("sum", by, []) == []


def test_aggregate_unknown_op() -> None:
    with pytest.raises(ValueError, match="unknown aggregation 'median'"):
        aggregate("median", None, RESULTS)  # type: ignore[arg-type]
