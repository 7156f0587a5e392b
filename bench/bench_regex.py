"""Hostile regexes against normal ones, over 10,000 alerts: an API filter pass and a silence pass.

Run: .venv/bin/python bench/bench_regex.py [--alerts 10000] [--passes 20]
Every alert has its own queue label (about 30 characters), so each value goes through RE2 rather than the
per-pattern memo of results; the last table repeats the filter pass on 10 distinct values, where the memo
answers. A filter pass is what GET /api/v1/alerts?filter=... runs over the alert views; a silence pass is
the first look at every alert after a silence is added (later passes read the silences' per-alert cache).
Python's re is timed on the normal pattern (the engine before RE2), and on the probe once, on one short
value: on these values it would run for hours.
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alertd.dispatch.matchers import Matchers  # noqa: E402
from alertd.models import Alert  # noqa: E402
from alertd.notify.silence import Silences  # noqa: E402
from alertd.state.memory import MemoryStateStore  # noqa: E402
from alertd.testing import VirtualClock, make_alert  # noqa: E402

START = 1_700_000_000.0
NORMAL = r"celery\.payments\.refund-0[0-4].*"
HOSTILE = {
    "(.*.*)*!": "the issue's probe",
    "(a|aa)*b": "alternation under a star",
    "(x+x+)+y": "nested pluses",
    "(.*,){12}!": "counted repetition of .*",
}


def alerts(count: int, distinct: int | None = None) -> list[Alert]:
    values = distinct or count
    return [
        make_alert(name="QueueBacklog", starts_at=START,
                   labels={"queue": f"celery.payments.refund-{i % values:05d}", "team": "payments"})
        for i in range(count)
    ]


def timed(passes: int, run: Callable[[], int]) -> tuple[float, int]:
    """Median milliseconds of a pass, and what the last pass counted."""
    times = []
    found = 0
    for _ in range(passes):
        started = time.perf_counter()
        found = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, found


def filter_pass(batch: list[Alert], pattern: str) -> Callable[[], int]:
    matchers = Matchers.parse([f'queue=~"{pattern}"'])

    def run() -> int:
        # As the API does: parse the filter (a cache hit after the first time), test every alert.
        matchers = Matchers.parse([f'queue=~"{pattern}"'])
        return sum(1 for a in batch if matchers.matches(a.labels))

    assert matchers
    return run


def silence_pass(batch: list[Alert], pattern: str) -> Callable[[], int]:
    silences = Silences(MemoryStateStore(), VirtualClock(START))

    def run() -> int:
        # A silence added: every alert is tested against it once, then the answer is cached per alert.
        added = silences.add([f'queue=~"{pattern}"', 'team="payments"'], ends_at=START + 3600,
                             created_by="bench", comment="")
        found = sum(1 for a in batch if silences.silenced_by(a, START + 1))
        silences.expire(added.id)
        return found

    return run


def python_re_filter_pass(batch: list[Alert], pattern: str) -> Callable[[], int]:
    fullmatch = re.compile(pattern, re.DOTALL).fullmatch

    def run() -> int:
        return sum(1 for a in batch if fullmatch(a.labels["queue"]) is not None)

    return run


def python_re_reference() -> float:
    compiled = re.compile("(.*.*)*!", re.DOTALL)
    started = time.perf_counter()
    compiled.fullmatch("a" * 12)
    return (time.perf_counter() - started) * 1000


def table(title: str, batch: list[Alert], passes: int, make: Callable[[list[Alert], str], Callable[[], int]]) -> None:
    print(f"\n{title}")
    print("| pattern | what | matched | ms per pass | vs normal |")
    print("|---|---|---:|---:|---:|")
    normal, found = timed(passes, make(batch, NORMAL))
    print(f"| `{NORMAL}` | normal | {found:,} | {normal:.1f} | 1.00x |")
    for pattern, what in HOSTILE.items():
        ms, found = timed(passes, make(batch, pattern))
        print(f"| `{pattern}` | {what} | {found:,} | {ms:.1f} | {ms / normal:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--passes", type=int, default=20)
    args = parser.parse_args()
    batch = alerts(args.alerts)
    gc.collect()
    gc.freeze()  # as the daemon does after start-up
    print(f"{len(batch):,} alerts, each with its own queue label; median of {args.passes} passes")
    table("API filter pass", batch, args.passes, filter_pass)
    ms, found = timed(args.passes, python_re_filter_pass(batch, NORMAL))
    print(f"(Python's re, the normal pattern, the same pass: {found:,} matched, {ms:.1f} ms)")
    table("Silence pass", batch, args.passes, silence_pass)
    table("API filter pass, 10 distinct label values", alerts(args.alerts, 10), args.passes, filter_pass)
    print(f"\nPython's re, (.*.*)*! against one 12-character value: {python_re_reference():.0f} ms")


if __name__ == "__main__":
    main()
