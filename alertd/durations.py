"""Durations as written in files ("30s", "5m", "1h30m", "250ms") in, seconds as float out."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

MAX_DURATION = 10 * 365 * 86400.0  # anything longer in a file is a typo (or an attack), not a wish
MIN_INTERVAL = 0.1  # evaluation and collection intervals; under a second is meant for tests
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str) -> float:
    """Parse a duration such as ``"90s"``, ``"5m"`` or ``"1h30m"`` into seconds.

    Raises ValueError with a message meant for a person when the text is not a duration.
    """
    s = text.strip()
    if s == "0":
        return 0.0
    pos = 0
    total = 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"invalid duration {text!r}: use a number and a unit, like 30s, 5m, 1h or 1h30m")
    return total


def format_duration(seconds: float) -> str:
    """Format seconds the way they are written in files: 90 -> "1m30s", 0.25 -> "250ms"."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    out = []
    rest = seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        n = int(rest // size)
        if n:
            out.append(f"{n}{unit}")
            rest -= n * size
    if rest or not out:
        out.append(f"{rest:g}s")
    return "".join(out)


def _coerce(value: Any) -> Any:
    if isinstance(value, str):
        seconds = parse_duration(value)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("a duration must be a string like '30s'")
    else:
        seconds = float(value)
    if math.isnan(seconds) or seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION:
        raise ValueError(f"{value!r} is longer than 10 years")
    return seconds


def _interval(seconds: float) -> float:
    if seconds < MIN_INTERVAL:
        raise ValueError(f"an interval must be at least {format_duration(MIN_INTERVAL)}")
    return seconds


Duration = Annotated[float, BeforeValidator(_coerce), PlainSerializer(format_duration, return_type=str)]
"""A pydantic field type: accepts "30s" (or a number of seconds), holds seconds, serializes back to "30s"."""

Interval = Annotated[float, BeforeValidator(_coerce), AfterValidator(_interval),
                     PlainSerializer(format_duration, return_type=str)]
"""A Duration that sets how often something runs: at least 100 ms."""
