"""Celery signals in a worker in, task metrics pushed to a Prometheus Pushgateway out, per worker process.

Install it where the Celery app is created::

    from celery import Celery
    import alertd.instrument

    app = Celery("proj", broker="redis://localhost:6379/0")
    alertd.instrument.install(app, "http://pushgateway:9091")

and run the workers with ``-E`` so that alertd also gets the event stream (task failures page within a second).

Queue age: where tasks are sent (web processes, beat, other services; ``install`` does it in workers) call
``stamp_publish_time()`` once: every task message the process sends then carries its publish time in the header
``alertd_published_at`` (seconds since the epoch), from which alertd's queues collector tells how long the
oldest message of each queue has waited. It costs one ``time.time()`` and ~35 bytes per message.

Every worker process keeps its own counters in a private registry and pushes them under its own grouping key
(``job``, ``instance`` = the worker's node name, ``pid``): in the prefork pool each child pushes its group,
and the parent pushes the failures it observes itself (hard time limits, lost children, terminated tasks).
alertd sums the groups and treats a group whose ``push_time_seconds`` is old as stale. A background thread
pushes every ``push_interval`` seconds, only when something changed, and once more when the process exits;
a push that fails is logged (once per distinct error) and never reaches the task.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import push_to_gateway

log = logging.getLogger("alertd.instrument")

DURATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 600)
_MAX_TRACKED = 10_000


class TaskMetrics:
    """The metrics of one process, in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.started = Counter("celery_tasks_started_total", "Tasks started", ["task_name"], registry=registry)
        self.completed = Counter(
            "celery_tasks_completed_total", "Tasks completed, by final state", ["task_name", "state"], registry=registry
        )
        self.failed = Counter(
            "celery_tasks_failed_total", "Tasks failed", ["task_name", "exception_type"], registry=registry
        )
        self.retried = Counter("celery_tasks_retried_total", "Tasks retried", ["task_name"], registry=registry)
        self.duration = Histogram(
            "celery_task_duration_seconds", "Task run time", ["task_name"], buckets=DURATION_BUCKETS, registry=registry
        )
        self.active = Gauge("celery_active_tasks", "Tasks running now", ["task_name"], registry=registry)


