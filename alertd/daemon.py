"""The daemon: configuration in; collectors, evaluation and alert states running on schedule out.

Only this module wires the whole chain: collectors -> series store -> rule engine -> state store.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pluggy
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from alertd.alerts.engine import Evaluation, RuleEngine
from alertd.clock import Clock, SystemClock
from alertd.collectors.base import CollectorRunner
from alertd.collectors.collect import build_collectors, make_context
from alertd.collectors.events.consumer import EventConsumer
from alertd.config import LoadedConfig, load_config
from alertd.config.secrets import hidden_part, redact_url
from alertd.logs import setup_logging
from alertd.models import Alert, AlertState, Sample
from alertd.notify.pipeline import NotificationPipeline, build_pipeline, make_notifiers
from alertd.plugins import make_plugin_manager
from alertd.rules.compile import CompiledRule
from alertd.rules.load import RuleGroup, RuleSet, load_rules
from alertd.series.selector import Matcher, Selector
from alertd.series.store import SeriesStore
from alertd.state import open_store
from alertd.templating.env import make_environment

log = logging.getLogger("alertd")


@dataclass
class Counters:
    collections: int = 0
    collection_errors: int = 0
    evaluations: int = 0
    transitions: int = 0
    started: float = field(default_factory=time.time)


class Daemon:
    """Everything ``alertd run`` keeps alive, built from one loaded configuration."""

    def __init__(
        self, loaded: LoadedConfig, pm: pluggy.PluginManager, rules: RuleSet, clock: Clock | None = None
    ) -> None:
        self.loaded = loaded
        self.pm = pm
        self.clock = clock or SystemClock()
        cfg = loaded.config
        self.series = SeriesStore(
            retention=cfg.series.retention, lookback=cfg.series.lookback, drop_after=cfg.series.drop_after
        )
        self.state = open_store(loaded.state_url)
        self.engine = RuleEngine(
            rules,
            self.series,
            self.state,
            resolved_retention=cfg.state.resolved_retention,
            outage_tolerance=cfg.state.outage_tolerance,
            external_url=cfg.external_url,
        )
        self.context = make_context(loaded, self.clock)
        self.runners = {c.name: CollectorRunner(c) for c in build_collectors(loaded, self.context)}
        self.counters = Counters()
        self.first_collection_done = asyncio.Event()
        # Alerts that change state go through the notification pipeline; notifiers share one HTTP client.
        self.http = httpx.AsyncClient()
        self.pipeline: NotificationPipeline | None = None
        if cfg.route.receiver is not None:
            self.pipeline = build_pipeline(
                cfg, make_notifiers(loaded, self.http, self.clock), self.state, self.clock, env=make_environment(pm)
            )
        self.events: EventConsumer | None = None
        if cfg.events.enabled:
            self.events = EventConsumer(cfg.events, self.context, self.wake)
            # Broadcasts stop waiting as soon as every worker the event stream knows has answered.
            for runner in self.runners.values():
                if hasattr(runner.collector, "known_workers"):
                    runner.collector.known_workers = self.events.translator.known_workers

    # -- the chain -------------------------------------------------------------------------------------------

    def ingest(self, samples: list[Sample]) -> set[str]:
        """Samples into the series store; returns the metric names that changed."""
        return self.series.add_many(samples)

    def wake(self, samples: list[Sample]) -> None:
        """Ingest samples pushed in real time and evaluate at once the rules that read them."""
        names = self.ingest(samples)
        rules = self.engine.rules.rules_reading(names)
        if rules:
            self._evaluate(rules)

    async def collect(self, name: str) -> None:
        runner = self.runners[name]
        run = await runner.run()
        self.counters.collections += 1
        if not run.ok:
            self.counters.collection_errors += 1
        self.ingest(run.samples)
        stale_groups = getattr(runner.collector, "stale_groups", None) or ()
        if stale_groups:
            self._mark_stale_groups(stale_groups, {sample.key for sample in run.samples})

    def _mark_stale_groups(self, groups: Any, fresh: set[Any]) -> None:
        # Every series pushed under a stale Pushgateway group reads as absent, never as its last value; what
        # the collector reported in this very run (the group's age) stays.
        now = self.clock.now()
        for labels in groups:
            matchers = tuple(Matcher(k, "=", v) for k, v in labels.items())
            for metric in self.series.names():
                for series in self.series.select(Selector(metric, matchers)):
                    if series.key not in fresh:
                        self.series.mark_stale(series.name, series.labels, now)

    def evaluate_group(self, group: RuleGroup) -> Evaluation:
        return self._evaluate(group.rules)

    def _evaluate(self, rules: Sequence[CompiledRule]) -> Evaluation:
        result = self.engine.evaluate(self.clock.now(), rules)
        self.counters.evaluations += 1
        self.counters.transitions += len(result.transitions)
        if self.pipeline is not None:
            self.pipeline.put(self.notifiable_alerts(self.pipeline), complete=True)
        return result

    def notifiable_alerts(self, pipeline: NotificationPipeline) -> list[Alert]:
        """Every firing and resolved alert, and alertd's own (a template that failed, an endpoint gone)."""
        records = self.engine.alerts([AlertState.FIRING, AlertState.RESOLVED])
        return [*(self.engine.to_alert(r) for r in records), *pipeline.internal.alerts()]

    async def collect_all(self) -> None:
        await asyncio.gather(*(self.collect(name) for name in self.runners))
        self.first_collection_done.set()

    def housekeeping(self) -> None:
        if self.pipeline is not None:
            self.pipeline.housekeeping()
        now = self.clock.now()
        dropped = self.series.gc(now)
        pruned = self.state.prune_history(now - self.loaded.config.state.history_retention)
        if dropped or pruned:
            log.debug("housekeeping: %d series dropped, %d history rows pruned", dropped, pruned)

    async def close(self) -> None:
        if self.pipeline is not None:
            await self.pipeline.close()
        await self.http.aclose()
        for runner in self.runners.values():
            try:
                await runner.collector.close()
            except Exception as exc:  # closing must not stop the other closes
                log.warning("closing collector %s: %s", runner.collector.name, exc)
        self.state.close()

    # -- scheduling ------------------------------------------------------------------------------------------

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        for name, runner in self.runners.items():
            scheduler.add_job(
                self.collect, "interval", args=[name], seconds=runner.collector.settings.interval,
                id=f"collect:{name}", max_instances=1, coalesce=True, misfire_grace_time=None,
            )
        for group in self.engine.rules.groups:
            scheduler.add_job(
                self.evaluate_group, "interval", args=[group], seconds=group.interval,
                id=f"evaluate:{group.name}", max_instances=1, coalesce=True, misfire_grace_time=None,
            )
        scheduler.add_job(self.housekeeping, "interval", seconds=60, id="housekeeping", max_instances=1)

        def missed(event: JobExecutionEvent) -> None:
            log.warning("job %s skipped: the previous run was still going (running behind)", event.job_id)

        scheduler.add_listener(missed, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)


