"""A configuration path in, every problem in it and its rule files out (``alertd check``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from alertd.config import LoadedConfig, load_config
from alertd.errors import ConfigError, ConfigErrors
from alertd.plugins import make_plugin_manager
from alertd.rules.load import RuleSet, load_rules
from alertd.templating.env import make_environment


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
    try:
        report.rules = load_rules(
            report.config.rule_files, make_environment(pm), default_interval=report.config.config.evaluation_interval
        )
    except ConfigError as exc:
        report.errors.extend(_flatten(exc))
    return report
