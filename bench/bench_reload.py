"""How long a reload of 500 rules holds the event loop.

Run: .venv/bin/python bench/bench_reload.py
A ticker wakes every millisecond while the daemon reloads; the longest gap between two ticks is the longest a
page would have waited. Printed for the files read and compiled on the loop, and for ``Daemon.reload``, which
reads and compiles them in a thread and swaps the result in on the loop.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alertd.daemon import Daemon, build  # noqa: E402
from alertd.daemon.reload import build_candidate  # noqa: E402
from bench.bench_eval import rule_text  # noqa: E402
from tests.helpers import OFFLINE  # noqa: E402

RUNS = 5


async def longest_gap(work: Callable[[], Awaitable[None]]) -> float:
    """The longest the loop went without running a 1 ms ticker while ``work`` ran."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    await work()
    done.set()
    await task
    return max(gaps)


async def measure(daemon: Daemon) -> None:
    async def on_the_loop() -> None:
        build_candidate(daemon.loaded.path, daemon.pm)

    async def reload() -> None:
        result = await daemon.reload("bench")
        assert result.ok, result.message

    for label, work in (("read and compiled on the loop", on_the_loop), ("Daemon.reload (in a thread)", reload)):
        gaps = sorted([await longest_gap(work) for _ in range(RUNS)])
        print(f"{label:32} longest gap: median {statistics.median(gaps) * 1000:5.0f} ms, "
              f"max {gaps[-1] * 1000:5.0f} ms ({RUNS} reloads)")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "rules").mkdir()
        for f in range(5):
            (workdir / "rules" / f"r{f}.toml").write_text(
                rule_text(100, 100, 100).replace('name = "bench"', f'name = "g{f}"'))
        cfg = workdir / "alertd.toml"
        cfg.write_text(OFFLINE + "[http]\nenabled = false\n")
        daemon = build(str(cfg))

        async def run() -> None:
            try:
                await measure(daemon)
            finally:
                await daemon.close()

        asyncio.run(run())


if __name__ == "__main__":
    main()
