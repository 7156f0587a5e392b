"""Test files in, results out: input series replayed into a fresh engine on a virtual clock, alerts compared."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jinja2.sandbox import SandboxedEnvironment
from pydantic import ValidationError

from alertd.alerts.engine import RuleEngine
from alertd.durations import format_duration
from alertd.errors import ConfigError, ConfigErrors
from alertd.models import AlertState, Sample
from alertd.rules.load import RuleSet, load_rules, rule_files_or_errors
from alertd.ruletest.model import AlertExpectation, ExpectedAlert, RuleTest, TestFile
from alertd.ruletest.notation import MISSING, STALE, expand_values
from alertd.series.selector import parse_selector
from alertd.series.store import SeriesStore
from alertd.sources import load_document, validation_errors
from alertd.state.base import AlertRecord
from alertd.state.memory import MemoryStateStore

TEST_SUFFIXES = ("_test.toml", "_test.yaml", "_test.yml")


@dataclass
class TestResult:
    file: str
    name: str
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class FileRun:
    """One test file's results, with the file and the rules it loaded (None when it could not be loaded: then
    its one result, ``(loading)``, says why)."""

    path: str
    results: list[TestResult]
    spec: TestFile | None = None
    rules: RuleSet | None = None


def find_test_files(paths: Iterable[str]) -> list[str]:
    """Files as given; folders searched recursively for ``*_test.toml`` / ``*_test.yaml``."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, _dirs, files in os.walk(p):
                out.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(TEST_SUFFIXES))
        else:
            out.append(p)
    return sorted(dict.fromkeys(os.path.normpath(p) for p in out))


def load_test_file(path: str) -> TestFile:
    doc = load_document(path)
    try:
        return TestFile.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigErrors(validation_errors(exc, doc)) from None


def run_file(path: str, env: SandboxedEnvironment) -> FileRun:
    """Run every test of one file; problems with the file itself come back as one failed result."""
    started = time.perf_counter()
    try:
        spec = load_test_file(path)
        rule_files = rule_files_or_errors(spec.rule_files, Path(path).parent, file=path)
        rules = load_rules(rule_files, env, default_interval=spec.evaluation_interval)
    except ConfigError as exc:
        return FileRun(path, [TestResult(path, "(loading)", [str(exc)], time.perf_counter() - started)])
    results = []
    for test in spec.tests:
        started = time.perf_counter()
        result = run_test(path, spec, test, rules)
        result.seconds = time.perf_counter() - started
        results.append(result)
    return FileRun(path, results, spec, rules)


def _input_samples(test: RuleTest) -> list[tuple[float, str, dict[str, str], float | str]]:
    out = []
    for s in test.series:
        selector = parse_selector(s.select)
        if any(m.op != "=" for m in selector.matchers):
            raise ValueError(f"input series {s.select!r} may only use = matchers")
        labels = {m.label: m.value for m in selector.matchers}
        for i, v in enumerate(expand_values(s.values)):
            if v is not MISSING:
                out.append((i * test.interval, selector.name, labels, v))
    out.sort(key=lambda item: item[0])
    return out


