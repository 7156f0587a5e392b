"""Samples in, series found through an inverted label index out; old samples and dead series are collected."""

from __future__ import annotations

import math
import struct
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from alertd.models import LabelsKey, Sample, labels_key
from alertd.owner import OwnerThread
from alertd.series.selector import Selector

SeriesKey = tuple[str, LabelsKey]

_STALE_BITS = 0x7FF0000000000002
_STALE_BYTES = struct.pack("<Q", _STALE_BITS)
STALE: float = struct.unpack("<d", _STALE_BYTES)[0]
"""The staleness marker: the NaN Prometheus writes when a series disappears, told apart by its bit pattern."""


def is_stale(value: float) -> bool:
    """Whether ``value`` is the staleness marker rather than any other float (or any other NaN)."""
    return value != value and struct.pack("<d", value) == _STALE_BYTES


class Series:
    """The samples of one series, oldest first; the only NaNs it holds are staleness markers."""

    __slots__ = ("_stale", "key", "labels", "name", "timestamps", "values")

    def __init__(self, name: str, labels: Mapping[str, str], key: SeriesKey) -> None:
        self.name = name
        self.labels: Mapping[str, str] = MappingProxyType(dict(labels))
        self.key = key
        self.timestamps: list[float] = []
        self.values: list[float] = []
        # How many markers are held: window() only filters when there are some.
        self._stale = 0

    def __repr__(self) -> str:
        return f"Series({self.name!r}, {dict(self.labels)!r}, {len(self.timestamps)} samples)"

    def newest(self) -> tuple[float, float] | None:
        if not self.timestamps:
            return None
        return self.timestamps[-1], self.values[-1]

    def window(self, start: float, end: float) -> tuple[list[float], list[float]]:
        """The samples with ``start < timestamp <= end``, staleness markers left out."""
        ts = self.timestamps
        if not ts:
            return [], []
        lo = bisect_right(ts, start)
        # Evaluations mostly end at the newest sample, where no search is needed.
        hi = len(ts) if end >= ts[-1] else bisect_right(ts, end, lo)
        if not self._stale:
            return ts[lo:hi], self.values[lo:hi]
        vs = self.values
        keep = [i for i in range(lo, hi) if vs[i] == vs[i]]
        return [ts[i] for i in keep], [vs[i] for i in keep]

    @property
    def stale(self) -> bool:
        """Whether the newest sample is a staleness marker."""
        return bool(self.values) and self.values[-1] != self.values[-1]


_NO_VALUES: dict[str, set[Series]] = {}
# A matcher is run over a label's distinct values rather than over the candidate series when there are
# at least this many candidates per value: a set operation per value beats a Python loop per series.
_VALUES_PER_SERIES = 4


