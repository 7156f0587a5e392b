"""The demo: a Celery cluster, alertd watching it, one failed payment paged within a second, then resolved.

    python -m demo.run [--exit-after-resolve] [--keep]

Starts, on free loopback ports and each in its own process group: a private redis-server as the broker and a
private prometheus-pushgateway (unless CELERY_BROKER_URL and PUSHGATEWAY_URL name yours), a webhook sink
(``demo.sink``), one instrumented Celery worker running ``demo.app`` with task events on (``-E``), and
``alertd run -c demo/alertd.toml``. Once alertd listens to the event stream it sends ordinary work, makes one
payment fail, shows the page arriving at the sink and on the console notifier with the time it took, waits for
the alert to resolve, prints alertd's addresses and keeps everything running until Ctrl-C (or SIGTERM), which
stops every process it started (alertd first, so that it shuts down cleanly) and removes its temporary folder.

The time of a page is measured from the moment the worker stored the task's failure (its result's
``date_done``) to the moment the sink received the POST.

Environment: CELERY_BROKER_URL, PUSHGATEWAY_URL (use these instead of private ones), ALERTD_HTTP_LISTEN
(host:port of alertd's HTTP server; default a free loopback port), ALERTD_DEMO_EXIT_AFTER_RESOLVE=1 (as
``--exit-after-resolve``: stop everything and exit 0 once the resolve is shown). ``--keep`` keeps the folder
with the logs. Exit code: 0 when stopped after the demo was shown, 1 when something failed (the message and
the end of the log that explains it are printed), 128 + the signal's number when stopped before the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "demo" / "alertd.toml"
RULE_FILE = "demo/rules/payments.toml"
QUEUE = "alertd-demo"  # the demo's own queue: on a broker of yours, your workers never get its tasks
WORKER_NAME = "demo"
ALERT = "PaymentTaskFailed"
PAYMENT_TASK = "demo.payment.charge"

START_TIMEOUT = 60.0  # each service, from its start until it is ready
PAGE_TIMEOUT = 10.0  # from a failure until its page; a page takes a fraction of a second
PAGE_ATTEMPTS = 3
RESOLVE_TIMEOUT = 120.0  # the rule's 30 s window, keep_firing_for and the intervals take well under a minute
STOP_TIMEOUTS = {"alertd": 20.0, "celery worker": 20.0}  # alertd's shutdown_grace is 10 s
POLL = 0.1

T = TypeVar("T")


class DemoError(Exception):
    """Something the newcomer must be told about: one message, then the end of the log that explains it."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        super().__init__(message)
        self.log = log


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# -- output -------------------------------------------------------------------------------------------------------


class Narrator:
    """The demo's own lines on stdout: a bold heading per step, indented details."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.closed = False

    def _write(self, text: str) -> None:
        if self.closed:
            return
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except OSError:  # the terminal or pipe went away: the demo must still stop what it started
            self.closed = True

    def step(self, text: str) -> None:
        self._write(f"\033[1m==> {text}\033[0m" if self.tty else f"==> {text}")

    def line(self, text: str = "") -> None:
        self._write(f"    {text}" if text else "")

    def block(self, prefix: str, text: str) -> None:
        for row in text.rstrip("\n").splitlines():
            self._write(f"    {prefix} {row}")

    def error(self, text: str) -> None:
        self._write(f"\033[1;31merror: {text}\033[0m" if self.tty else f"error: {text}")


def clock(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp)
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


# -- small helpers --------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def http_get(url: str, timeout: float = 1.0) -> tuple[int, str] | None:
    """(status, body) of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")
    except (OSError, ValueError):
        return None


def binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
    if found is None:
        raise DemoError(f"{name} is not installed: ./scripts/demo installs it (as root), or: sudo apt-get install {name}")
    return found


def has_http_server() -> bool:
    """Whether this alertd serves HTTP (the dashboard, the API, /-/ready); older builds have no alertd.http."""
    try:
        return importlib.util.find_spec("alertd.http.server") is not None
    except (ImportError, ValueError):
        return False


