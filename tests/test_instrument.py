"""alertd.instrument in real prefork workers: one Pushgateway group per process, every task counted once."""

from __future__ import annotations

import re
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from alertd.instrument import Instrumentation
from tests.services import Pushgateway, RedisServer, free_port, wait_until
from tests.workers import CeleryWorker

pytestmark = pytest.mark.integration

Groups = dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]


def groups_of(gateway: Pushgateway, instance: str) -> Groups:
    """``{pid: {(metric, labels without job/instance/pid): value}}`` of one worker's groups."""
    text = urllib.request.urlopen(f"{gateway.url}/metrics", timeout=5).read().decode()
    out: Groups = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("instance") != instance or not s.name.startswith("celery_"):
                continue
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("job", "instance", "pid")))
            out[s.labels["pid"]][(s.name, labels)] = s.value
    return dict(out)


def total(groups: Groups, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for g in groups.values() for (n, ls), v in g.items() if n == name and want <= set(ls))


def children_of(pid: int) -> set[str]:
    return set(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


@pytest.fixture(scope="module")
def pushing_worker(
    module_redis: RedisServer, module_pushgateway: Pushgateway, module_worker_factory: Callable[..., CeleryWorker]
) -> CeleryWorker:
    return module_worker_factory(module_redis.url, "instr", pushgateway_url=module_pushgateway.url, push_interval=0.3)


def test_each_process_pushes_its_own_group_and_every_task_counts_once(
    pushing_worker: CeleryWorker, module_pushgateway: Pushgateway
) -> None:
    w = pushing_worker
    for i in range(12):
        w.send("tasks.payment.charge", i)
    for _ in range(5):
        w.send("tasks.fail", "KeyError")
    for _ in range(3):
        w.send("tasks.fail", "PaymentDeclined")

    def settled() -> Groups | None:
        g = groups_of(module_pushgateway, w.name)
        done = total(g, "celery_tasks_completed_total")
        return g if total(g, "celery_tasks_started_total") == 20 and done == 20 else None

    groups = wait_until(settled, timeout=20, interval=0.1, what="the pushes of 20 tasks")
    assert isinstance(groups, dict)
    assert total(groups, "celery_tasks_failed_total") == 8
    assert total(groups, "celery_tasks_failed_total", exception_type="KeyError", task_name="tasks.fail") == 5
    assert total(groups, "celery_tasks_failed_total", exception_type="PaymentDeclined") == 3
    assert total(groups, "celery_tasks_completed_total", state="SUCCESS", task_name="tasks.payment.charge") == 12
    assert total(groups, "celery_task_duration_seconds_count") == 20
    assert total(groups, "celery_active_tasks") == 0
    # One group per process: the pids are the pool children (plus the parent only if it had something to say).
    children = children_of(w.pid)
    started_in = {pid for pid, g in groups.items() if any(n == "celery_tasks_started_total" for n, _ in g)}
    assert started_in and started_in <= children, (started_in, children)
    assert set(groups) <= children | {str(w.pid)}
    print(f"\ngroups: {sorted(groups)} (children {sorted(children)}, parent {w.pid})")


def test_a_hard_time_limit_is_counted_by_the_parent(pushing_worker: CeleryWorker, module_pushgateway: Pushgateway) -> None:
    w = pushing_worker
    w.send("tasks.hard_limit", 30.0)
    parent = str(w.pid)

    def counted() -> bool:
        g = groups_of(module_pushgateway, w.name).get(parent, {})
        key = ("celery_tasks_failed_total", (("exception_type", "TimeLimitExceeded"), ("task_name", "tasks.hard_limit")))
        return g.get(key) == 1

    wait_until(counted, timeout=15, interval=0.1, what="the parent's push of the time limit failure")
    groups = groups_of(module_pushgateway, w.name)
    assert total(groups, "celery_tasks_failed_total", task_name="tasks.hard_limit") == 1  # counted once, not twice
    assert total(groups, "celery_tasks_completed_total", task_name="tasks.hard_limit") == 1


def test_the_last_changes_are_pushed_when_the_worker_stops(
    module_redis: RedisServer, module_pushgateway: Pushgateway, worker_factory: Callable[..., CeleryWorker]
) -> None:
    # A push interval far beyond the test: whatever reaches the gateway was pushed at process exit.
    w = worker_factory(module_redis.url, "instr-exit", pushgateway_url=module_pushgateway.url, push_interval=600)
    for _ in range(3):
        w.send("tasks.email.send")
    wait_until(lambda: w.log().count("succeeded in") == 3, timeout=15, what="three tasks to succeed")
    assert groups_of(module_pushgateway, w.name) == {}
    w.stop()
    groups = groups_of(module_pushgateway, w.name)
    assert total(groups, "celery_tasks_started_total", task_name="tasks.email.send") == 3
    assert total(groups, "celery_tasks_completed_total", state="SUCCESS") == 3


def test_a_pushgateway_that_is_down_never_breaks_a_task(
    module_redis: RedisServer, worker_factory: Callable[..., CeleryWorker]
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    w = worker_factory(module_redis.url, "instr-nogw", pushgateway_url=closed, push_interval=0.2)
    for _ in range(4):
        w.send("tasks.payment.charge")
    wait_until(lambda: w.log().count("succeeded in") == 4, timeout=15, what="four tasks to succeed")
    warning = re.compile(r"cannot push metrics to " + re.escape(closed) + r" \(pid (\d+)\)")
    wait_until(lambda: warning.search(w.log()), timeout=10, what="the push failure in the worker's log")
    for _ in range(4):
        w.send("tasks.payment.charge")
    wait_until(lambda: w.log().count("succeeded in") == 8, timeout=15, what="four more tasks to succeed")
    w.stop()  # the exit pushes fail the same way
    log = w.log()
    per_pid = defaultdict(int)
    for m in warning.finditer(log):
        per_pid[m.group(1)] += 1
    assert per_pid and all(n == 1 for n in per_pid.values()), per_pid  # logged once per change of error
    assert "Traceback" not in log


def test_install_is_idempotent_and_pushes_nothing_outside_a_worker() -> None:
    from celery import Celery, signals

    import alertd.instrument

    app = Celery("idle", broker="memory://", set_as_current=False)

    def ours() -> int:
        # Counted by dispatch uid: other tests' receivers come and go (weak references) while this one runs.
        uid = f"alertd.instrument.{id(app)}"
        return sum(1 for key, _ in signals.task_prerun.receivers if str(key[0]).startswith(uid))

    sent: list[dict[str, object]] = []

    def published(headers: dict[str, object] | None = None, **_: object) -> None:
        sent.append(dict(headers or {}))

    signals.after_task_publish.connect(published, weak=False, dispatch_uid="test-instrument-published")
    first = alertd.instrument.install(app, "http://127.0.0.1:1")
    try:
        before = time.time()
        app.send_task("tasks.anything")  # a worker's retries and subtasks carry the publish time too
        stamp = sent[-1]["alertd_published_at"]
        assert isinstance(stamp, float) and before <= stamp <= time.time()
        assert isinstance(first, Instrumentation)
        assert alertd.instrument.install(app, "http://127.0.0.1:1") is first
        assert ours() == 1
        first.on_prerun(task_id="t", task=app.tasks["celery.chord_unlock"])
        first.stop()  # never started: a process that only sends tasks does not push
        assert first.pushes == first.push_errors == 0
        assert first.grouping_key["pid"].isdigit()
    finally:
        alertd.instrument.uninstall(app)
        app.send_task("tasks.anything")
        signals.after_task_publish.disconnect(dispatch_uid="test-instrument-published")
    assert ours() == 0
    assert "alertd_published_at" not in sent[-1]
