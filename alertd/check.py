"""A configuration path in, every problem in it and its rule files out (``alertd check``).

Every rule and receiver template is rendered on sample data under the configured ``[templates]`` budget: a
template that fails or would pass its budget is one error naming the file, the rule or receiver, and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alertd.collectors.beat.schedules import read_beat_schedule
from alertd.config import LoadedConfig, load_config
from alertd.errors import ConfigError, ConfigErrors
from alertd.models import Alert, AlertState, fingerprint
from alertd.notifiers.base import Notification
from alertd.notifiers.reasons import Reason, ReasonKind
from alertd.notifiers.templates import template_context
from alertd.plugins import make_plugin_manager
from alertd.rules.load import RuleSet, load_rules
from alertd.sources import load_document
from alertd.templating.env import BoundedEnvironment, PermissiveLabels, make_environment, render_bounded

# Probing schedules from a fixed instant keeps check's answer the same from one day to the next.
_CHECK_FROM = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@dataclass
class CheckReport:
    errors: list[ConfigError] = field(default_factory=list)
    config: LoadedConfig | None = None
    rules: RuleSet | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def _flatten(exc: ConfigError) -> list[ConfigError]:
    return list(exc.errors) if isinstance(exc, ConfigErrors) else [exc]


def check(config_path: str) -> CheckReport:
    """Validate the configuration, then every rule file it names; never raises for bad input."""
    report = CheckReport()
    try:
        pm = make_plugin_manager()
        report.config = load_config(config_path, pm)
    except ConfigError as exc:
        report.errors.extend(_flatten(exc))
        return report
    report.errors.extend(_beat_problems(report.config, config_path))
    env = make_environment(pm, report.config.config.templates.budget())
    report.errors.extend(receiver_template_errors(report.config, env))
    try:
        report.rules = load_rules(report.config.rule_files, env, default_interval=report.config.config.evaluation_interval)
    except ConfigError as exc:
        report.errors.extend(_flatten(exc))
    return report


def _beat_problems(loaded: LoadedConfig, config_path: str) -> list[ConfigError]:
    """Every beat_schedule entry of the app that alertd cannot evaluate, one error each."""
    cfg = loaded.config
    if not cfg.celery.app or not cfg.beat.enabled:
        return []
    from alertd.celery_app import import_app

    try:
        app = import_app(cfg.celery.app)
    except ConfigError as exc:
        exc.file = exc.file or config_path
        return [exc]
    _, problems, _ = read_beat_schedule(app, _CHECK_FROM, cfg.beat.max_entries)
    return [
        ConfigError(p.message, file=config_path, field=f"celery.app {cfg.celery.app}: {p.field}") for p in problems
    ]


def sample_notification(receiver: str, external_url: str) -> Notification:
    """One firing alert with the labels and annotations most rules give, for rendering a receiver's templates."""
    labels = {"alertname": "SampleAlert", "severity": "page", "queue": "<queue>", "task_name": "<task_name>"}
    alert = Alert(
        fingerprint("alertd/check", labels), "alertd/check", labels,
        {"summary": "<summary>", "description": "<description>", "runbook_url": "<runbook_url>"},
        AlertState.FIRING, 1.0, 0.0,
    )
    return Notification(
        id="check", receiver=receiver, group_key=f"{{}}:check:{receiver}", group_labels={"alertname": "SampleAlert"},
        alerts=(alert,), reason=Reason(ReasonKind.FIRST), created_at=0.0, external_url=external_url,
    )


def permissive(context: dict[str, Any]) -> dict[str, Any]:
    """The sample context with labels and annotations that have every name, as real alerts may."""
    for key in ("group_labels", "common_labels", "common_annotations"):
        context[key] = PermissiveLabels(context[key])
    for key in ("alerts", "firing", "resolved"):
        for alert in context[key]:
            alert["labels"] = PermissiveLabels(alert["labels"])
            alert["annotations"] = PermissiveLabels(alert["annotations"])
    return context


def receiver_template_errors(loaded: LoadedConfig, env: BoundedEnvironment) -> list[ConfigError]:
    """Each receiver's templates (the notifier's defaults and the receiver's own), rendered on a sample alert."""
    errors: list[ConfigError] = []
    doc = None
    for name, settings in loaded.receiver_settings.items():
        cls = loaded.notifier_types[loaded.config.receivers[name].type]
        context = permissive(template_context(sample_notification(name, loaded.config.external_url)))
        for template, source in {**cls.templates, **settings.templates}.items():
            try:
                rendered = render_bounded(env.from_string(source), context, report=False)
            except Exception as exc:  # a syntax error is reported by load_config already
                problem = f"template fails on sample data: {type(exc).__name__}: {exc}"
            else:
                if rendered.breach is None:
                    continue
                problem = f"template fails on sample data: {rendered.breach.describe()}"
            doc = doc or load_document(loaded.path)
            loc = ("receivers", name, "templates", template)
            errors.append(ConfigError(problem, file=loaded.path, line=doc.line_of(loc),
                                      field=f"receivers.{name}.templates.{template}"))
    return errors
