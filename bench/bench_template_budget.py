"""What the template budget costs: the 1,000-rule evaluation benchmark with the bounded environment and with an
unbounded sandbox (the environment alertd used before the budget), and one summary rendered alone.

Run: .venv/bin/python bench/bench_template_budget.py [--quick] [--hostile (only the hostile payloads)]
The two engines evaluate in turn, cycle after cycle, so that a busy machine weighs on both alike.
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
import timeit
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_eval import build  # noqa: E402
from jinja2 import StrictUndefined  # noqa: E402
from jinja2.sandbox import SandboxedEnvironment  # noqa: E402

from alertd.plugins import make_plugin_manager  # noqa: E402
from alertd.templating.env import make_environment, render_bounded  # noqa: E402


def unbounded() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    for filters in reversed(make_plugin_manager(load_entry_points=False).hook.register_template_filters()):
        env.filters.update(filters)
    return env


def render_cost(env: SandboxedEnvironment, n: int) -> float:
    """CPU µs per rendering of a typical summary: the best of 5 runs of n."""
    template = env.from_string("{{ labels.task_name }} failed {{ value | int }} times ({{ value | humanize }})")
    context = {"labels": {"task_name": "tasks.payment.charge"}, "value": 1234.0}
    timer = timeit.Timer(lambda: template.render(context), timer=time.thread_time)
    return min(timer.repeat(number=n, repeat=5)) / n * 1e6


HOSTILE = [
    "{{ 'x' * 10**10 }}",
    "{{ range(10**9) | list }}",
    "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
    "{{ ('a' * 60000) | join('b' * 60000) }}",
    "{{ lipsum(10**6) }}",
    "{{ '%0999999999d' | format(1) }}",
    "{{ '{:>999999999}'.format(1) }}",
]


def hostile() -> None:
    """Each payload with the default budget: rendering time (compiled beforehand), peak traced memory, limit met."""
    env = make_environment()
    print(f"{'template':<82} {'ms':>6} {'peak KiB':>9}  limit")
    for source in HOSTILE:
        template = env.from_string(source)
        t0 = time.perf_counter()
        result = render_bounded(template, {}, report=False)
        took = (time.perf_counter() - t0) * 1000
        tracemalloc.start()
        render_bounded(template, {}, report=False)
        peak = tracemalloc.get_traced_memory()[1] / 1024
        tracemalloc.stop()
        print(f"{source:<82} {took:6.1f} {peak:9.0f}  {result.breach.limit if result.breach else '-'}")


def main() -> None:
    quick = "--quick" in sys.argv
    if "--hostile" in sys.argv:
        hostile()
        return
    cycles = 30 if quick else 200
    with tempfile.TemporaryDirectory() as d:
        engines = {"unbounded sandbox": build(1000, 10_000, Path(d), unbounded()),
                   "bounded (default budget)": build(1000, 10_000, Path(d), make_environment())}
        for engine, now in engines.values():
            engine.evaluate(now)  # warm up: first transitions, caches
        gc.collect()
        gc.freeze()
        times: dict[str, list[float]] = {name: [] for name in engines}
        cpu: dict[str, list[float]] = {name: [] for name in engines}
        for c in range(cycles):  # a cycle each, in turn; 0.1 s apart, so the data stays within the lookback
            for name, (engine, now) in engines.items():
                t0, c0 = time.perf_counter(), time.thread_time()
                engine.evaluate(now + c * 0.1)
                times[name].append((time.perf_counter() - t0) * 1000)
                cpu[name].append((time.thread_time() - c0) * 1000)
        gc.unfreeze()
        firing = len(next(iter(engines.values()))[0].alerts())
    print(f"1,000 rules x 10,000 series, {firing} alerts; one evaluation cycle, ms ({cycles} cycles each, in turn)")
    print(f"  {'':<26} {'p50':>7} {'p10':>7} {'p90':>7} {'CPU p50':>8}")
    for name, values in times.items():
        q = statistics.quantiles(values, n=10)
        print(f"  {name:<26} {statistics.median(values):7.1f} {q[0]:7.1f} {q[-1]:7.1f} {statistics.median(cpu[name]):8.1f}")
    for label, series in (("wall", times), ("CPU", cpu)):
        base, bounded = (statistics.median(v) for v in series.values())
        print(f"  overhead at p50, {label} time: {(bounded - base) / base * 100:+.1f}%")
    n = 20_000 if quick else 100_000
    plain, guarded = render_cost(unbounded(), n), render_cost(make_environment(), n)
    print(f"one summary, CPU: {plain:.1f} µs unbounded, {guarded:.1f} µs bounded ({(guarded - plain) / plain * 100:+.0f}%)")
    print()
    hostile()


if __name__ == "__main__":
    main()
