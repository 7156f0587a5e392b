"""Text for a terminal: aligned tables, ages ("3m 12s") and local times, as the ``alertd`` commands print them."""

from __future__ import annotations

import time
from collections.abc import Sequence


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, a header line first, no trailing spaces."""
    lines = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines)


def format_age(seconds: float) -> str:
    """A span of time for a person, its two largest units: 192 -> "3m 12s", 93784 -> "1d 2h", 0.4 -> "0s"."""
    rest = round(max(0.0, seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, rest = divmod(rest, size)
        if n:
            parts.append(f"{n}{unit}")
    return " ".join(parts[:2]) or "0s"


def age_since(ts: float | None, now: float | None = None) -> str:
    """How long ago ``ts`` (unix seconds) was, as ``format_age`` writes it; "" for no time."""
    if ts is None:
        return ""
    return format_age((time.time() if now is None else now) - ts)


def local_time(ts: float | None) -> str:
    """Unix seconds as local time, "2026-11-24 14:02:11"; "" for no time."""
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def relative_time(ts: float | None, now: float | None = None) -> str:
    """Local time and how far it is from now: "2026-11-24 14:02:11 (3m 12s ago)" or "(in 2h)"; "" for no time."""
    if ts is None:
        return ""
    delta = ts - (time.time() if now is None else now)
    if abs(delta) < 1:
        return f"{local_time(ts)} (now)"
    return f"{local_time(ts)} ({'in ' + format_age(delta) if delta > 0 else format_age(-delta) + ' ago'})"
