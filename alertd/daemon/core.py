"""The daemon: configuration in; collectors, evaluation, alert states and notifications running on schedule out.

Only this package wires the whole chain: collectors -> series store -> rule engine -> state store -> pipeline.
``Daemon`` holds the parts and their tasks; ``alertd.daemon.run`` adds the process around it (signals, the
scheduler's clock, the HTTP server, the file watcher, the dead man's switch).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pluggy
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from alertd.alerts.engine import Evaluation, RuleEngine
from alertd.clock import Clock, SystemClock
from alertd.collectors.base import CollectorRunner
from alertd.collectors.beat.tracker import beat_tracker_for
from alertd.collectors.collect import build_collectors, make_context
from alertd.collectors.events.consumer import EventConsumer
from alertd.collectors.events.metrics import EventStreamMetrics
from alertd.collectors.events.validate import event_type_label
from alertd.config import LoadedConfig
from alertd.daemon.jobs import add_loop_job, log_skipped_runs
from alertd.daemon.metrics import DaemonMetrics
from alertd.daemon.reload import RELOAD_FAILED, Candidate, ReloadResult, build_candidate
from alertd.errors import ConfigError, StateStoreError
from alertd.logs import set_level
from alertd.models import Alert, AlertState, Sample
from alertd.notify import InternalAlerts, NotifyMetrics
from alertd.notify.pipeline import NotificationPipeline, build_pipeline, make_notifiers
from alertd.notify.store_watch import StoreWatch
from alertd.owner import in_thread
from alertd.plugins import make_plugin_manager
from alertd.rules.compile import CompiledRule
from alertd.rules.load import RuleGroup, RuleSet
from alertd.series import persist
from alertd.series.selector import Matcher, Selector
from alertd.series.store import SeriesStore
from alertd.state import open_store
from alertd.templating.env import make_environment

log = logging.getLogger("alertd")

# The parts of the configuration each part of the daemon is built from: a reload rebuilds a part only when
# one of its sections changed.
_PIPELINE_SECTIONS = ("receivers", "route", "inhibit_rules", "time_intervals", "escalation_policies", "notify")
_COLLECTOR_SECTIONS = ("celery", "collectors", "events", "beat")
_RESTART_SECTIONS = ("state", "http", "reload", "deadman")  # what a reload cannot change in a running process


@dataclass
class Counters:
    collections: int = 0
    collection_errors: int = 0
    evaluations: int = 0
    transitions: int = 0
    reloads: int = 0
    started: float = field(default_factory=time.time)


@dataclass
class ShutdownReport:
    in_flight_finished: bool
    left_in_outbox: int


class Daemon:
    """Everything ``alertd run`` keeps alive, built from one loaded configuration; ``reload`` swaps it."""

    def __init__(
        self, loaded: LoadedConfig, pm: pluggy.PluginManager, rules: RuleSet, clock: Clock | None = None
    ) -> None:
        self.loaded = loaded
        self.pm = pm
        self.clock = clock or SystemClock()
        cfg = loaded.config
        self.metrics = DaemonMetrics()
        self.metrics.started.set(time.time())
        self.metrics.reload_time.set(time.time())
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
        restored = persist.restore(
            self.series, self.state.get_meta(persist.META_KEY), time.time(), cfg.state.outage_tolerance
        )
        if restored is not None:
            log.info("restored %d samples of %d series saved %.0f s ago", restored.samples, restored.series,
                     time.time() - restored.saved_at)
        self.metrics.count_alerts(self._count_alerts)
        self.notify_metrics = NotifyMetrics(self.metrics.registry)  # outlives pipelines rebuilt by reloads
        self.event_metrics = EventStreamMetrics(self.metrics.registry)  # and consumers rebuilt by reloads
        self.counters = Counters()
        self.first_collection_done = asyncio.Event()
        self.last_evaluation_at: float | None = None
        self.last_reload: ReloadResult | None = None
        # alertd's own alerts that are not rules' (a reload that failed); the pipeline keeps its own.
        self.internal = InternalAlerts()
        self.state_watch = StoreWatch("alert states", self.internal, self.clock)
        # Notifiers share one HTTP client, and so does the dead man's switch.
        self.http = httpx.AsyncClient()
        self.scheduler: AsyncIOScheduler | None = None
        self._reload_lock = asyncio.Lock()
        self._event_task: asyncio.Task[None] | None = None
        self._notify_task: asyncio.Task[None] | None = None
        self._notify_stop = asyncio.Event()
        self._build_collection(loaded)
        self.pipeline = self._make_pipeline(loaded)

    # -- building the parts ----------------------------------------------------------------------------------

    def _build_collection(self, loaded: LoadedConfig) -> None:
        self.context = make_context(loaded, self.clock)
        self.runners = {c.name: CollectorRunner(c) for c in build_collectors(loaded, self.context)}
        self.events: EventConsumer | None = None
        if loaded.config.events.enabled:
            self.events = EventConsumer(
                loaded.config.events, self.context, self.wake, observe=self._observe_event,
                metrics=self.event_metrics, internal=self.internal,
                beat=beat_tracker_for(self.context.celery_app, loaded.config.beat, self.clock.now()),
            )
            # Broadcasts stop waiting as soon as every worker the event stream knows has answered.
            for runner in self.runners.values():
                if hasattr(runner.collector, "known_workers"):
                    runner.collector.known_workers = self.events.translator.known_workers

    def _make_pipeline(self, loaded: LoadedConfig) -> NotificationPipeline | None:
        """Alerts that change state go through the notification pipeline, when anyone is to be told."""
        cfg = loaded.config
        if cfg.route.receiver is None:
            return None
        return build_pipeline(
            cfg, make_notifiers(loaded, self.http, self.clock), self.state, self.clock,
            env=make_environment(self.pm, cfg.templates.budget()), metrics=self.notify_metrics,
        )

    # -- the chain -------------------------------------------------------------------------------------------

    def ingest(self, samples: list[Sample]) -> set[str]:
        """Samples into the series store; returns the metric names that changed."""
        return self.series.add_many(samples)

    def wake(self, samples: list[Sample]) -> None:
        """Ingest samples pushed in real time and evaluate at once the rules that read them."""
        names = self.ingest(samples)
        rules = self.engine.rules.rules_reading(names)
        if rules:
            self._evaluate(rules, "events")

    def _observe_event(self, event: dict[str, Any]) -> None:
        self.metrics.events.labels(event_type_label(event.get("type"))).inc()
        sent = event.get("timestamp")
        if isinstance(sent, int | float):
            self.metrics.event_lag.observe(max(0.0, time.time() - float(sent)))

    async def collect(self, name: str) -> None:
        runner = self.runners.get(name)
        if runner is None:  # removed by a reload while the job was queued
            return
        run = await runner.run()
        self.counters.collections += 1
        self.metrics.collector_duration.labels(name).observe(run.duration)
        if not run.ok:
            self.counters.collection_errors += 1
            self.metrics.collector_errors.labels(name).inc()
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

    async def evaluate_group(self, group: RuleGroup) -> Evaluation:
        """The scheduled evaluation of one rule group, on the event loop like every job."""
        return self._evaluate(group.rules, group.name)

    def evaluate_all(self) -> Evaluation:
        return self._evaluate(self.engine.rules.rules, "all", every_rule=True)

    def _evaluate(self, rules: Sequence[CompiledRule], label: str, *, every_rule: bool = False) -> Evaluation:
        started = time.perf_counter()
        result = self.engine.evaluate(self.clock.now(), rules)
        self._watch_state_writes()
        self.counters.evaluations += 1
        self.counters.transitions += len(result.transitions)
        if self.pipeline is not None:
            if every_rule:
                self.pipeline.put(self.notifiable_alerts(self.pipeline), complete=True)
            else:  # only what these rules decide: an event must not cost a pass over every firing alert
                self.pipeline.put(self._alerts_of(rules, internal=label != "events"))
        self.metrics.evaluation_duration.labels(label).observe(time.perf_counter() - started)
        self.last_evaluation_at = time.time()
        self.metrics.last_evaluation.set(self.last_evaluation_at)
        return result

    def notifiable_alerts(self, pipeline: NotificationPipeline) -> list[Alert]:
        """Every firing and resolved alert, and alertd's own (a reload that failed, a template, an endpoint)."""
        records = self.engine.alerts([AlertState.FIRING, AlertState.RESOLVED])
        return [*(self.engine.to_alert(r) for r in records), *self.internal_alerts()]

    def _watch_state_writes(self) -> None:
        """alertd's own alert while alert states cannot be saved (the engine goes on from memory)."""
        if self.engine.state_error is not None:
            self.state_watch.failed("alert states", StateStoreError(self.engine.state_error))
        else:
            self.state_watch.succeeded()

    def state_write_error(self) -> str | None:
        """Why a part cannot save its state now (readiness says so), or None."""
        watches = [self.state_watch] + ([self.pipeline.retry.watch] if self.pipeline is not None else [])
        return next((f"{w.part} cannot be saved: {w.error}" for w in watches if w.error is not None), None)

    def _alerts_of(self, rules: Sequence[CompiledRule], *, internal: bool) -> list[Alert]:
        """The firing and resolved alerts of ``rules`` (and alertd's own when ``internal``)."""
        ids = {rule.id for rule in rules}
        records = [r for r in self.engine.alerts([AlertState.FIRING, AlertState.RESOLVED]) if r.rule in ids]
        return [*(self.engine.to_alert(r) for r in records), *(self.internal_alerts() if internal else ())]

    def internal_alerts(self) -> list[Alert]:
        """alertd's own alerts, firing or resolved: the daemon's and the pipeline's."""
        own = self.internal.alerts()
        return own if self.pipeline is None else [*own, *self.pipeline.internal.alerts()]

    def _count_alerts(self) -> dict[AlertState, int]:
        counts: Tally[AlertState] = Tally(r.state for r in self.engine.alerts())
        for alert in self.internal_alerts():
            counts[alert.state] += 1
        return dict(counts)

    async def collect_all(self) -> None:
        await asyncio.gather(*(self.collect(name) for name in list(self.runners)))
        self.first_collection_done.set()

    async def housekeeping(self) -> None:
        """Forget what has aged out, on the loop like every job. Each part is a step of its own, so a page
        waits for one part at most."""
        now = self.clock.now()
        if self.pipeline is not None:
            watch = self.pipeline.retry.watch
            watch.write("the notification log's pruning", self.pipeline.housekeeping)
            if watch.error is not None:  # nothing else may write for a while: see whether the store takes one
                watch.write("a test write", lambda: self.state.set_meta("last_write_check", str(now)))
        self.internal.forget_resolved()
        await asyncio.sleep(0)
        dropped = self.series.gc(now)
        await asyncio.sleep(0)
        pruned = self.state_watch.write(
            "history pruning", lambda: self.state.prune_history(now - self.loaded.config.state.history_retention))
        if dropped or pruned:
            log.debug("housekeeping: %d series dropped, %d history rows pruned", dropped, pruned)
        await asyncio.sleep(0)
        await self.save_series()

    async def save_series(self) -> None:
        """Save the series that rules read with the state (copied here, encoded in a thread), so that a restart
        within [state] outage_tolerance carries on where this run stopped."""
        taken = persist.take(self.series, self.engine.rules.by_metric, time.time())
        if taken.left_out:
            log.warning("saving series: %d series left out, past %d samples", taken.left_out, persist.MAX_SAMPLES)
        text = await in_thread(persist.encode, taken)
        self.state_watch.write("the series", lambda: self.state.set_meta(persist.META_KEY, text))

    # -- running ---------------------------------------------------------------------------------------------

    def start_tasks(self) -> None:
        """Start the event consumer and the notification pipeline (after resuming its outbox) on this loop."""
        if self.pipeline is not None:
            self._start_pipeline(self.pipeline)
        else:
            log.warning("no route receiver configured: alerts are evaluated and kept, but nobody is notified")
        if self.events is not None:
            self._event_task = asyncio.create_task(self.events.run())

    async def _stop_events(self) -> None:
        if self.events is not None and self._event_task is not None:
            self.events.stop()
            try:
                await asyncio.wait_for(self._event_task, timeout=15)
            except TimeoutError:
                log.warning("the event stream's thread did not stop within 15s")
            self._event_task = None

    async def _stop_pipeline(self, grace: float) -> ShutdownReport:
        """Stop the pipeline: what is being sent gets ``grace`` seconds; the rest stays in the outbox."""
        pipeline, task = self.pipeline, self._notify_task
        if pipeline is None or task is None:
            return ShutdownReport(True, 0)
        self._notify_stop.set()
        finished = True
        try:
            await asyncio.wait_for(task, timeout=grace)
        except TimeoutError:
            finished = False  # wait_for cancelled the sends; their rows are still pending in the outbox
        except Exception:
            log.exception("the notification pipeline failed while stopping")
        self._notify_task = None
        left = len(pipeline.retry)
        await pipeline.close()
        return ShutdownReport(finished, left)

    async def stop(self, grace: float | None = None) -> ShutdownReport:
        """Stop collection and the event stream, give sends under way ``grace`` seconds, save the series,
        close everything."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self._stop_events()
        try:
            await self.save_series()
        except Exception:
            log.exception("the series could not be saved: a restart will start them afresh")
        report = await self._stop_pipeline(self.loaded.config.shutdown_grace if grace is None else grace)
        await self.close()
        return report

    async def close(self) -> None:
        if self.pipeline is not None and self._notify_task is None:
            await self.pipeline.close()
        await self.http.aclose()
        await self._close_collectors(self.runners)
        # The store's last use: closing it checkpoints the WAL and syncs the file, which may take a while on a
        # busy disk, so a thread does it; nothing on the loop touches the store afterwards.
        await in_thread(self.state.close)

    @staticmethod
    async def _close_collectors(runners: dict[str, CollectorRunner]) -> None:
        for runner in runners.values():
            try:
                await runner.collector.close()
            except Exception as exc:  # closing must not stop the other closes
                log.warning("closing collector %s: %s", runner.collector.name, exc)

    # -- scheduling ------------------------------------------------------------------------------------------

    def schedule(self, scheduler: AsyncIOScheduler, *, housekeeping_interval: float = 60.0) -> None:
        """Add the housekeeping job once, and (again after each reload) the collection and evaluation jobs."""
        if self.scheduler is None:
            self.scheduler = scheduler
            log_skipped_runs(scheduler)
            add_loop_job(scheduler, self.housekeeping, "housekeeping", housekeeping_interval)
        for job in scheduler.get_jobs():
            if job.id.startswith(("collect:", "evaluate:")):
                job.remove()
        for name, runner in self.runners.items():
            add_loop_job(scheduler, self.collect, f"collect:{name}", runner.collector.settings.interval, [name],
                         coalesce=True, misfire_grace_time=None)
        for group in self.engine.rules.groups:
            add_loop_job(scheduler, self.evaluate_group, f"evaluate:{group.name}", group.interval, [group],
                         coalesce=True, misfire_grace_time=None)

    # -- reloading -------------------------------------------------------------------------------------------

    async def reload(self, source: str) -> ReloadResult:
        """Load the configuration file and rules again; swap them in only if all of it is good.

        A failure keeps the running configuration, is logged, and fires ``AlertdReloadFailed`` until a
        reload succeeds. Alerts whose rule still exists keep their state (pending time, firing, history).
        """
        async with self._reload_lock:
            now = time.time()
            try:
                # Reading files and compiling rules takes tens of milliseconds per dozen rules: a thread does
                # it from the path and hands back the new configuration, which nothing else holds yet.
                candidate = await in_thread(build_candidate, self.loaded.path, self.pm)
            except ConfigError as exc:
                message = str(exc)
                log.error("reload (%s) failed; the running configuration stays:\n%s", source, message)
                self.metrics.reloads.labels("failure").inc()
                self.metrics.reload_success.set(0)
                first = message.splitlines()[0] if message else "unknown error"
                self.internal.fire(RELOAD_FAILED, {}, f"configuration reload failed: {first}", self.clock.now())
                self._put_internal()
                self.last_reload = ReloadResult(False, source, message, now, len(self.engine.rules.rules))
                return self.last_reload
            changed = await self._apply(candidate)
            self.counters.reloads += 1
            self.metrics.reloads.labels("success").inc()
            self.metrics.reload_success.set(1)
            self.metrics.reload_time.set(now)
            self.internal.resolve(RELOAD_FAILED, {}, self.clock.now())
            rules = len(candidate.rules.rules)
            what = ", ".join(changed) if changed else "nothing changed"
            log.info("reload (%s): %d rules in %d groups; %s", source, rules, len(candidate.rules.groups), what)
            self.last_reload = ReloadResult(True, source, what, now, rules, tuple(changed))
            self.evaluate_all()
            return self.last_reload

    def _put_internal(self) -> None:
        if self.pipeline is not None:
            self.pipeline.put(self.notifiable_alerts(self.pipeline), complete=True)

    async def _apply(self, candidate: Candidate) -> list[str]:
        old, new = self.loaded.config, candidate.loaded.config
        differs = [name for name in type(new).model_fields if getattr(old, name) != getattr(new, name)]
        changed: list[str] = []
        before, after = {r.id for r in self.engine.rules.rules}, {r.id for r in candidate.rules.rules}
        if before != after:
            changed.append(f"rules +{len(after - before)} -{len(before - after)}")
        for name in _RESTART_SECTIONS:
            if name in differs:
                log.warning("reload: [%s] changed; it takes effect at the next restart", name)
        self.loaded = candidate.loaded
        if "logging" in differs:
            set_level(new.logging.level)
            changed.append("logging")
        if "series" in differs:
            self.series.lookback = new.series.lookback
            self.series.retention = new.series.retention
            self.series.drop_after = new.series.drop_after
            changed.append("series")
        self.engine.external_url = new.external_url
        self.engine.replace_rules(candidate.rules)
        if any(name in differs for name in _COLLECTOR_SECTIONS):
            await self._rebuild_collection(candidate.loaded)
            changed.append("collectors")
        if any(name in differs for name in _PIPELINE_SECTIONS):
            await self._rebuild_pipeline(candidate.loaded)
            changed.append("notifications")
        if self.scheduler is not None:
            self.schedule(self.scheduler)
        return changed

    async def _rebuild_collection(self, loaded: LoadedConfig) -> None:
        running = self._event_task is not None
        await self._stop_events()
        old = self.runners
        self._build_collection(loaded)
        await self._close_collectors(old)
        if running and self.events is not None:
            self._event_task = asyncio.create_task(self.events.run())

    async def _rebuild_pipeline(self, loaded: LoadedConfig) -> None:
        # The new pipeline is built before the old one stops: a notifier that cannot be built keeps the old.
        new = self._make_pipeline(loaded)
        running = self._notify_task is not None
        await self._stop_pipeline(loaded.config.shutdown_grace)
        self.pipeline = new
        if running and new is not None:
            # What the old pipeline left in the outbox is the new one's; nothing is lost or sent twice, since
            # the notification log lives in the state store.
            self._start_pipeline(new)
            new.put(self.notifiable_alerts(new), complete=True)

    def _start_pipeline(self, pipeline: NotificationPipeline) -> None:
        pipeline.resume()  # logs how many notifications it took over
        self._notify_stop = asyncio.Event()
        self._notify_task = asyncio.create_task(pipeline.serve(self._notify_stop))


def build(config_path: str, clock: Clock | None = None) -> Daemon:
    pm = make_plugin_manager()
    candidate = build_candidate(config_path, pm)
    return Daemon(candidate.loaded, pm, candidate.rules, clock)
