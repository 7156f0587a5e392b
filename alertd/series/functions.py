"""Selected series (or instant results) in, PromQL function results out: rate, *_over_time, quantiles, sums."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from typing import Literal

from alertd.models import EMPTY_LABELS, LabelsKey
from alertd.series.selector import Selector
from alertd.series.store import Series

AggregateOp = Literal["sum", "min", "max", "avg", "count"]

_INF = math.inf
_NAN = math.nan
# Prometheus' tolerance for bucket counts that differ only by float rounding (promql/quantile.go).
_SMALL_DELTA = 1e-12
_MIN_NORMAL = 2.2250738585072014e-308


@dataclass(frozen=True, slots=True)
class Result:
    """One element of an instant vector: a label set (without the metric name) and a value."""

    labels: Mapping[str, str]
    value: float


RangeFunction = Callable[[Sequence[Series], float, float], list[Result]]


def instant(series: Sequence[Series], now: float, lookback: float) -> list[Result]:
    """The newest sample at or before ``now`` and newer than ``now - lookback``, unless it is a stale marker."""
    out: list[Result] = []
    floor = now - lookback
    for s in series:
        ts = s.timestamps
        if not ts:
            continue
        i = len(ts) - 1 if now >= ts[-1] else bisect_right(ts, now) - 1
        if i < 0 or ts[i] <= floor:
            continue
        v = s.values[i]
        if v == v:  # the store keeps no NaN but staleness markers
            out.append(Result(s.labels, v))
    return out


def age(series: Sequence[Series], now: float) -> list[Result]:
    """Seconds since the newest real sample at or before ``now``, however old: for "not updated" alerts."""
    out: list[Result] = []
    for s in series:
        ts, vs = s.timestamps, s.values
        if not ts:
            continue
        i = len(ts) - 1 if now >= ts[-1] else bisect_right(ts, now) - 1
        while i >= 0 and vs[i] != vs[i]:
            i -= 1
        if i >= 0:
            out.append(Result(s.labels, now - ts[i]))
    return out


def _extrapolated(
    series: Sequence[Series], now: float, window: float, is_counter: bool, is_rate: bool
) -> list[Result]:
    # Mirrors extrapolatedRate in Prometheus' promql/functions.go, float samples only.
    start = now - window
    out: list[Result] = []
    for s in series:
        ts, vs = s.window(start, now)
        n = len(ts)
        if n < 2:
            continue
        first_t, last_t, first_v = ts[0], ts[-1], vs[0]
        result = vs[-1] - first_v
        # The reset scan runs in Python only when a C-level check finds a decrease: sorting sorted
        # floats is one linear pass.
        if is_counter and vs != sorted(vs):
            prev = first_v
            for v in islice(vs, 1, None):
                if v < prev:
                    result += prev
                prev = v
        to_start = first_t - start
        to_end = now - last_t
        sampled = last_t - first_t
        average = sampled / (n - 1)
        # A sample missing where one was due means the series starts or ends inside the window:
        # extrapolate only half an interval past it.
        threshold = average * 1.1
        if to_start >= threshold:
            to_start = average / 2
        if is_counter and result > 0 and first_v >= 0:
            # A counter is never negative: do not extrapolate back past the time it was zero.
            to_zero = sampled * (first_v / result)
            if to_zero < to_start:
                to_start = to_zero
        if to_end >= threshold:
            to_end = average / 2
        factor = (sampled + to_start + to_end) / sampled
        if is_rate:
            factor /= window
        out.append(Result(s.labels, result * factor))
    return out


def increase(series: Sequence[Series], now: float, window: float) -> list[Result]:
    """Counter increase over ``(now - window, now]``, with resets and Prometheus' extrapolation."""
    return _extrapolated(series, now, window, True, False)


def rate(series: Sequence[Series], now: float, window: float) -> list[Result]:
    """Per-second counter increase: increase() / window."""
    return _extrapolated(series, now, window, True, True)


def delta(series: Sequence[Series], now: float, window: float) -> list[Result]:
    """Gauge change over the window, extrapolated like Prometheus' delta()."""
    return _extrapolated(series, now, window, False, False)


def _sum(values: Sequence[float]) -> float:
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):
        # fsum refuses inf + -inf and intermediate overflow, where Prometheus' Kahan sum gives NaN or ±Inf.
        return sum(values)


def _mean(values: Sequence[float]) -> float:
    try:
        return math.fsum(values) / len(values)
    except (OverflowError, ValueError):
        # Prometheus switches to an incremental mean when the sum overflows; so does this.
        mean = 0.0
        for count, v in enumerate(values, 1):
            q = (count - 1) / count
            mean = q * mean + v / count
        return mean


def _over_time(
    series: Sequence[Series], now: float, window: float, fn: Callable[[list[float]], float]
) -> list[Result]:
    start = now - window
    out: list[Result] = []
    for s in series:
        _, vs = s.window(start, now)
        if vs:
            out.append(Result(s.labels, fn(vs)))
    return out


def min_over_time(series: Sequence[Series], now: float, window: float) -> list[Result]:
    return _over_time(series, now, window, min)


def max_over_time(series: Sequence[Series], now: float, window: float) -> list[Result]:
    return _over_time(series, now, window, max)


