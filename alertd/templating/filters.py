"""Built-in template filters, registered as an ordinary plugin (trylast, so a plugin may replace one)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

from alertd.durations import format_duration
from alertd.hookspecs import hookimpl


def humanize(value: float) -> str:
    """1234567 -> "1.235M": a number short enough for a message."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    v = float(value)
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            return f"{v / size:.4g}{suffix}"
    return f"{v:.4g}"


def humanize_duration(seconds: float) -> str:
    """90 -> "1m30s"."""
    return format_duration(round(float(seconds), 3))


def humanize_percentage(ratio: float) -> str:
    """0.0523 -> "5.23%"."""
    return f"{float(ratio) * 100:.4g}%"


def timestamp_iso(value: float) -> str:
    """Seconds since the epoch -> ISO 8601 in UTC."""
    return dt.datetime.fromtimestamp(float(value), tz=dt.UTC).isoformat(timespec="seconds")


@hookimpl(trylast=True)
def register_template_filters() -> dict[str, Callable[..., Any]]:
    return {
        "humanize": humanize,
        "humanize_duration": humanize_duration,
        "humanize_percentage": humanize_percentage,
        "timestamp_iso": timestamp_iso,
    }
