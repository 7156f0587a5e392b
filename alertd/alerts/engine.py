"""The evaluation cycle: rules and the series store in, alert states (kept in the state store) and transitions out."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alertd.alerts.lifecycle import Observation, Timing, advance
from alertd.errors import StateStoreError
from alertd.models import Alert, AlertState
from alertd.owner import OwnerThread
from alertd.rules.compile import CompiledRule
from alertd.rules.load import RuleSet
from alertd.series.store import SeriesStore
from alertd.state.base import AlertRecord, StateStore, Transition

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """What one evaluation did: for the daemon's metrics and the notification pipeline."""

    at: float
    rules: int = 0
    transitions: list[Transition] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    duration: float = 0.0


MAX_UNSAVED_TRANSITIONS = 10_000


@dataclass
class Unsaved:
    """Changes that a failed write left behind, merged so that the newest state of each alert wins."""

    upserts: dict[str, AlertRecord] = field(default_factory=dict)
    deletes: set[str] = field(default_factory=set)
    transitions: list[Transition] = field(default_factory=list)
    dropped: int = 0

    def __bool__(self) -> bool:
        return bool(self.upserts or self.deletes or self.transitions)


class RuleEngine:
    """Evaluates rules against the series store and keeps every alert's lifecycle.

    State is loaded from the state store at start, so ``for`` and ``keep_firing_for`` survive a restart,
    and every change is written back in one transaction per evaluation.
    """

    def __init__(
        self,
        rules: RuleSet,
        series: SeriesStore,
        state: StateStore,
        *,
        resolved_retention: float = 900.0,
        outage_tolerance: float = 300.0,
        external_url: str = "",
    ) -> None:
        self.owner = OwnerThread("the rule engine")
        self.series = series
        self.state = state
        self.resolved_retention = resolved_retention
        self.outage_tolerance = outage_tolerance
        self.external_url = external_url.rstrip("/")
        self.records: dict[str, AlertRecord] = {r.fingerprint: r for r in state.load_alerts()}
        self.generation = 0  # counts evaluations and rule changes: readers' snapshots are keyed on it
        self.unsaved = Unsaved()
        self.state_error: str | None = None  # why the last write of alert states failed, until one succeeds
        self._rule_errors: dict[str, str] = {}
        self.rules = rules
        self.replace_rules(rules)

    def replace_rules(self, rules: RuleSet) -> None:
        """Swap in a new rule set; alerts of rules that no longer exist are dropped, the others keep their state."""
        self.owner.check()
        self.generation += 1
        self.rules = rules
        keep = {r.id for r in rules.rules}
        gone = [fp for fp, rec in self.records.items() if rec.rule not in keep]
        if gone:
            for fp in gone:
                del self.records[fp]
            self.state.apply((), gone, ())
        # Windows need their samples: keep at least the longest window plus the lookback.
        needed = rules.longest_window + self.series.lookback
        if needed > self.series.retention:
            self.series.retention = needed

    def evaluate(self, now: float, rules: Sequence[CompiledRule] | None = None) -> Evaluation:
        """Evaluate ``rules`` (default: all) at ``now``; returns the transitions, persisted before returning."""
        self.owner.check()
        started = time.perf_counter()
        self.generation += 1
        todo = self.rules.rules if rules is None else rules
        result = Evaluation(at=now, rules=len(todo))
        upserts: list[AlertRecord] = []
        deletes: list[str] = []
        by_rule: dict[str, list[AlertRecord]] = {}
        for rec in self.records.values():
            by_rule.setdefault(rec.rule, []).append(rec)
        for rule in todo:
            try:
                observations = self._observe(rule, now)
            except Exception as exc:  # one broken rule must not stop the others
                message = f"{type(exc).__name__}: {exc}"
                result.errors[rule.id] = message
                if self._rule_errors.get(rule.id) != message:
                    log.error("rule %s failed to evaluate: %s", rule.id, message)
                self._rule_errors[rule.id] = message
                continue
            self._rule_errors.pop(rule.id, None)
            timing = Timing(rule.spec.for_, rule.spec.keep_firing_for, self.resolved_retention, self.outage_tolerance)
            seen = set()
            for obs in observations:
                seen.add(obs.fingerprint)
                self._step(self.records.get(obs.fingerprint), obs, now, timing, upserts, deletes, result)
            for rec in by_rule.get(rule.id, ()):
                if rec.fingerprint not in seen:
                    obs = Observation(rec.fingerprint, rec.rule, rec.labels, active=False)
                    self._step(rec, obs, now, timing, upserts, deletes, result)
        if upserts or deletes or result.transitions or self.unsaved:
            self._save(upserts, deletes, result.transitions)
        result.duration = time.perf_counter() - started
        return result

    def _save(self, upserts: list[AlertRecord], deletes: list[str], transitions: list[Transition]) -> None:
        """Write this evaluation's changes, with those a failed write left behind. A write that fails (a full
        disk, a file made read-only) never holds a page back: the alerts live on in memory, the changes wait
        for the next evaluation (the newest record per alert; at most MAX_UNSAVED_TRANSITIONS of history), and
        ``state_error`` says why until a write succeeds."""
        unsaved = self.unsaved
        for record in upserts:
            unsaved.deletes.discard(record.fingerprint)
            unsaved.upserts[record.fingerprint] = record
        for fingerprint in deletes:
            unsaved.upserts.pop(fingerprint, None)
            unsaved.deletes.add(fingerprint)
        unsaved.transitions += transitions
        if len(unsaved.transitions) > MAX_UNSAVED_TRANSITIONS:
            unsaved.dropped += len(unsaved.transitions) - MAX_UNSAVED_TRANSITIONS
            del unsaved.transitions[:-MAX_UNSAVED_TRANSITIONS]
        try:
            self.state.apply(list(unsaved.upserts.values()), sorted(unsaved.deletes), unsaved.transitions)
        except StateStoreError as exc:
            self.state_error = str(exc)
            return
        if unsaved.dropped:
            log.warning("%d history transitions could not be saved and were dropped", unsaved.dropped)
        self.state_error = None
        self.unsaved = Unsaved()

    def _step(
        self,
        prev: AlertRecord | None,
        obs: Observation,
        now: float,
        timing: Timing,
        upserts: list[AlertRecord],
        deletes: list[str],
        result: Evaluation,
    ) -> None:
        record, transition = advance(prev, obs, now, timing)
        if record is None:
            if prev is not None:
                del self.records[prev.fingerprint]
                deletes.append(prev.fingerprint)
        elif record != prev:
            self.records[record.fingerprint] = record
            if _worth_writing(prev, record):
                upserts.append(record)
        if transition is not None:
            result.transitions.append(transition)
            log.info(
                "alert %s %s -> %s %s value=%s",
                transition.labels.get("alertname", transition.rule),
                transition.from_state.value,
                transition.to_state.value,
                _fmt_labels(transition.labels),
                transition.value,
            )

    def _observe(self, rule: CompiledRule, now: float) -> list[Observation]:
        results = {name: q.evaluate(self.series, now) for name, q in rule.queries.items()}
        out = []
        for cand in rule.candidates(results, now):
            labels = rule.alert_labels(cand.labels)
            if not rule.is_active(cand, labels, now):
                continue
            annotations = self._render(rule, rule.render_context(cand, labels, now))
            out.append(Observation(rule.fingerprint(labels), rule.id, labels, True, cand.value, annotations))
        return out

    def _render(self, rule: CompiledRule, context: dict[str, Any]) -> dict[str, str]:
        out = {}
        for key, template in rule.annotations.items():
            try:
                out[key] = template.render(context)
            except Exception as exc:  # a broken template must not hide the alert
                out[key] = f"[{key} template failed: {type(exc).__name__}: {exc}]"
        return out

    # -- reading ---------------------------------------------------------------------------------------------

    def alerts(self, states: Iterable[AlertState] | None = None) -> list[AlertRecord]:
        wanted = set(states) if states is not None else None
        return [r for r in self.records.values() if wanted is None or r.state in wanted]

    def to_alert(self, record: AlertRecord) -> Alert:
        """The pipeline's view of a record: firing, or resolved with its end time."""
        resolved = record.state is AlertState.RESOLVED
        return Alert(
            fingerprint=record.fingerprint,
            rule=record.rule,
            labels=record.labels,
            annotations=record.annotations,
            state=record.state,
            value=record.value,
            starts_at=record.fired_at if record.fired_at is not None else record.active_at,
            ends_at=record.resolved_at if resolved else None,
            generator_url=f"{self.external_url}/alerts/{record.fingerprint}" if self.external_url else "",
        )


def _worth_writing(prev: AlertRecord | None, record: AlertRecord) -> bool:
    """Every change but the evaluation time alone is written, so a restart resumes where it stopped."""
    if prev is None:
        return True
    return (
        prev.state is not record.state
        or prev.value != record.value
        or prev.annotations != record.annotations
        or prev.last_true_at != record.last_true_at
    )


def _fmt_labels(labels: Any) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "alertname") + "}"
