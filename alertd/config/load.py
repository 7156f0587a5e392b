"""A configuration file path in, a LoadedConfig (validated settings, collector and receiver settings, rule files) out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
from pydantic import ValidationError

from alertd.collectors.base import Collector, CollectorSettings
from alertd.config.model import Config
from alertd.config.secrets import Loc, Secrecy, hidden_parts, model_secrecy, redact, substitute
from alertd.dispatch.config import ReceiverConfig, RouteConfig
from alertd.errors import ConfigError, ConfigErrors
from alertd.notifiers.base import Notifier, ReceiverSettings
from alertd.rules.load import rule_files_or_errors
from alertd.sources import Document, format_loc, load_document, validation_errors


@dataclass
class LoadedConfig:
    """A validated configuration and what was resolved while loading it."""

    config: Config
    path: str
    secrecy: Secrecy  # which settings are secrets (config_secrecy)
    references: frozenset[str] = frozenset()  # values that came from a ${VAR} in a secret or a <key>_file
    collector_types: dict[str, type[Collector]] = field(default_factory=dict)
    collector_settings: dict[str, CollectorSettings] = field(default_factory=dict)
    notifier_types: dict[str, type[Notifier]] = field(default_factory=dict)
    receiver_settings: dict[str, ReceiverSettings] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return Path(self.path).parent

    def resolve(self, path: str) -> str:
        """A path from the configuration, relative to the configuration file's folder."""
        p = Path(path)
        return str(p if p.is_absolute() else self.base_dir / p)

    @property
    def rule_files(self) -> list[str]:
        """The rule files; a pattern that matches no file is a ConfigError."""
        return rule_files_or_errors(self.config.rule_files, self.base_dir, file=self.path)

    def secret_values(self) -> list[str]:
        """Every value that must never reach a log line: secrets, what came from secret references, URL passwords."""
        out: list[str] = list(self.references)

        def walk(value: Any, loc: tuple[Any, ...]) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(v, (*loc, k))
            elif isinstance(value, list):
                for i, v in enumerate(value):
                    walk(v, (*loc, i))
            elif isinstance(value, str):
                out.extend(hidden_parts(value, secret=self.secrecy(loc) is True))

        walk(self.config.model_dump(by_alias=True), ())
        return sorted(set(out))

    @property
    def state_url(self) -> str:
        url = self.config.state.url
        if "://" in url:
            return url
        return self.resolve(url)

    def redacted(self) -> dict[str, Any]:
        """The effective configuration as JSON-able data, with every secret replaced."""
        data = json.loads(self.config.model_dump_json(by_alias=True))
        data["collectors"] = {
            name: json.loads(s.model_dump_json()) for name, s in sorted(self.collector_settings.items())
        }
        # The validated settings, where a notifier's SecretStr fields print as stars.
        for name, settings in self.receiver_settings.items():
            data["receivers"][name].update(json.loads(settings.model_dump_json(by_alias=True)))
        return dict(redact(data, self.secrecy, self.references))


def config_secrecy(
    data: Mapping[str, Any], notifiers: Mapping[str, type[Notifier]], collectors: Mapping[str, type[Collector]]
) -> Secrecy:
    """Which settings of this configuration are secrets: the Config model's, and those of each receiver's
    notifier and each collector (a receiver of a type that is not installed has none)."""

    def secrecy(loc: Loc) -> bool | None:
        if len(loc) >= 3 and loc[0] == "receivers":
            own = model_secrecy(ReceiverConfig, loc[2:])
            if own is not None:
                return own
            receiver = (data.get("receivers") or {}).get(loc[1])
            kind = receiver.get("type") if isinstance(receiver, Mapping) else None
            notifier = notifiers.get(kind) if isinstance(kind, str) else None
            return model_secrecy(notifier.Settings, loc[2:]) if notifier else False
        if len(loc) >= 3 and loc[0] == "collectors":
            collector = collectors.get(loc[1])
            return model_secrecy(collector.Settings, loc[2:]) if collector else False
        return model_secrecy(Config, loc)

    return secrecy


def collector_types(pm: pluggy.PluginManager) -> dict[str, type[Collector]]:
    types: dict[str, type[Collector]] = {}
    for group in pm.hook.register_collectors():
        for cls in group:
            if cls.type_name in types and types[cls.type_name] is not cls:
                raise ConfigError(f"two plugins offer a collector named {cls.type_name!r}")
            types[cls.type_name] = cls
    return types


def notifier_types(pm: pluggy.PluginManager) -> dict[str, type[Notifier]]:
    types: dict[str, type[Notifier]] = {}
    for group in pm.hook.register_notifiers():
        for cls in group:
            if cls.type_name in types and types[cls.type_name] is not cls:
                raise ConfigError(f"two plugins offer a notifier named {cls.type_name!r}")
            types[cls.type_name] = cls
    return types