class SeriesStore:
    """All series in memory, indexed by name and by (name, label, value).

    The postings hold the Series objects themselves: they hash by identity, where a key tuple of label
    pairs would be hashed anew by every set operation.
    """

    def __init__(
        self, *, retention: float = 3600.0, lookback: float = 300.0, drop_after: float | None = None
    ) -> None:
        self.owner = OwnerThread("the series store")
        self.retention = retention
        self.lookback = lookback
        self.drop_after = retention if drop_after is None else drop_after
        self.ignored_count = 0
        self._samples = 0
        self._series: dict[SeriesKey, Series] = {}
        self._by_name: dict[str, set[Series]] = {}
        # name -> label -> value -> series: the (name, label, value) postings, nested so that a matcher
        # can be run over a label's distinct values instead of over every series.
        self._postings: dict[str, dict[str, dict[str, set[Series]]]] = {}

    @property
    def series_count(self) -> int:
        return len(self._series)

    @property
    def sample_count(self) -> int:
        return self._samples

    def names(self) -> set[str]:
        return set(self._by_name)

    def by_name(self, name: str) -> list[Series]:
        return list(self._by_name.get(name, ()))

    def get(self, name: str, labels: Mapping[str, str]) -> Series | None:
        return self._series.get((name, labels_key(labels)))

    def add(self, sample: Sample) -> bool:
        """Store one sample; False when it is ignored (NaN, bad or out-of-order timestamp)."""
        v = sample.value
        t = sample.timestamp
        if v != v:
            if is_stale(v):
                s = self._series.get(sample.key)
                return s is not None and self._append_stale(s, t)
            self.ignored_count += 1
            return False
        key = (sample.name, labels_key(sample.labels))
        s = self._series.get(key)
        if s is None:
            if not math.isfinite(t):
                self.ignored_count += 1
                return False
            s = self._create(sample.name, sample.labels, key)
        else:
            ts = s.timestamps
            last = ts[-1] if ts else -math.inf
            if t <= last or not math.isfinite(t):
                if t == last:
                    vs = s.values
                    if vs[-1] != vs[-1]:
                        s._stale -= 1
                    vs[-1] = v
                    return True
                self.ignored_count += 1
                return False
        s.timestamps.append(t)
        s.values.append(v)
        self._samples += 1
        return True

    def add_many(self, samples: Iterable[Sample]) -> set[str]:
        """Store samples; returns the metric names that received at least one."""
        self.owner.check()
        add = self.add
        return {s.name for s in samples if add(s)}

    def mark_stale(self, name: str, labels: Mapping[str, str], timestamp: float) -> None:
        """Record that the series disappeared at ``timestamp``; a later sample revives it."""
        self.owner.check()
        s = self._series.get((name, labels_key(labels)))
        if s is not None:
            self._append_stale(s, timestamp)

    def mark_stale_matching(self, selector: Selector, timestamp: float) -> int:
        """Mark every series the selector matches; returns how many markers were written."""
        return sum(self._append_stale(s, timestamp) for s in self.select(selector))

    def _append_stale(self, s: Series, t: float) -> bool:
        ts, vs = s.timestamps, s.values
        if not ts or vs[-1] != vs[-1] or t < ts[-1] or not math.isfinite(t):
            return False
        if t == ts[-1]:
            # Same rule as add(): a second report for a timestamp replaces the first.
            vs[-1] = STALE
        else:
            ts.append(t)
            vs.append(STALE)
            self._samples += 1
        s._stale += 1
        return True

    def _create(self, name: str, labels: Mapping[str, str], key: SeriesKey) -> Series:
        s = Series(name, labels, key)
        self._series[key] = s
        self._by_name.setdefault(name, set()).add(s)
        by_label = self._postings.setdefault(name, {})
        for label, value in key[1]:
            by_label.setdefault(label, {}).setdefault(value, set()).add(s)
        return s

    def _drop(self, s: Series) -> None:
        del self._series[s.key]
        self._samples -= len(s.timestamps)
        name = s.name
        members = self._by_name[name]
        members.discard(s)
        if not members:
            del self._by_name[name]
            del self._postings[name]
            return
        by_label = self._postings[name]
        for label, value in s.key[1]:
            by_value = by_label[label]
            posting = by_value[value]
            posting.discard(s)
            if not posting:
                del by_value[value]
                if not by_value:
                    del by_label[label]

    def select(self, selector: Selector) -> list[Series]:
        """The series the selector matches, in no particular order, found through the index."""
        by_label = self._postings.get(selector.name)
        if by_label is None:
            return []
        candidates: set[Series]
        if selector._postings:
            sets: list[set[Series]] = []
            for label, value in selector._postings:
                posting = by_label.get(label, _NO_VALUES).get(value)
                if not posting:
                    return []
                sets.append(posting)
            if len(sets) == 1:
                candidates = sets[0]
            else:
                sets.sort(key=len)
                candidates = sets[0].intersection(*sets[1:])
            filters = selector._filters
        elif selector._regex is not None:
            regex = selector._regex
            by_value = by_label.get(regex.label, _NO_VALUES)
            if regex._literals is not None:
                hits = [posting for value in regex._literals if (posting := by_value.get(value))]
            else:
                test = regex._test
                hits = [posting for value, posting in by_value.items() if test(value)]
            if not hits:
                return []
            candidates = hits[0] if len(hits) == 1 else set().union(*hits)
            filters = selector._regex_filters
        else:
            candidates = self._by_name[selector.name]
            filters = selector._filters
        checks: list[tuple[str, Callable[[str], bool], bool]] = []
        for m in filters:
            by_value = by_label.get(m.label, _NO_VALUES)
            if len(by_value) * _VALUES_PER_SERIES >= len(candidates):
                checks.append((m.label, m._test, m._empty))
                continue
            # Fewer distinct values than series: test each value once and let set operations (in C) do the rest.
            test = m._test
            if m._empty:
                # Series without the label match too: remove those whose value fails.
                if m.op == "!=":
                    drop = [p] if (p := by_value.get(m.value)) else []
                else:
                    drop = [posting for value, posting in by_value.items() if not test(value)]
                if drop:
                    candidates = candidates.difference(*drop)
            else:
                keep = [posting for value, posting in by_value.items() if test(value)]
                if not keep:
                    return []
                candidates = candidates.intersection(keep[0] if len(keep) == 1 else set().union(*keep))
        if not checks:
            return list(candidates)
        out = []
        for s in candidates:
            get = s.labels.get
            for label, test, empty in checks:
                v = get(label)
                if not (empty if v is None else test(v)):
                    break
            else:
                out.append(s)
        return out

    def gc(self, now: float) -> int:
        """Trim samples older than the retention and drop series silent for ``drop_after``.

        The newest real sample of a live series is kept whatever its age, so that age() keeps working.
        Returns the number of series dropped.
        """
        self.owner.check()
        cutoff = now - max(self.retention, self.lookback)
        dead_before = now - self.drop_after
        dropped = 0
        for s in list(self._series.values()):
            ts = s.timestamps
            if not ts or ts[-1] <= dead_before:
                self._drop(s)
                dropped += 1
                continue
            if ts[0] > cutoff:
                continue
            keep_from = len(ts) - 1
            vs = s.values
            if vs[keep_from] != vs[keep_from] and keep_from > 0:
                keep_from -= 1
            cut = min(bisect_right(ts, cutoff), keep_from)
            if cut <= 0:
                continue
            if s._stale:
                s._stale -= sum(1 for v in vs[:cut] if v != v)
            del ts[:cut]
            del vs[:cut]
            self._samples -= cut
        return dropped
