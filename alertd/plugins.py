"""The plugin manager: built-in plugins and installed entry points in, a checked ``pluggy.PluginManager`` out."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass

import pluggy

from alertd import hookspecs
from alertd.errors import ConfigError

ENTRY_POINT_GROUPS = ("alertd.notifiers", "alertd.plugins")

BUILTIN_PLUGINS = (
    "alertd.templating.filters",
    "alertd.collectors.builtin",
    "alertd.notifiers.builtin",
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


@dataclass(frozen=True)
class PluginEntry:
    """One notifier or collector type and the distribution that provides it (``alertd plugins``)."""

    kind: str  # "notifier" or "collector"
    type_name: str
    distribution: str
    version: str
    module: str


def installed(pm: pluggy.PluginManager) -> list[PluginEntry]:
    """Every notifier and collector type, with its distribution's name and version."""
    from importlib.metadata import version

    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    own = ("alertd", version("alertd"))
    out: list[PluginEntry] = []
    for name, plugin in pm.list_name_plugin():
        dist = dists.get(id(plugin))
        project, release = (dist.project_name, dist.version) if dist is not None else own
        for kind, hook in (("notifier", "register_notifiers"), ("collector", "register_collectors")):
            provide = getattr(plugin, hook, None)
            if provide is None:
                continue
            for cls in provide():
                out.append(PluginEntry(kind, cls.type_name, project, release, getattr(plugin, "__name__", name)))
    return sorted(out, key=lambda e: (e.kind, e.type_name))