def build(config_path: str, clock: Clock | None = None) -> Daemon:
    pm = make_plugin_manager()
    loaded = load_config(config_path, pm)
    rules = load_rules(
        loaded.rule_files, make_environment(pm), default_interval=loaded.config.evaluation_interval
    )
    return Daemon(loaded, pm, rules, clock)


def run_daemon(config_path: str, *, once: bool = False) -> int:
    """``alertd run``: returns the process exit code."""
    pm = make_plugin_manager()
    loaded = load_config(config_path, pm)
    setup_logging(loaded.config.logging.level, loaded.config.logging.format, _secret_values(loaded))
    rules = load_rules(loaded.rule_files, make_environment(pm), default_interval=loaded.config.evaluation_interval)
    daemon = Daemon(loaded, pm, rules)
    return asyncio.run(_once(daemon) if once else _forever(daemon))


def _secret_values(loaded: LoadedConfig) -> list[str]:
    """Every value that must never reach a log line: substituted secrets and passwords inside URLs."""
    data = loaded.config.model_dump(by_alias=True)
    out: list[str] = []

    def walk(value: Any, loc: tuple[Any, ...]) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*loc, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*loc, i))
        elif isinstance(value, str):
            hidden = hidden_part(loc[-1] if loc else None, value, loc in loaded.secret_paths)
            if hidden:
                out.append(hidden)

    walk(data, ())
    return out


async def _once(daemon: Daemon) -> int:
    try:
        await daemon.collect_all()
        daemon._evaluate(daemon.engine.rules.rules)
        for rec in sorted(daemon.engine.alerts(), key=lambda r: r.rule):
            print(f"{rec.state.value:8} {rec.labels.get('alertname')} {dict(rec.labels)} {rec.annotations.get('summary', '')}")
        return 0
    finally:
        await daemon.close()


async def _forever(daemon: Daemon) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen > 1:
            log.warning("second %s: exiting at once", signal.Signals(signum).name)
            raise SystemExit(1)
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    scheduler = AsyncIOScheduler(event_loop=loop)
    log.info(
        "alertd starting: %d rules in %d groups, %d collectors (%s), broker %s, state %s",
        len(daemon.engine.rules.rules), len(daemon.engine.rules.groups), len(daemon.runners),
        ", ".join(sorted(daemon.runners)) or "none", redact_url(daemon.context.broker_url), daemon.loaded.state_url,
    )
    notify_stop = asyncio.Event()
    notify_task = None
    if daemon.pipeline is None:
        log.warning("no route receiver configured: alerts are evaluated and kept, but nobody is notified")
    else:
        resumed = daemon.pipeline.resume()
        if resumed:
            log.info("resuming %d undelivered notification(s) from the outbox", resumed)
        notify_task = asyncio.create_task(daemon.pipeline.serve(notify_stop))
    event_task = asyncio.create_task(daemon.events.run()) if daemon.events is not None else None
    await daemon.collect_all()
    daemon._evaluate(daemon.engine.rules.rules)
    # Long-lived objects built at start-up (rules, compiled templates, modules) need no cycle collection:
    # freezing them keeps full collections from adding milliseconds to an evaluation.
    gc.collect()
    gc.freeze()
    daemon.schedule(scheduler)
    scheduler.start()
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        if daemon.events is not None and event_task is not None:
            daemon.events.stop()
            await asyncio.wait_for(event_task, timeout=15)
        # What is not delivered by now stays in the outbox and is resumed by the next start.
        notify_stop.set()
        if notify_task is not None:
            await asyncio.wait_for(notify_task, timeout=15)
        await daemon.close()
        c = daemon.counters
        firing = len(daemon.engine.alerts([AlertState.FIRING]))
        log.info(
            "alertd stopped after %.0fs: %d collections (%d failed), %d evaluations, %d transitions, %d firing",
            time.time() - c.started, c.collections, c.collection_errors, c.evaluations, c.transitions, firing,
        )
    return 0