def _receivers(loaded: LoadedConfig, doc: Document, pm: pluggy.PluginManager) -> list[ConfigError]:
    """Each receiver's settings validated by its notifier's model, and its templates compiled."""
    from jinja2 import TemplateSyntaxError

    from alertd.templating.env import make_environment

    errors: list[ConfigError] = []
    env = None
    for name, receiver in loaded.config.receivers.items():
        cls = loaded.notifier_types.get(receiver.type)
        if cls is None:
            installed = ", ".join(sorted(loaded.notifier_types)) or "none"
            errors.append(ConfigError(
                f"unknown receiver type {receiver.type!r}; installed: {installed} (see `alertd plugins`)",
                file=doc.path, line=doc.line_of(("receivers", name, "type")), field=f"receivers.{name}.type",
            ))
            continue
        try:
            # Relative file paths in the settings (ca_file) are relative to the configuration file.
            settings = cls.Settings.model_validate(receiver.notifier_settings(), context={"base_dir": loaded.base_dir})
        except ValidationError as exc:
            errors.extend(validation_errors(exc, doc, base=("receivers", name)))
            continue
        loaded.receiver_settings[name] = settings
        for template, source in {**cls.templates, **settings.templates}.items():
            env = env or make_environment(pm)
            try:
                env.parse(source)
            except TemplateSyntaxError as exc:
                loc = ("receivers", name, "templates", template)
                errors.append(ConfigError(f"template syntax error: {exc.message} (template line {exc.lineno})",
                                          file=doc.path, line=doc.line_of(loc), field=f"receivers.{name}.templates.{template}"))
    return errors


def reference_errors(config: Config, doc: Document) -> list[ConfigError]:
    """Every receiver, time interval and escalation policy that the notification settings name exists."""
    errors: list[ConfigError] = []

    def fail(loc: tuple[str | int, ...], message: str) -> None:
        errors.append(ConfigError(message, file=doc.path, line=doc.line_of(loc), field=format_loc(loc)))

    def receiver(loc: tuple[str | int, ...], name: str | None) -> None:
        if name is not None and name not in config.receivers:
            known = ", ".join(sorted(config.receivers)) or "none"
            fail(loc, f"unknown receiver {name!r}; configured receivers: {known}")

    for name, rc in config.receivers.items():
        receiver(("receivers", name, "fallback"), rc.fallback)
    if config.route.receiver is None and config.receivers:
        fail(("route",), "route.receiver is required: every alert that no child route takes goes there")

    def walk(route: RouteConfig, loc: tuple[str | int, ...], inherited: str | None) -> None:
        receiver((*loc, "receiver"), route.receiver)
        receiver((*loc, "fallback"), route.fallback)
        for key in ("mute_time_intervals", "active_time_intervals"):
            for i, interval in enumerate(getattr(route, key) or ()):
                if interval not in config.time_intervals:
                    fail((*loc, key, i), f"unknown time interval {interval!r}")
        own = route.receiver or inherited
        if route.escalation is not None:
            policy = config.escalation_policies.get(route.escalation)
            if policy is None:
                fail((*loc, "escalation"), f"unknown escalation policy {route.escalation!r}")
            elif own in {lvl.receiver for lvl in policy.levels} or len({lvl.receiver for lvl in policy.levels}) < len(policy.levels):
                fail((*loc, "escalation"), f"escalation policy {route.escalation!r} names a receiver twice "
                     f"(level 0 is the route's receiver {own!r})")
        for i, child in enumerate(route.routes):
            walk(child, (*loc, "routes", i), own)

    walk(config.route, ("route",), None)
    for name, policy in config.escalation_policies.items():
        for i, level in enumerate(policy.levels):
            receiver(("escalation_policies", name, "levels", i, "receiver"), level.receiver)
    return errors


def load_config(path: str | Path, pm: pluggy.PluginManager | None = None) -> LoadedConfig:
    """Load and validate a configuration file; raises ConfigErrors listing every problem found."""
    if pm is None:
        from alertd.plugins import make_plugin_manager

        pm = make_plugin_manager()
    doc = load_document(path)
    collectors, notifiers = collector_types(pm), notifier_types(pm)
    secrecy = config_secrecy(doc.data, notifiers, collectors)
    data, references = substitute(doc, secrecy)
    checked = Document(doc.path, data, doc.lines)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigErrors(validation_errors(exc, checked)) from None
    loaded = LoadedConfig(config, str(path), secrecy, frozenset(references), collectors, notifier_types=notifiers)
    errors: list[ConfigError] = []
    for name in config.collectors:
        if name not in loaded.collector_types:
            errors.append(
                ConfigError(
                    f"unknown collector {name!r}; installed: {', '.join(sorted(loaded.collector_types)) or 'none'}",
                    file=doc.path,
                    line=doc.line_of(("collectors", name)),
                    field=f"collectors.{name}",
                )
            )
    for name, cls in loaded.collector_types.items():
        raw = config.collectors.get(name)
        if raw is None and not cls.default_enabled:
            continue
        try:
            # A relative ca_file is relative to the configuration file, as in receivers.
            loaded.collector_settings[name] = cls.Settings.model_validate(raw or {}, context={"base_dir": loaded.base_dir})
        except ValidationError as exc:
            errors.extend(validation_errors(exc, checked, base=("collectors", name)))
    errors.extend(_receivers(loaded, checked, pm))
    errors.extend(reference_errors(config, checked))
    if errors:
        raise ConfigErrors(errors)
    return loaded
