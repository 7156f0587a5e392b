"""The plugin manager: built-in plugins and installed entry points in, a checked ``pluggy.PluginManager`` out."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

import pluggy

from alertd import hookspecs
from alertd.errors import ConfigError

ENTRY_POINT_GROUPS = ("alertd.notifiers", "alertd.plugins")

BUILTIN_PLUGINS = (
    "alertd.templating.filters",
    "alertd.collectors.builtin",
)


def make_plugin_manager(
    *, builtins: Iterable[str] = BUILTIN_PLUGINS, load_entry_points: bool = True
) -> pluggy.PluginManager:
    """Build a plugin manager with alertd's hooks, its built-in plugins and every installed plugin.

    A hook implementation that matches no hook specification is an error, not a silent no-op.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in builtins:
        pm.register(importlib.import_module(name), name=name)
    if load_entry_points:
        for group in ENTRY_POINT_GROUPS:
            pm.load_setuptools_entrypoints(group)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigError(f"plugin {exc.plugin!r} implements a hook that alertd does not have: {exc}") from exc
    return pm