def run_test(path: str, spec: TestFile, test: RuleTest, rules: RuleSet) -> TestResult:
    result = TestResult(path, test.name)
    try:
        samples = _input_samples(test)
    except ValueError as exc:
        result.failures.append(f"input series: {exc}")
        return result
    events = sorted(spec.event_dicts(test), key=lambda e: e["at"])
    known_rules = {r.name for r in rules.rules}
    for exp in test.alerts:
        if exp.rule not in known_rules:
            result.failures.append(f"at {format_duration(exp.at)}: no rule named {exp.rule!r} in {spec.rule_files}")
    notify = None
    if test.notifications and not spec.tests_notifications:
        result.failures.append("notification expectations need config = \"alertd.toml\" or inline route and receivers")
    elif test.notifications:
        from alertd.ruletest.notifications import NotificationRun

        try:
            notify = NotificationRun.create(path, spec, test)
        except ConfigError as exc:
            result.failures.append(f"notification settings: {exc}")
    if result.failures:
        return result

    series = SeriesStore(retention=86400.0 * 365, lookback=300.0)
    engine = RuleEngine(rules, series, MemoryStateStore())
    feeder = _EventFeeder() if events else None
    step = spec.evaluation_interval
    extra = notify.times if notify is not None else set()
    end = max((*(e.at for e in test.alerts), *extra), default=0.0)
    times = sorted({*(i * step for i in range(int(end // step) + 1)), *(e.at for e in test.alerts), *extra})
    expectations: dict[float, list[AlertExpectation]] = {}
    for exp in test.alerts:
        expectations.setdefault(exp.at, []).append(exp)

    si = ei = 0
    for now in times:
        while si < len(samples) and samples[si][0] <= now:
            at, name, labels, value = samples[si]
            if value == STALE:
                series.mark_stale(name, labels, at)
            else:
                series.add(Sample(name, labels, float(value), at))
            si += 1
        if feeder is not None:
            while ei < len(events) and events[ei]["at"] <= now:
                series.add_many(feeder.feed(events[ei]))
                ei += 1
            series.add_many(feeder.tick(now))
        engine.evaluate(now)
        for exp in expectations.get(now, ()):
            result.failures.extend(_compare(exp, engine))
        if notify is not None:
            result.failures.extend(notify.step(now, engine))
    if notify is not None:
        notify.close()
    return result


def _compare(exp: AlertExpectation, engine: RuleEngine) -> list[str]:
    out = []
    for state, wanted in ((AlertState.FIRING, exp.firing), (AlertState.PENDING, exp.pending)):
        if wanted is None:
            continue
        got = [
            r for r in engine.alerts([state]) if r.labels.get("alertname") == exp.rule
        ]
        got_labels = sorted(sorted(_without_alertname(r.labels).items()) for r in got)
        want_labels = sorted(sorted(w.labels.items()) for w in wanted)
        problems = []
        if got_labels != want_labels:
            problems.append("labels differ")
        else:
            by_labels = {tuple(sorted(_without_alertname(r.labels).items())): r for r in got}
            for w in wanted:
                rec = by_labels[tuple(sorted(w.labels.items()))]
                for key, text in w.annotations.items():
                    actual = rec.annotations.get(key)
                    if actual != text:
                        problems.append(f"annotation {key} of {_fmt(w.labels)}: expected {text!r}, got {actual!r}")
        if problems:
            lines = [f"at {format_duration(exp.at)}: {exp.rule}: {state.value} alerts differ ({'; '.join(problems)})"]
            lines.append(f"  expected {state.value}:")
            lines.extend(_describe_expected(wanted))
            lines.append(f"  got {state.value}:")
            lines.extend(_describe_got(got))
            out.append("\n".join(lines))
    return out


def _without_alertname(labels: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k != "alertname"}


def _fmt(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _describe_expected(wanted: Sequence[ExpectedAlert]) -> list[str]:
    if not wanted:
        return ["    (none)"]
    out = []
    for w in wanted:
        out.append(f"    - {_fmt(w.labels)}")
        out.extend(f"        {k}: {v!r}" for k, v in sorted(w.annotations.items()))
    return out


def _describe_got(got: Sequence[AlertRecord]) -> list[str]:
    if not got:
        return ["    (none)"]
    out = []
    for r in got:
        out.append(f"    - {_fmt(_without_alertname(r.labels))} value={r.value!r}")
        out.extend(f"        {k}: {v!r}" for k, v in sorted(r.annotations.items()))
    return out


class _EventFeeder:
    """Replays Celery events through the same translator the event consumer uses."""

    def __init__(self) -> None:
        from alertd.collectors.events.translate import EventTranslator

        self.translator = EventTranslator()

    def feed(self, event: dict[str, object]) -> list[Sample]:
        fields = dict(event)
        at = float(fields.pop("at"))  # type: ignore[arg-type]
        fields.setdefault("timestamp", at)
        return list(self.translator.feed(fields))

    def tick(self, now: float) -> list[Sample]:
        return list(self.translator.tick(now))
