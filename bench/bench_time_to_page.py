"""Time to page, end to end: a task raising in a real prefork worker, to the PagerDuty request arriving at a
loopback PagerDuty. Run ``python bench/bench_time_to_page.py [--failures 100] [--pace 0.2] [--troubled]``.

Each failure is its own incident: the rule groups by exception type, the failures cycle through the builtin
exception classes, and the window (2 s) has resolved the previous incident of a type before it comes round
again. The clock starts at ``apply_async`` in this process (so it includes the broker hop and the worker
picking the task up, a few milliseconds) and stops when the peer has read the trigger.

``--troubled`` adds two receivers that get a warning for every failure: a Slack that answers in 8 s and one
that answers 429 with Retry-After 1 s to everything. Their lanes fill; the pages must not notice.
"""

from __future__ import annotations

import argparse
import builtins
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.alertd_process import AlertdProcess  # noqa: E402
from tests.peers import Reply  # noqa: E402
from tests.peers.pagerduty import PagerDutyPeer  # noqa: E402
from tests.peers.slack import SlackPeer  # noqa: E402
from tests.services import start_redis, wait_until  # noqa: E402
from tests.workers import start_worker  # noqa: E402

KEY = "R0UT1NGKEY0123456789abcdef012345"
RULE = """
[[groups]]
name = "tasks"
interval = "1s"
[[groups.rules]]
name = "TaskFailed"
select = 'celery_task_failures_total{task_name="tasks.fail"}'
function = "increase"
window = "2s"
aggregate = "sum"
by = ["exception_type"]
condition = "value > 0"
severity = "critical"
summary = "failed with {{ labels.exception_type }}"
"""
WARNING_RULE = """
[[groups.rules]]
name = "TaskFailedWarning"
select = 'celery_task_failures_total{task_name="tasks.fail"}'
function = "increase"
window = "2s"
aggregate = "sum"
by = ["exception_type"]
condition = "value > 0"
severity = "warning"
summary = "warning: failed with {{ labels.exception_type }}"
"""
EXCEPTIONS = sorted(
    n for n, v in vars(builtins).items()
    if isinstance(v, type) and issubclass(v, Exception) and not n.startswith("_")
    and n not in ("MemoryError", "ExceptionGroup", "UnicodeDecodeError", "UnicodeEncodeError", "UnicodeTranslateError",
                  "SystemExit", "KeyboardInterrupt", "OSError", "EnvironmentError", "IOError")
)


def triggers(peer: PagerDutyPeer) -> list[tuple[str, float]]:
    """The triggers the peer read: (the exception type in the summary, when)."""
    return [(r.json["payload"]["summary"].rsplit(" ", 1)[-1], r.time) for r in peer.requests
            if r.json and r.json.get("event_action") == "trigger"]


def latencies(sent: list[tuple[str, float]], got: list[tuple[str, float]]) -> list[float]:
    """Each failure's time to page: to the first trigger for its exception type after it was sent."""
    used: set[int] = set()
    out = []
    for exc, at in sent:
        j = next(k for k, (e, t) in enumerate(got) if k not in used and e == exc and t >= at)
        used.add(j)
        out.append(got[j][1] - at)
    return sorted(out)


def config(workdir: Path, broker: str, queue: str, pagerduty: str, troubled: tuple[str, str] | None = None,
           *, extra: str = "", extra_rules: dict[str, str] | None = None) -> Path:
    """The daemon's configuration; ``extra`` is appended to it, ``extra_rules`` are more rule files."""
    (workdir / "rules").mkdir()
    (workdir / "rules" / "tasks.toml").write_text(RULE + (WARNING_RULE if troubled else ""))
    for name, text in (extra_rules or {}).items():
        (workdir / "rules" / name).write_text(text)
    trouble = "" if troubled is None else f"""
[receivers.slow]
type = "slack"
webhook_url = "{troubled[0]}"
[receivers.limited]
type = "slack"
webhook_url = "{troubled[1]}"
[[route.routes]]
matchers = ['severity="warning"']
receiver = "slow"
continue = true
[[route.routes]]
matchers = ['severity="warning"']
receiver = "limited"
"""
    cfg = workdir / "alertd.toml"
    cfg.write_text(f"""
rule_files = ["rules/*.toml"]
[state]
url = "state.db"
[celery]
broker_url = "{broker}"
queues = ["{queue}"]
[collectors.inspect]
enabled = false
[http]
listen = "127.0.0.1:0"
[reload]
watch = false
[receivers.pager]
type = "pagerduty"
url = "{pagerduty}"
routing_key = "{KEY}"
# 100 incidents in 20 s (and their resolves) are 10 events a second: more than PagerDuty's 120 a minute per
# routing key, which is the plugin's default budget. The loopback peer does not limit; this lifts the budget.
rate_limit = 1000
rate_burst = 100
[route]
receiver = "pager"
group_by = ["alertname", "exception_type"]
group_wait = "0s"
group_interval = "1s"
{trouble}{extra}""")
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--failures", type=int, default=100)
    parser.add_argument("--pace", type=float, default=0.2, help="seconds between failures")
    parser.add_argument("--troubled", action="store_true", help="add a receiver that answers in 8 s and one "
                        "that answers 429 (Retry-After 1 s), each warned of every failure")
    args = parser.parse_args()
    redis = start_redis()
    worker = start_worker(redis.url, "ttp", concurrency=2)
    peer = PagerDutyPeer().start()
    slow, limited = SlackPeer().start(), SlackPeer().start()
    slow.delay = 8.0
    limited.always = Reply(429, "rate_limited", {"Retry-After": "1"})
    troubled = (slow.webhook_url, limited.webhook_url) if args.troubled else None
    workdir = Path(tempfile.mkdtemp(prefix="alertd-bench-ttp-"))
    alertd = AlertdProcess(config(workdir, redis.url, worker.queue, peer.enqueue_url, troubled))
    try:
        alertd.start().started()
        time.sleep(1.0)  # the event subscription takes effect a moment after "connected" (see the consumer)
        sent: list[tuple[str, float]] = []
        for i in range(args.failures):
            exc = EXCEPTIONS[i % len(EXCEPTIONS)]
            sent.append((exc, time.time()))
            worker.send("tasks.fail", exc, "bench")
            time.sleep(args.pace)

        try:
            wait_until(lambda: len(triggers(peer)) >= args.failures, timeout=30, what="every page")
        except TimeoutError:
            paged = {e for e, _ in triggers(peer)}
            missing = sorted({e for e, _ in sent} - paged)
            raise SystemExit(f"{len(triggers(peer))} pages for {args.failures} failures; never paged: {missing}") from None
        got = triggers(peer)
        times = latencies(sent, got)
        q = statistics.quantiles(times, n=100, method="inclusive")
        print(f"time to page over {len(times)} failures (apply_async -> PagerDuty request read):")
        print(f"  p50 {q[49] * 1000:.1f} ms   p90 {q[89] * 1000:.1f} ms   p99 {q[98] * 1000:.1f} ms   "
              f"max {times[-1] * 1000:.1f} ms   min {times[0] * 1000:.1f} ms")
        print(f"  triggers received: {len(got)} for {args.failures} failures")
        if args.troubled:
            print(f"  meanwhile: {len(slow.requests)} requests to the 8 s receiver, {len(limited.requests)} "
                  f"answered 429 ({limited.violations} before their Retry-After)")
    finally:
        alertd.kill()
        peer.stop()
        slow.stop()
        limited.stop()
        worker.kill()
        redis.stop()


if __name__ == "__main__":
    main()
