"""The series that rules read, saved with the state and read back at start, so that a restart does not resolve
and re-fire an alert that lives on recent samples (a payment failure seen through the event stream).

The saved form is versioned, compressed JSON: ``{"format": 1, "saved_at": t, "series": [[name, labels,
[t...], [v...]], ...]}``. Only the metrics that rules read are saved, only their samples within the store's
retention, at most ``MAX_SAMPLES`` samples in all (the newest series first when there are more); staleness
markers are not saved. Taking the samples is a copy on the loop; encoding happens wherever the caller runs it.
"""

from __future__ import annotations

import base64
import logging
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from alertd.models import Sample
from alertd.series.store import SeriesStore

log = logging.getLogger(__name__)

FORMAT = 1
META_KEY = "series"
MAX_SAMPLES = 500_000


@dataclass(frozen=True)
class Taken:
    """Samples copied out of the store, ready to encode off the loop."""

    saved_at: float
    series: list[tuple[str, dict[str, str], list[float], list[float]]]
    left_out: int


def take(store: SeriesStore, names: Iterable[str], now: float, max_samples: int = MAX_SAMPLES) -> Taken:
    """Copy the samples of ``names`` newer than the store's retention (on the loop: the store is its)."""
    since = now - store.retention
    found = []
    for name in set(names):
        for series in store.by_name(name):
            ts, vs = series.window(since, math.inf)
            if ts:
                found.append((ts[-1], series.name, dict(series.labels), list(ts), list(vs)))
    found.sort(key=lambda item: item[0], reverse=True)  # the freshest series first, when not all fit
    kept: list[tuple[str, dict[str, str], list[float], list[float]]] = []
    total = left_out = 0
    for _, name, labels, ts, vs in found:
        if total + len(ts) > max_samples:
            left_out += 1
            continue
        total += len(ts)
        kept.append((name, labels, ts, vs))
    return Taken(now, kept, left_out)


def encode(taken: Taken) -> str:
    """The text saved in the state store (zlib-compressed JSON, in base 85 so that it is text)."""
    data = orjson.dumps({"format": FORMAT, "saved_at": taken.saved_at, "series": taken.series})
    return base64.b85encode(zlib.compress(data, 6)).decode()


@dataclass(frozen=True)
class Restored:
    series: int
    samples: int
    saved_at: float


def decode(text: str) -> tuple[float, list[Sample]]:
    """The saved time and samples; ValueError for anything that is not a whole saved form of this format."""
    try:
        data: Any = orjson.loads(zlib.decompress(base64.b85decode(text)))
    except (ValueError, zlib.error) as exc:
        raise ValueError(f"not a saved series form: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"saved series of format {data.get('format') if isinstance(data, dict) else '?'}, "
                         f"this alertd reads format {FORMAT}")
    saved_at = data.get("saved_at")
    if not isinstance(saved_at, int | float) or not math.isfinite(saved_at):
        raise ValueError("saved series without a time")
    samples: list[Sample] = []
    for item in data.get("series", ()):
        name, labels, ts, vs = item
        if not (isinstance(name, str) and isinstance(labels, dict) and len(ts) == len(vs)):
            raise ValueError("a saved series is malformed")
        samples += [Sample(name, labels, float(v), float(t)) for t, v in zip(ts, vs, strict=True)]
    return float(saved_at), samples


def restore(store: SeriesStore, text: str | None, now: float, tolerance: float) -> Restored | None:
    """Put the saved samples back when they were saved less than ``tolerance`` ago; None (and a log line)
    when there is nothing to restore, it is too old, or it cannot be read."""
    if not text:
        return None
    try:
        saved_at, samples = decode(text)
    except (ValueError, TypeError) as exc:
        log.warning("saved series not restored: %s", exc)
        return None
    if now - saved_at > tolerance:
        log.info("saved series not restored: saved %.0f s ago, more than [state] outage_tolerance (%.0f s); "
                 "alerts that live on recent samples resolve, and fire again on new ones", now - saved_at, tolerance)
        return None
    store.add_many(samples)
    names = {s.key for s in samples}
    return Restored(len(names), len(samples), saved_at)
