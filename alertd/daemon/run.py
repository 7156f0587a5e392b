"""``alertd run``: the process around the daemon: logging, signals, the scheduler, the HTTP server, the file
watcher, the dead man's switch, and one line with counts when it stops."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from alertd.config.secrets import redact_url
from alertd.daemon.core import Daemon
from alertd.daemon.deadman import DeadmanSwitch
from alertd.daemon.jobs import add_loop_job
from alertd.daemon.reload import FileWatcher, build_candidate, files_signature
from alertd.http.server import start_http_server  # here, not on the loop: aiohttp takes 100+ ms to import
from alertd.logs import setup_logging
from alertd.models import AlertState
from alertd.plugins import make_plugin_manager

log = logging.getLogger("alertd")


def run_daemon(config_path: str, *, once: bool = False, log_format: str | None = None) -> int:
    """``alertd run``: returns the process exit code. Raises ConfigError before anything starts."""
    pm = make_plugin_manager()
    candidate = build_candidate(config_path, pm)
    loaded = candidate.loaded
    setup_logging(loaded.config.logging.level, log_format or loaded.config.logging.format, loaded.secret_values())
    daemon = Daemon(loaded, pm, candidate.rules)
    if not once:
        # Long-lived objects built at start-up (rules, compiled templates, modules) need no cycle collection:
        # freezing them keeps full collections from adding milliseconds to an evaluation. Done before the
        # loop runs, since a full collection of all of them takes tens of milliseconds.
        gc.collect()
        gc.freeze()
    return asyncio.run(_once(daemon) if once else _forever(daemon))


async def _once(daemon: Daemon) -> int:
    try:
        await daemon.collect_all()
        daemon.evaluate_all()
        for rec in sorted(daemon.engine.alerts(), key=lambda r: r.rule):
            print(f"{rec.state.value:8} {rec.labels.get('alertname')} {dict(rec.labels)} {rec.annotations.get('summary', '')}")
        return 0
    finally:
        await daemon.close()


async def _forever(daemon: Daemon) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals_seen = 0
    reloads: set[asyncio.Task[object]] = set()

    def on_stop_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen > 1:
            log.warning("second %s: exiting at once", signal.Signals(signum).name)
            raise SystemExit(1)
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    def on_sighup() -> None:
        task = asyncio.create_task(daemon.reload("SIGHUP"))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_stop_signal, sig)
    loop.add_signal_handler(signal.SIGHUP, on_sighup)

    cfg = daemon.loaded.config
    log.info(
        "alertd starting: %d rules in %d groups, %d collectors (%s), broker %s, state %s",
        len(daemon.engine.rules.rules), len(daemon.engine.rules.groups), len(daemon.runners),
        ", ".join(sorted(daemon.runners)) or "none", redact_url(daemon.context.broker_url), daemon.loaded.state_url,
    )
    if loop.get_debug():  # PYTHONASYNCIODEBUG=1 or python -X dev
        log.info("asyncio debug mode: callbacks that hold the loop longer than %.0f ms are logged",
                 loop.slow_callback_duration * 1000)
    server = None
    if cfg.http.enabled:
        server = await start_http_server(daemon, cfg.http)
        log.info("HTTP on %s (dashboard %s/, API %s/api/v1)", server.url, server.url, server.url)

    daemon.start_tasks()
    await daemon.collect_all()
    daemon.evaluate_all()
    scheduler = AsyncIOScheduler(event_loop=loop)
    daemon.schedule(scheduler)
    if cfg.deadman.url:
        switch = DeadmanSwitch(
            cfg.deadman, cfg.evaluation_interval, lambda: daemon.last_evaluation_at, daemon.http, daemon.metrics
        )
        add_loop_job(scheduler, switch.ping, "deadman", cfg.deadman.interval, coalesce=True, next_run_time=None)
        await switch.ping()
        scheduler.reschedule_job("deadman", trigger="interval", seconds=cfg.deadman.interval)
    scheduler.start()

    watch_stop = asyncio.Event()
    watcher_task = None
    if cfg.reload.watch:
        async def on_change() -> None:
            log.info("a configuration or rule file changed: reloading")
            await daemon.reload("file change")

        watcher = FileWatcher(lambda: files_signature(daemon.loaded), on_change, cfg.reload.watch_interval)
        watcher_task = asyncio.create_task(watcher.run(watch_stop))
    try:
        await stop.wait()
    finally:
        watch_stop.set()
        if watcher_task is not None:
            await watcher_task
        for task in list(reloads):
            await task
        if server is not None:
            await server.close()
        # What is not delivered within the grace period stays in the outbox; the next start resumes it.
        report = await daemon.stop()
        c = daemon.counters
        firing = len(daemon.engine.alerts([AlertState.FIRING]))
        log.info(
            "alertd stopped after %.0fs: %d collections (%d failed), %d evaluations, %d transitions, %d reloads, "
            "%d firing, %d notification(s) left in the outbox%s",
            time.time() - c.started, c.collections, c.collection_errors, c.evaluations, c.transitions, c.reloads,
            firing, report.left_in_outbox, "" if report.in_flight_finished else " (sends under way were cut off)",
        )
    return 0