class Instrumentation:
    """Signal handlers, the current process's metrics and its pusher. ``install`` makes one per app."""

    def __init__(
        self,
        app: Any,
        pushgateway_url: str,
        *,
        job: str = "celery",
        push_interval: float = 5.0,
        registry: CollectorRegistry | None = None,
        grouping_key: dict[str, str] | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.app = app
        self.pushgateway_url = pushgateway_url
        self.job = job
        self.push_interval = push_interval
        self.timeout = timeout
        self.extra_grouping_key = dict(grouping_key or {})
        self.hostname = socket.gethostname()
        self.metrics = TaskMetrics(registry if registry is not None else CollectorRegistry())
        self.pushes = 0
        self.push_errors = 0
        self._pid = os.getpid()
        self._dirty = False
        self._started: dict[str, tuple[float, str]] = {}
        # A hard time limit reaches the parent twice (the pool's error callback and its timeout handler):
        # a failure is counted once per task id.
        self._failed_ids: OrderedDict[str, None] = OrderedDict()
        self._push_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None
        self._connected: list[tuple[Any, str]] = []

    # -- per process ------------------------------------------------------------------------------------

    @property
    def grouping_key(self) -> dict[str, str]:
        return {**self.extra_grouping_key, "instance": self.hostname, "pid": str(os.getpid())}

    def start(self, hostname: str | None = None) -> None:
        """Start pushing from this process. In a forked child, begin again from fresh metrics.

        A pool child inherits its parent's registry, counts included: pushing those again under the
        child's pid would count the parent's failures twice, so the child starts from zero.
        """
        if hostname:
            self.hostname = hostname
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self.metrics = TaskMetrics(CollectorRegistry())
            self._started.clear()
            self._failed_ids.clear()
            self._dirty = False
            self._push_lock = threading.Lock()
            self._stop = threading.Event()
            self._thread = None
            self._last_error = None
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._push_loop, name="alertd-instrument-push", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the pusher and push what changed since the last push (at process exit)."""
        if os.getpid() != self._pid or self._thread is None:
            return
        self._stop.set()
        self.push_if_changed()

    def _push_loop(self) -> None:
        while not self._stop.wait(self.push_interval):
            self.push_if_changed()

    def push_if_changed(self) -> bool:
        """Push this process's group when a metric changed since the last push; True when a push happened."""
        if not self._dirty:
            return False
        self._dirty = False
        with self._push_lock:
            try:
                push_to_gateway(
                    self.pushgateway_url, job=self.job, registry=self.metrics.registry,
                    grouping_key=self.grouping_key, timeout=self.timeout,
                )
            except Exception as exc:  # a Pushgateway that is down must never reach a task
                self._dirty = True
                self.push_errors += 1
                message = f"{type(exc).__name__}: {exc}"
                if message != self._last_error:
                    log.warning("alertd.instrument: cannot push metrics to %s (pid %d): %s",
                                self.pushgateway_url, os.getpid(), message)
                self._last_error = message
                return False
        self.pushes += 1
        if self._last_error is not None:
            log.info("alertd.instrument: pushing to %s again (pid %d)", self.pushgateway_url, os.getpid())
            self._last_error = None
        return True

    # -- signal handlers --------------------------------------------------------------------------------

    def on_prerun(self, task_id: str | None = None, task: Any = None, **_: Any) -> None:
        name = _task_name(task)
        self.metrics.started.labels(task_name=name).inc()
        self.metrics.active.labels(task_name=name).inc()
        if task_id is not None and len(self._started) < _MAX_TRACKED:
            self._started[task_id] = (time.monotonic(), name)
        self._dirty = True

    def on_postrun(self, task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
        begun = self._started.pop(task_id, None) if task_id is not None else None
        name = begun[1] if begun else _task_name(task)
        if begun is not None:
            self.metrics.duration.labels(task_name=name).observe(time.monotonic() - begun[0])
            self.metrics.active.labels(task_name=name).dec()
        if state:
            # No state: the run was cut short (the pool parent terminated it after a hard time limit); the
            # parent counts that completion, as a failure.
            self.metrics.completed.labels(task_name=name, state=state).inc()
        self._dirty = True

    def on_failure(self, sender: Any = None, task_id: str | None = None, exception: BaseException | None = None,
                   **_: Any) -> None:
        if task_id is not None:
            if task_id in self._failed_ids:
                return
            self._failed_ids[task_id] = None
            while len(self._failed_ids) > _MAX_TRACKED:
                self._failed_ids.popitem(last=False)
        name = _task_name(sender)
        self.metrics.failed.labels(task_name=name, exception_type=type(exception).__name__).inc()
        if task_id not in self._started:
            # Seen from outside the process that ran the task (the pool parent after a hard time limit or a
            # lost child): no task_postrun follows, so the completion is counted here.
            self.metrics.completed.labels(task_name=name, state="FAILURE").inc()
        self._dirty = True

    def on_retry(self, sender: Any = None, **_: Any) -> None:
        self.metrics.retried.labels(task_name=_task_name(sender)).inc()
        self._dirty = True

    def on_revoked(self, sender: Any = None, request: Any = None, terminated: bool = False, **_: Any) -> None:
        if not terminated:
            return  # revoked before it ran: nothing started, nothing failed
        name = _task_name(sender) if sender is not None else str(getattr(request, "name", None) or "unknown")
        self.metrics.failed.labels(task_name=name, exception_type="Terminated").inc()
        self.metrics.completed.labels(task_name=name, state="REVOKED").inc()
        self._dirty = True

    def on_worker_init(self, sender: Any = None, **_: Any) -> None:
        self.start(getattr(sender, "hostname", None))

    def on_process_init(self, sender: Any = None, **_: Any) -> None:
        self.start(sender if isinstance(sender, str) else None)

    def on_shutdown(self, **_: Any) -> None:
        self.stop()


PUBLISH_TIME_HEADER = "alertd_published_at"
_STAMP_UID = "alertd.instrument.stamp_publish_time"


def _stamp(headers: dict[str, Any] | None = None, **_: Any) -> None:
    # Set, not setdefault: a retry re-sends the request's headers, and its new message waits from now.
    if headers is not None:
        headers[PUBLISH_TIME_HEADER] = time.time()


def stamp_publish_time() -> None:
    """Put the publish time in the headers of every task message this process sends, from now on.

    A ``before_task_publish`` handler, so it covers every app of the process and every way of sending
    (``delay``, ``apply_async``, ``send_task``, canvas, beat, retries). Calling it again does nothing.
    """
    from celery import signals

    signals.before_task_publish.connect(_stamp, weak=False, dispatch_uid=_STAMP_UID)


def stop_stamping() -> None:
    """Undo ``stamp_publish_time``."""
    from celery import signals

    signals.before_task_publish.disconnect(dispatch_uid=_STAMP_UID)


def _task_name(task: Any) -> str:
    return str(getattr(task, "name", None) or "unknown")


def install(
    app: Any,
    pushgateway_url: str,
    *,
    job: str = "celery",
    push_interval: float = 5.0,
    registry: CollectorRegistry | None = None,
    grouping_key: dict[str, str] | None = None,
    timeout: float = 2.0,
) -> Instrumentation:
    """Count tasks of ``app`` by Celery signals and push them to ``pushgateway_url`` from every worker process.

    Pushing starts in worker processes only (``worker_init``, ``worker_process_init``): a process that merely
    sends tasks never pushes. Task messages sent from then on carry their publish time (``stamp_publish_time``),
    for the retries and subtasks the workers send. ``registry`` holds the metrics of the process that installs (a pool child gets
    a fresh one); ``grouping_key`` adds labels to ``instance`` and ``pid``. Installing twice returns the
    first instrumentation.
    """
    existing = getattr(app, "_alertd_instrumentation", None)
    if isinstance(existing, Instrumentation):
        return existing
    from celery import signals

    inst = Instrumentation(
        app, pushgateway_url, job=job, push_interval=push_interval, registry=registry,
        grouping_key=grouping_key, timeout=timeout,
    )
    uid = f"alertd.instrument.{id(app)}"
    # weak=False: the caller need not keep the returned object alive for the handlers to stay connected.
    for signal, handler in (
        (signals.task_prerun, inst.on_prerun),
        (signals.task_postrun, inst.on_postrun),
        (signals.task_failure, inst.on_failure),
        (signals.task_retry, inst.on_retry),
        (signals.task_revoked, inst.on_revoked),
        (signals.worker_init, inst.on_worker_init),
        (signals.worker_process_init, inst.on_process_init),
        (signals.worker_process_shutdown, inst.on_shutdown),
        (signals.worker_shutdown, inst.on_shutdown),
    ):
        signal.connect(handler, weak=False, dispatch_uid=f"{uid}.{signal.name}")
        inst._connected.append((signal, f"{uid}.{signal.name}"))
    stamp_publish_time()
    atexit.register(inst.stop)
    app._alertd_instrumentation = inst
    return inst


def uninstall(app: Any) -> None:
    """Disconnect the signal handlers that ``install`` connected for ``app`` (a pusher that runs stops), and
    stop stamping the publish time (``stop_stamping``: for the whole process)."""
    inst = getattr(app, "_alertd_instrumentation", None)
    if not isinstance(inst, Instrumentation):
        return
    for signal, uid in inst._connected:
        signal.disconnect(dispatch_uid=uid)
    inst._connected.clear()
    stop_stamping()
    inst._stop.set()
    atexit.unregister(inst.stop)
    del app._alertd_instrumentation
