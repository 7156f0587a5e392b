"""A configuration file path in, a LoadedConfig (validated settings, collector settings, rule files) out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
from pydantic import ValidationError

from alertd.collectors.base import Collector, CollectorSettings
from alertd.config.model import Config
from alertd.config.secrets import redact, substitute
from alertd.errors import ConfigError, ConfigErrors
from alertd.rules.load import find_rule_files
from alertd.sources import Document, load_document, validation_errors


@dataclass
class LoadedConfig:
    """A validated configuration and what was resolved while loading it."""

    config: Config
    path: str
    secret_paths: set[tuple[Any, ...]] = field(default_factory=set)
    collector_types: dict[str, type[Collector]] = field(default_factory=dict)
    collector_settings: dict[str, CollectorSettings] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return Path(self.path).parent

    def resolve(self, path: str) -> str:
        """A path from the configuration, relative to the configuration file's folder."""
        p = Path(path)
        return str(p if p.is_absolute() else self.base_dir / p)

    @property
    def rule_files(self) -> list[str]:
        return find_rule_files(self.config.rule_files, self.base_dir)

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
        return dict(redact(data, self.secret_paths))


def collector_types(pm: pluggy.PluginManager) -> dict[str, type[Collector]]:
    types: dict[str, type[Collector]] = {}
    for group in pm.hook.register_collectors():
        for cls in group:
            if cls.type_name in types and types[cls.type_name] is not cls:
                raise ConfigError(f"two plugins offer a collector named {cls.type_name!r}")
            types[cls.type_name] = cls
    return types


def load_config(path: str | Path, pm: pluggy.PluginManager | None = None) -> LoadedConfig:
    """Load and validate a configuration file; raises ConfigErrors listing every problem found."""
    if pm is None:
        from alertd.plugins import make_plugin_manager

        pm = make_plugin_manager()
    doc = load_document(path)
    data, secret_paths = substitute(doc)
    checked = Document(doc.path, data, doc.lines)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigErrors(validation_errors(exc, checked)) from None
    loaded = LoadedConfig(config, str(path), secret_paths, collector_types(pm))
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
            loaded.collector_settings[name] = cls.Settings.model_validate(raw or {})
        except ValidationError as exc:
            errors.extend(validation_errors(exc, checked, base=("collectors", name)))
    if errors:
        raise ConfigErrors(errors)
    return loaded
