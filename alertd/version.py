"""Installed distributions in, the ``alertd --version`` text out: alertd's version and each plugin's."""

from __future__ import annotations

from importlib.metadata import entry_points

from alertd import __version__
from alertd.plugins import ENTRY_POINT_GROUPS


def plugin_distributions() -> list[tuple[str, str]]:
    """(name, version) of every distribution that provides an alertd entry point, without importing it."""
    found: dict[str, str] = {}
    for group in ENTRY_POINT_GROUPS:
        for ep in entry_points(group=group):
            if ep.dist is not None:
                found[ep.dist.name] = ep.dist.version
    return sorted(found.items())


def version_text() -> str:
    lines = [f"alertd {__version__}"]
    lines.extend(f"  plugin {name} {version}" for name, version in plugin_distributions())
    return "\n".join(lines)
