"""A configuration path in, every problem in it and its rule files out (``alertd check``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from alertd.collectors.beat.schedules import read_beat_schedule
from alertd.config import LoadedConfig, load_config
from alertd.errors import ConfigError, ConfigErrors
from alertd.plugins import make_plugin_manager
from alertd.rules.load import RuleSet, load_rules
from alertd.templating.env import make_environment

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
    try:
        report.rules = load_rules(
            report.config.rule_files, make_environment(pm), default_interval=report.config.config.evaluation_interval
        )
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