def events_seen(metrics_text: str, event_type: str) -> float:
    """How many Celery events of a type alertd counted, from its ``/metrics``."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "alertd_events_total" and sample.labels.get("type") == event_type:
                total += sample.value
    return total


# -- child processes ------------------------------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


class Signals:
    """SIGINT, SIGTERM and SIGHUP only set a flag: the demo stops at the next point where it waits, so that a
    process is never left half started and unrecorded."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.received.append(signum)


# -- the demo ---------------------------------------------------------------------------------------------------


class Demo:
    def __init__(self, *, exit_after_resolve: bool, keep: bool, out: Narrator, signals: Signals) -> None:
        self.exit_after_resolve = exit_after_resolve
        self.keep = keep
        self.say = out
        self.signals = signals
        self.dir = Path(tempfile.mkdtemp(prefix="alertd-demo-"))
        self.children: list[Child] = []
        self.inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.deliveries: list[dict[str, Any]] = []  # what the sink received, in order
        self.console: list[str] = []  # blocks the console notifier wrote
        self.sink_url: str | None = None
        self.client: Any = None
        self.started = False  # every service is up
        self.finished = False  # the demo's steps have all been shown
        self._stop_readers = threading.Event()
        self.http_enabled = has_http_server()
        self.listen = os.environ.get("ALERTD_HTTP_LISTEN") or f"127.0.0.1:{free_port()}"
        host, _, port = self.listen.rpartition(":")
        self.http_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
        self.broker_url = os.environ.get("CELERY_BROKER_URL") or ""
        self.pushgateway_url = os.environ.get("PUSHGATEWAY_URL") or ""

    # -- waiting ------------------------------------------------------------------------------------------------

    def pump(self, timeout: float = POLL) -> None:
        """Take in what the readers report (for up to ``timeout``), then check signals and children."""
        try:
            kind, item = self.inbox.get(timeout=timeout)
        except queue.Empty:
            pass
        else:
            self._dispatch(kind, item)
            while True:
                try:
                    kind, item = self.inbox.get_nowait()
                except queue.Empty:
                    break
                self._dispatch(kind, item)
        if self.signals.received:
            raise Interrupted(self.signals.received[0])
        for child in self.children:
            if not child.alive():
                code = child.process.returncode
                when = "" if self.started else " while starting"
                raise DemoError(f"{child.name} (pid {child.pid}) exited with code {code}{when}", child.log)

    def _dispatch(self, kind: str, item: Any) -> None:
        if kind == "sink":
            if "listening" in item:
                self.sink_url = str(item["listening"])
            else:
                self.deliveries.append(item)
        elif kind == "console":
            self.console.append(str(item))

    def wait_for(self, what: str, ready: Callable[[], T | None], timeout: float = START_TIMEOUT,
                 log: Path | None = None) -> T:
        """Wait until ``ready()`` returns something other than None/False; a clear error after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = ready()
            if value is not None and value is not False:
                return value
            if time.monotonic() > deadline:
                raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}", log)
            self.pump()

    # -- starting -------------------------------------------------------------------------------------------------

    def spawn(self, name: str, argv: list[str], *, env: dict[str, str] | None = None,
              stdout_pipe: bool = False) -> Child:
        """Start one process in its own process group (a new session: Ctrl-C in the terminal reaches only the
        demo, which stops everything in order), its output in a log file of the demo's folder."""
        log = self.dir / f"{name.replace(' ', '-')}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else out, stderr=out, start_new_session=True,
            )
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def start(self) -> None:
        say = self.say
        say.step(f"Starting a Celery cluster and alertd (logs in {self.dir})")
        redis = pushgateway = None
        if not self.broker_url:
            port = free_port()
            redis = self.spawn("redis-server", [
                binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir),
            ])
            self.broker_url = f"redis://127.0.0.1:{port}/0"
        if not self.pushgateway_url:
            port = free_port()
            # An empty --persistence.file: the Debian build would otherwise share /var/lib/prometheus' file.
            pushgateway = self.spawn("prometheus-pushgateway", [
                binary("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}", "--persistence.file=",
            ])
            self.pushgateway_url = f"http://127.0.0.1:{port}"
        sink = self.spawn("webhook sink", [sys.executable, "-m", "demo.sink", "--port", "0"],
                          env=self._env(), stdout_pipe=True)
        assert sink.process.stdout is not None
        threading.Thread(target=self._read_sink, args=(sink.process.stdout,), name="sink", daemon=True).start()

        if redis is not None:
            port = int(self.broker_url.rsplit(":", 1)[1].split("/")[0])
            self.wait_for("redis-server to accept connections", lambda: port_open("127.0.0.1", port), log=redis.log)
            say.line(f"{'redis-server':24}{self.broker_url:44}(pid {redis.pid})")
        else:
            say.line(f"{'broker':24}{self._public(self.broker_url):44}(CELERY_BROKER_URL)")
        if pushgateway is not None:
            port = int(self.pushgateway_url.rsplit(":", 1)[1])
            self.wait_for("prometheus-pushgateway to accept connections", lambda: port_open("127.0.0.1", port),
                          log=pushgateway.log)
            say.line(f"{'prometheus-pushgateway':24}{self.pushgateway_url:44}(pid {pushgateway.pid})")
        else:
            say.line(f"{'Pushgateway':24}{self.pushgateway_url:44}(PUSHGATEWAY_URL)")
        self.wait_for("the webhook sink to listen", lambda: self.sink_url, log=sink.log)
        say.line(f"{'webhook sink':24}{self.sink_url or '':44}(pid {sink.pid})")

        env = self._env()
        from celery.utils.nodenames import host_format

        node = host_format(f"{WORKER_NAME}@%h")
        worker = self.spawn("celery worker", [
            sys.executable, "-m", "celery", "-A", "demo.app", "worker", "-E", "--pool", "prefork", "-c", "2",
            "-n", f"{WORKER_NAME}@%h", "-Q", QUEUE, "--without-gossip", "--without-mingle",
            "--heartbeat-interval", "2", "--loglevel", "INFO",
        ], env=env)
        alertd = self.spawn("alertd", [sys.executable, "-m", "alertd", "run", "-c", str(CONFIG.relative_to(ROOT))],
                            env=env)
        threading.Thread(target=self._read_console, name="console", daemon=True).start()

        self.client = self._client()
        self.wait_for("the Celery worker to answer a ping", lambda: self._ping(node), log=worker.log)
        say.line(f"{'celery worker':24}{node + ' (prefork, 2 processes, -E)':44}(pid {worker.pid})")
        how = self.wait_for("alertd to be ready", lambda: self._alertd_ready(alertd), log=alertd.log)
        say.line(f"{'alertd':24}{'-c demo/alertd.toml, HTTP ' + self.listen:44}(pid {alertd.pid})")
        say.line(f"alertd is ready, {time.monotonic() - alertd.started:.1f} s after its start: {how}")
        self.started = True

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env["CELERY_BROKER_URL"] = self.broker_url
        env["PUSHGATEWAY_URL"] = self.pushgateway_url
        env["CELERY_RESULT_BACKEND"] = self._result_backend()
        env["ALERTD_DEMO_DIR"] = str(self.dir)
        env["ALERTD_DEMO_SINK_URL"] = self.sink_url or "http://127.0.0.1:9/alerts"
        env["ALERTD_HTTP_LISTEN"] = self.listen
        env["ALERTD_HTTP_ENABLED"] = "true" if self.http_enabled else "false"
        return env

    def _result_backend(self) -> str:
        given = os.environ.get("CELERY_RESULT_BACKEND")
        if given:
            return given
        return self.broker_url if self.broker_url.startswith(("redis://", "rediss://")) else "rpc://"

    @staticmethod
    def _public(url: str) -> str:
        from alertd.config.secrets import redact_url

        return redact_url(url)

    def _client(self) -> Any:
        """A Celery app that only sends the demo's tasks by name and reads their results."""
        from celery import Celery

        app = Celery("demo-client", broker=self.broker_url, backend=self._result_backend(), set_as_current=False)
        app.conf.broker_connection_retry_on_startup = True
        return app

    def _ping(self, node: str) -> bool:
        try:
            return bool(self.client.control.ping(destination=[node], timeout=0.5, limit=1))
        except Exception:  # the worker's connection (or ours) is not up yet
            return False

    def _alertd_ready(self, alertd: Child) -> str | None:
        """alertd is ready once its event stream is connected and, when it serves HTTP, GET /-/ready says 200."""
        if "event stream connected" not in alertd.log.read_text(errors="replace"):
            return None
        if not self.http_enabled:
            return "its log says the event stream is connected (this alertd has no HTTP server for /-/ready)"
        answer = http_get(f"{self.http_url}/-/ready", timeout=0.5)
        if answer is None or answer[0] != 200:
            return None
        return "GET /-/ready answered 200 and the event stream is connected"

    # -- readers (threads) ------------------------------------------------------------------------------------

    def _read_sink(self, stream: IO[bytes]) -> None:
        for raw in stream:
            with contextlib.suppress(ValueError):
                self.inbox.put(("sink", json.loads(raw)))

    def _read_console(self) -> None:
        """Follow the console notifier's file; each notification is one block starting with '=== ['."""
        path = self.dir / "console.log"
        offset = 0
        while not self._stop_readers.wait(POLL):
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    f.seek(offset)
                    chunk = f.read()
            except OSError:
                continue
            if not chunk.endswith("\n"):
                continue  # a block being written: read it whole next time
            offset += len(chunk.encode("utf-8"))
            block: list[str] = []
            for row in chunk.splitlines():
                if row.startswith("=== [") and block:
                    self.inbox.put(("console", "\n".join(block)))
                    block = []
                block.append(row)
            if block:
                self.inbox.put(("console", "\n".join(block)))

    # -- the story --------------------------------------------------------------------------------------------

    def send(self, task: str, **kwargs: Any) -> Any:
        return self.client.send_task(task, kwargs=kwargs, queue=QUEUE)

    def ordinary_work(self) -> None:
        say = self.say
        say.step("Sending ordinary work: 5 orders and their confirmation emails")
        began = time.monotonic()
        results = []
        for i in range(5):
            order = 1001 + i
            results.append(self.send("demo.orders.create", order_id=order, amount=20.0 + 7 * i))
            results.append(self.send("demo.email.send", to=f"customer{order}@example.com", subject=f"Order {order}"))
        self.wait_for("the ordinary tasks to finish", lambda: all(r.ready() for r in results),
                      log=self._child("celery worker").log)
        ok = sum(1 for r in results if r.successful())
        say.line(f"{ok} of {len(results)} tasks succeeded in {time.monotonic() - began:.1f} s; work that succeeds pages nobody.")
        if self.http_enabled:
            # alertd counts the events it receives: seeing these proves that the stream reaches it.
            def seen() -> float | None:
                answer = http_get(f"{self.http_url}/metrics")
                if answer is None or answer[0] != 200:
                    return None
                try:
                    count = events_seen(answer[1], "task-succeeded")
                except Exception:  # not the text format this parser reads
                    return None
                return count if count >= ok else None

            try:
                count = self.wait_for("alertd to count the task events", seen, timeout=10)
                say.line(f"alertd received their {count:.0f} task-succeeded events (GET /metrics).")
            except DemoError:
                say.line("alertd's /metrics does not count these task events yet.")

    def fail_payment(self, order: int, attempt: int = 1) -> tuple[float, dict[str, Any]]:
        """Make one payment fail and wait for its page; returns (when it failed, the sink's delivery)."""
        say = self.say
        sent_at = time.time()
        result = self.send(PAYMENT_TASK, order_id=order, amount=49.9, decline=True)
        self.wait_for(f"{PAYMENT_TASK} to finish", result.ready, log=self._child("celery worker").log)
        exc = result.result
        failed_at = self._done_at(result, sent_at)
        say.line(f"{PAYMENT_TASK} failed at {clock(failed_at)}: {type(exc).__name__}: {exc}")
        try:
            delivery = self.wait_for("the page", lambda: self._delivery("firing", sent_at), timeout=PAGE_TIMEOUT)
        except DemoError:
            if attempt >= PAGE_ATTEMPTS:
                raise DemoError(f"no page {PAGE_TIMEOUT:.0f} s after each of {attempt} payment failures",
                                self._child("alertd").log) from None
            say.line(f"No page {PAGE_TIMEOUT:.0f} s after the failure: alertd missed its event. (An event published")
            say.line("in the moment before alertd's subscription to the event stream takes effect is lost, as for any")
            say.line("Celery event consumer.) Failing one more payment:")
            return self.fail_payment(order + 1, attempt + 1)
        return failed_at, delivery

    @staticmethod
    def _done_at(result: Any, fallback: float) -> float:
        """When the worker stored the failure (the result's date_done, UTC)."""
        done = result.date_done
        if not isinstance(done, datetime.datetime):
            return fallback
        if done.tzinfo is None:
            done = done.replace(tzinfo=datetime.UTC)
        return done.timestamp()

    def _delivery(self, status: str, after: float) -> dict[str, Any] | None:
        for delivery in self.deliveries:
            payload = delivery.get("payload") or {}
            if (payload.get("status") == status and payload.get("groupLabels", {}).get("alertname") == ALERT
                    and float(delivery.get("received_at", 0)) >= after):
                return delivery
        return None

    def _console_block(self, marker: str, after_index: int = 0) -> str | None:
        for block in self.console[after_index:]:
            if marker in block:
                return block
        return None

    def show_delivery(self, delivery: dict[str, Any]) -> None:
        payload = delivery["payload"]
        reason = (payload.get("alertd") or {}).get("reason", "")
        name = (payload.get("groupLabels") or {}).get("alertname") or "alerts"
        self.say.line(f"webhook sink received [{payload['status'].upper()}] {name} for {payload['receiver']}"
                      + (f" ({reason})" if reason else ""))
        for alert in payload.get("alerts", []):
            summary = (alert.get("annotations") or {}).get("summary", "")
            self.say.line(f"  {alert.get('status')}: {summary}  (startsAt {alert.get('startsAt')}, endsAt {alert.get('endsAt')})")

    def show_console(self, marker: str, after_index: int) -> None:
        try:
            block = self.wait_for("the console notifier", lambda: self._console_block(marker, after_index), timeout=10)
        except DemoError:
            self.say.line("(the console notifier wrote nothing within 10 s)")
            return
        self.say.line("and the console notifier printed:")
        self.say.block("|", block)

    def story(self) -> None:
        say = self.say
        self.ordinary_work()

        say.step(f"Failing one payment: {PAYMENT_TASK} for order 1042, and the card is declined")
        console_before = len(self.console)
        failed_at, page = self.fail_payment(1042)
        say.line(f"PAGE: paged {page['received_at'] - failed_at:.3f} s after {PAYMENT_TASK} failed")
        self.show_delivery(page)
        self.show_console(f"[FIRING] {ALERT}", console_before)

        say.step(f"Waiting for {ALERT} to resolve ({RULE_FILE}: increase over 30s, keep_firing_for 5s)")
        if self.http_enabled:
            say.line(f"Meanwhile the dashboard shows it firing: {self.http_url}/")
        console_before = len(self.console)
        resolved = self.wait_for(f"{ALERT} to resolve", lambda: self._delivery("resolved", page["received_at"]),
                                 timeout=RESOLVE_TIMEOUT, log=self._child("alertd").log)
        say.line(f"RESOLVED: {resolved['received_at'] - failed_at:.1f} s after the failure, "
                 f"no payment failed for the rule's 30 s window")
        self.show_delivery(resolved)
        self.show_console(f"[RESOLVED] {ALERT}", console_before)
        self.addresses()
        self.finished = True

    def addresses(self) -> None:
        say, url = self.say, self.http_url
        say.step("alertd's addresses")
        dashboard = f"{url}/"
        if self.http_enabled:
            answer = http_get(dashboard)
            note = "" if answer is not None and answer[0] == 200 else (
                f"  (answered {answer[0]})" if answer is not None else "  (no answer)")
        else:
            note = "  (not served: this alertd has no HTTP server yet)"
        say.line(f"dashboard: {dashboard}{note}")
        say.line(f"API:       {url}/api/v1  (OpenAPI schema: {url}/api/v1/openapi.json)")
        say.line(f"health:    {url}/health/celery  {url}/-/healthy  {url}/-/ready")
        say.line(f"metrics:   {url}/metrics")
        say.line(f"logs:      {self.dir}")

    def idle(self) -> None:
        """Keep everything running until a signal; show whatever else reaches the sink or the console."""
        self.say.step("Everything keeps running. Ctrl-C stops everything.")
        shown_deliveries, shown_console = len(self.deliveries), len(self.console)
        while True:
            self.pump(0.5)
            for delivery in self.deliveries[shown_deliveries:]:
                self.show_delivery(delivery)
            shown_deliveries = len(self.deliveries)
            for block in self.console[shown_console:]:
                self.say.line("console notifier:")
                self.say.block("|", block)
            shown_console = len(self.console)

    # -- stopping ---------------------------------------------------------------------------------------------

    def _child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def stop_all(self) -> None:
        """Stop every process the demo started: alertd first (it stops cleanly on SIGTERM), then the worker (a
        warm shutdown), the sink, the Pushgateway and redis-server; whatever does not stop in time, and anything
        left in a child's process group (pool processes), is killed."""
        if not self.children:
            return
        order = ["alertd", "celery worker", "webhook sink", "prometheus-pushgateway", "redis-server"]
        children = sorted(self.children, key=lambda c: order.index(c.name) if c.name in order else len(order))
        self.say.step("Stopping " + ", ".join(f"{c.name}" for c in children))
        for child in children:
            if child.alive():
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + STOP_TIMEOUTS.get(child.name, 10.0)
                seen = len(self.signals.received)
                while child.alive() and time.monotonic() < deadline and len(self.signals.received) <= seen:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        child.process.wait(POLL)
                if child.alive():
                    self.say.line(f"{child.name} (pid {child.pid}) did not stop in time: killing it")
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)
                    child.process.wait()
            # The group leader is gone; nothing it started may outlive it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            if child.process.stdout is not None:
                child.process.stdout.close()
        codes = ", ".join(f"{c.name} {c.process.returncode}" for c in children)
        self.say.line(f"stopped (exit codes: {codes})")
        self.children = []

    def close(self) -> None:
        self._stop_readers.set()
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
        if self.keep:
            self.say.line(f"logs kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.splitlines()[0])
    parser.add_argument("--exit-after-resolve", action="store_true",
                        default=os.environ.get("ALERTD_DEMO_EXIT_AFTER_RESOLVE", "") not in ("", "0"),
                        help="stop everything and exit 0 once the resolve is shown (env ALERTD_DEMO_EXIT_AFTER_RESOLVE=1)")
    parser.add_argument("--keep", action="store_true", help="keep the logs' folder when the demo stops")
    args = parser.parse_args(argv)

    signals = Signals()
    signals.install()
    out = Narrator(sys.stdout)
    demo = Demo(exit_after_resolve=args.exit_after_resolve, keep=args.keep, out=out, signals=signals)
    code = 0
    try:
        demo.start()
        demo.story()
        if not args.exit_after_resolve:
            demo.idle()
    except Interrupted as exc:
        out.step(f"{exc}: stopping everything")
        code = 0 if demo.finished else 128 + exc.signum
    except DemoError as exc:
        out.error(str(exc))
        if exc.log is not None:
            out.line(f"the end of {exc.log.name}:")
            out.block("|", tail(exc.log) or "(empty)")
            if not args.keep:
                out.line("(./scripts/demo --keep keeps the logs)")
        code = 1
    except Exception:
        out.error("the demo failed:\n" + traceback.format_exc())
        code = 1
    finally:
        demo.stop_all()
        demo.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
