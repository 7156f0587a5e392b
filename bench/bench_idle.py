"""alertd idle: the shipped rules plus 9, 4 workers (each its own process and hostname), 10 queues, nothing
failing. Reports alertd's CPU share and memory over a quiet stretch. Run ``python bench/bench_idle.py [--seconds 60]``.

The rules are those shipped in rules/ (11 when bench/README.md was measured) plus 9 queue-depth rules; the
collectors run at their defaults (queues every 15 s, broker 15 s, workers 30 s, inspect 60 s) plus the event
stream with 4 workers' heartbeats.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_storm import proc_status  # noqa: E402
from tests.alertd_process import AlertdProcess  # noqa: E402
from tests.services import start_redis  # noqa: E402
from tests.workers import start_worker  # noqa: E402

QUEUES = [f"q{i}" for i in range(10)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    args = parser.parse_args()
    redis = start_redis()
    workers = [start_worker(redis.url, f"idle{i}", queue=QUEUES[i]) for i in range(4)]
    workdir = Path(tempfile.mkdtemp(prefix="alertd-bench-idle-"))
    shutil.copytree(ROOT / "rules", workdir / "rules", ignore=shutil.ignore_patterns("tests"))
    extra = "".join(f"""
[[groups.rules]]
name = "Depth{q}"
select = 'celery_queue_depth{{queue="{q}"}}'
condition = "value > 1000"
severity = "warning"
summary = "queue {q} is deep"
""" for q in QUEUES[:9])
    (workdir / "rules" / "depth.toml").write_text('[[groups]]\nname = "depth"\n' + extra)
    cfg = workdir / "alertd.toml"
    queues = ", ".join(f'"{q}"' for q in QUEUES)
    cfg.write_text(f"""
rule_files = ["rules/*.toml"]
[state]
url = "state.db"
[celery]
broker_url = "{redis.url}"
queues = [{queues}]
[http]
listen = "127.0.0.1:0"
""")
    alertd = AlertdProcess(cfg)
    try:
        alertd.start().started()
        rules = alertd.wait_for_line("alertd starting")
        time.sleep(args.warmup)
        assert alertd.proc is not None
        _, cpu0 = proc_status(alertd.proc.pid)
        t0 = time.time()
        time.sleep(args.seconds)
        hwm, cpu1 = proc_status(alertd.proc.pid)
        rss = next(int(line.split()[1]) for line in Path(f"/proc/{alertd.proc.pid}/status").read_text().splitlines()
                   if line.startswith("VmRSS"))
        elapsed = time.time() - t0
        print(f"idle over {elapsed:.0f}s ({rules.split(': ', 1)[1][:60]}...), 4 workers, 10 queues:")
        print(f"  CPU {100 * (cpu1 - cpu0) / elapsed:.2f}% of one core ({cpu1 - cpu0:.2f}s)")
        print(f"  memory: RSS {rss / 1024:.0f} MiB, peak (VmHWM) {hwm / 1024:.0f} MiB")
    finally:
        alertd.kill()
        for w in workers:
            w.kill()
        redis.stop()


if __name__ == "__main__":
    main()