def avg_over_time(series: Sequence[Series], now: float, window: float) -> list[Result]:
    return _over_time(series, now, window, _mean)


def sum_over_time(series: Sequence[Series], now: float, window: float) -> list[Result]:
    return _over_time(series, now, window, _sum)


def count_over_time(series: Sequence[Series], now: float, window: float) -> list[Result]:
    return _over_time(series, now, window, lambda vs: float(len(vs)))


def last_over_time(series: Sequence[Series], now: float, window: float) -> list[Result]:
    return _over_time(series, now, window, itemgetter(-1))


FUNCTIONS: dict[str, RangeFunction] = {
    "increase": increase,
    "rate": rate,
    "delta": delta,
    "min_over_time": min_over_time,
    "max_over_time": max_over_time,
    "avg_over_time": avg_over_time,
    "sum_over_time": sum_over_time,
    "count_over_time": count_over_time,
    "last_over_time": last_over_time,
}
"""The range functions by PromQL name; each takes (series, now, window)."""


def absent(selector: Selector, results: Sequence[Result]) -> list[Result]:
    """One element valued 1 with the selector's equality labels when ``results`` is empty, else nothing."""
    if results:
        return []
    return [Result(selector.equality_labels(), 1.0)]


def _parse_le(text: str | None) -> float | None:
    # Close to Go's strconv.ParseFloat: Python's float() also takes spaces, "_" and non-ASCII digits.
    if not text or not text.isascii() or "_" in text or text != text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _almost_equal(a: float, b: float) -> bool:
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < _MIN_NORMAL:
        return diff < _SMALL_DELTA * _MIN_NORMAL
    return diff / min(abs_sum, 1.7976931348623157e308) < _SMALL_DELTA


def _divide(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        # IEEE division, as Go does it: 0/0 is NaN, x/0 is ±Inf.
        if a == 0 or a != a:
            return _NAN
        return math.copysign(_INF, a) * math.copysign(1.0, b)


def _bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    # Mirrors bucketQuantile in Prometheus' promql/quantile.go.
    if q != q:
        return _NAN
    if q < 0:
        return -_INF
    if q > 1:
        return _INF
    buckets.sort(key=itemgetter(0))
    if buckets[-1][0] != _INF:
        return _NAN
    bounds: list[float] = []
    counts: list[float] = []
    for upper, count in buckets:
        if bounds and bounds[-1] == upper:
            counts[-1] += count
        else:
            bounds.append(upper)
            counts.append(count)
    # Counts of a cumulative histogram never decrease; flatten decreases (from scraping buckets at slightly
    # different times) instead of failing.
    prev = counts[0]
    for i in range(1, len(counts)):
        curr = counts[i]
        if curr == prev:
            continue
        if _almost_equal(prev, curr) or curr < prev:
            counts[i] = prev
            continue
        prev = curr
    n = len(bounds)
    if n < 2:
        return _NAN
    observations = counts[-1]
    if observations == 0:
        return _NAN
    rank = q * observations
    b = bisect_left(counts, rank, 0, n - 1)
    if b == n - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start = 0.0
    end = bounds[b]
    count = counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * _divide(rank, count)


def histogram_quantile(q: float, buckets: Sequence[Result]) -> list[Result]:
    """The q-quantile of each classic histogram among ``buckets`` (grouped by their labels without ``le``)."""
    groups: dict[LabelsKey, list[tuple[float, float]]] = {}
    for r in buckets:
        upper = _parse_le(r.labels.get("le"))
        if upper is None:
            continue
        key = tuple(sorted(item for item in r.labels.items() if item[0] != "le"))
        group = groups.get(key)
        if group is None:
            groups[key] = group = []
        group.append((upper, r.value))
    return [Result(dict(key), _bucket_quantile(q, group)) for key, group in groups.items()]


def _min(values: list[float]) -> float:
    # Prometheus' min and max skip NaN unless every value is NaN.
    clean = [v for v in values if v == v]
    return min(clean) if clean else _NAN


def _max(values: list[float]) -> float:
    clean = [v for v in values if v == v]
    return max(clean) if clean else _NAN


_AGGREGATORS: dict[str, Callable[[list[float]], float]] = {
    "sum": _sum,
    "min": _min,
    "max": _max,
    "avg": _mean,
    "count": lambda vs: float(len(vs)),
}


def aggregate(op: AggregateOp, by: Sequence[str] | None, results: Sequence[Result]) -> list[Result]:
    """``op by (labels) (results)``; ``by=None`` makes one group without labels. Groups keep input order."""
    fn = _AGGREGATORS.get(op)
    if fn is None:
        raise ValueError(f"unknown aggregation {op!r}: use sum, min, max, avg or count")
    if not results:
        return []
    if by is None:
        return [Result(EMPTY_LABELS, fn([r.value for r in results]))]
    names = tuple(by)
    groups: dict[tuple[str, ...], list[float]] = {}
    for r in results:
        get = r.labels.get
        # A missing label and an empty one are the same group, as in Prometheus.
        key = tuple(get(name) or "" for name in names)
        values = groups.get(key)
        if values is None:
            groups[key] = values = []
        values.append(r.value)
    return [
        Result({name: v for name, v in zip(names, key, strict=True) if v}, fn(values))
        for key, values in groups.items()
    ]
