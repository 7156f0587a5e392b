"""Evaluation cycle cost: N rules over M series (conditions compiled once, series found through the index).

Run: .venv/bin/python bench/bench_eval.py [--quick]
Prints the time of one full evaluation cycle (p50/p99) for a grid of rule and series counts, and the time of
`alertd check` on 500 rules.
"""

from __future__ import annotations

import gc
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alertd.alerts.engine import RuleEngine  # noqa: E402
from alertd.check import check  # noqa: E402
from alertd.models import Sample  # noqa: E402
from alertd.rules.load import load_rules  # noqa: E402
from alertd.series.store import SeriesStore  # noqa: E402
from alertd.state.memory import MemoryStateStore  # noqa: E402
from alertd.templating.env import make_environment  # noqa: E402

STEP = 15.0
SAMPLES = 60  # 15 minutes of history per series


def rule_text(n_rules: int, n_tasks: int, n_queues: int) -> str:
    """A realistic mix: 40% queue thresholds, 40% failure increases per task, 20% failure ratios."""
    out = ["[[groups]]", 'name = "bench"', ""]
    for i in range(n_rules):
        kind = i % 5
        if kind in (0, 1):
            out += [
                "[[groups.rules]]", f'name = "QueueBacklog{i}"',
                f"select = 'celery_queue_depth{{queue=\"q{i % n_queues}\"}}'",
                'condition = "value > 1000"', 'for = "1m"', 'summary = "{{ labels.queue }}: {{ value | int }}"', "",
            ]
        elif kind in (2, 3):
            out += [
                "[[groups.rules]]", f'name = "TaskFailures{i}"',
                f"select = 'celery_tasks_failed_total{{task_name=\"tasks.t{i % n_tasks}\"}}'",
                'function = "increase"', 'window = "10m"', 'aggregate = "sum"', 'by = ["task_name"]',
                'condition = "value > 50"', 'summary = "{{ labels.task_name }} failed {{ value | int }} times"', "",
            ]
        else:
            t = i % n_tasks
            out += [
                "[[groups.rules]]", f'name = "FailureRatio{i}"',
                'value = "failed / started if started > 0 else 0"', 'condition = "started >= 20 and value > 0.05"',
                'summary = "{{ labels.task_name }} {{ value | humanize_percentage }}"',
                "[groups.rules.queries.failed]",
                f"select = 'celery_tasks_failed_total{{task_name=\"tasks.t{t}\"}}'",
                'function = "increase"', 'window = "10m"', 'aggregate = "sum"', 'by = ["task_name"]', "default = 0",
                "[groups.rules.queries.started]",
                f"select = 'celery_tasks_started_total{{task_name=\"tasks.t{t}\"}}'",
                'function = "increase"', 'window = "10m"', 'aggregate = "sum"', 'by = ["task_name"]', "",
            ]
    return "\n".join(out)


def build(n_rules: int, n_series: int, workdir: Path, env: Any = None) -> tuple[RuleEngine, float]:
    # Series: per task, failed and started counters for 5 worker processes; plus one depth per queue.
    n_queues = max(1, n_series // 10)
    n_tasks = max(1, (n_series - n_queues) // 10)
    path = workdir / f"rules-{n_rules}-{n_series}.toml"
    path.write_text(rule_text(n_rules, n_tasks, n_queues))
    rules = load_rules([str(path)], env if env is not None else make_environment())
    store = SeriesStore(retention=3600, lookback=300)
    now = SAMPLES * STEP
    for k in range(SAMPLES):
        t = k * STEP
        for q in range(n_queues):
            store.add(Sample("celery_queue_depth", {"queue": f"q{q}"}, float((q * 7 + k) % 1500), t))
        for task in range(n_tasks):
            for pid in range(5):
                labels = {"task_name": f"tasks.t{task}", "instance": "w1", "pid": str(pid)}
                store.add(Sample("celery_tasks_started_total", labels, float(k * (pid + 1)), t))
                store.add(Sample("celery_tasks_failed_total", labels, float(k * (task % 3)), t))
    engine = RuleEngine(rules, store, MemoryStateStore())
    return engine, now


def measure(n_rules: int, n_series: int, cycles: int, workdir: Path, env: Any = None) -> tuple[float, float, int, int]:
    engine, now = build(n_rules, n_series, workdir, env)
    engine.evaluate(now)  # warm up: first transitions, caches
    gc.collect()
    gc.freeze()  # the daemon freezes its long-lived objects too; a full collection is not part of a cycle
    times = []
    for c in range(cycles):
        t0 = time.perf_counter()
        engine.evaluate(now + c * STEP)
        times.append(time.perf_counter() - t0)
    gc.unfreeze()
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    firing = len(engine.alerts())
    return statistics.median(times) * 1000, p99 * 1000, engine.series.series_count, firing


def check_time(n_rules: int, workdir: Path) -> tuple[float, float]:
    rules_dir = workdir / "check" / "rules"
    rules_dir.mkdir(parents=True)
    per_file = n_rules // 5
    for f in range(5):
        (rules_dir / f"r{f}.toml").write_text(rule_text(per_file, 100, 100).replace('name = "bench"', f'name = "g{f}"'))
    cfg = workdir / "check" / "alertd.toml"
    cfg.write_text('rule_files = ["rules/*.toml"]\n')
    t0 = time.perf_counter()
    report = check(str(cfg))
    in_process = time.perf_counter() - t0
    assert report.ok, [str(e) for e in report.errors[:3]]
    t0 = time.perf_counter()
    subprocess.run([str(ROOT / ".venv" / "bin" / "alertd"), "check", "-c", str(cfg)], check=True, capture_output=True)
    whole = time.perf_counter() - t0
    return in_process, whole


def main() -> None:
    quick = "--quick" in sys.argv
    cycles = 10 if quick else 30
    grid = [(1000, 10_000)] if quick else [
        (250, 10_000), (500, 10_000), (1000, 10_000), (2000, 10_000),
        (1000, 2_500), (1000, 5_000), (1000, 20_000),
    ]
    with tempfile.TemporaryDirectory() as d:
        workdir = Path(d)
        print(f"{'rules':>6} {'series':>7} {'p50 ms':>8} {'p99 ms':>8} {'alerts':>7}")
        for n_rules, n_series in grid:
            p50, p99, count, alerts = measure(n_rules, n_series, cycles, workdir)
            print(f"{n_rules:>6} {count:>7} {p50:>8.1f} {p99:>8.1f} {alerts:>7}")
        in_process, whole = check_time(500, workdir)
        print(f"\nalertd check on 500 rules: {in_process * 1000:.0f} ms in process, {whole * 1000:.0f} ms as a command")


if __name__ == "__main__":
    main()
