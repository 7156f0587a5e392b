"""``alertd --version`` names alertd's version and every installed plugin distribution's."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from click.testing import CliRunner

from alertd import __version__
from alertd.cli import main


def test_version_names_the_installed_plugins() -> None:
    result = CliRunner().invoke(main, ["--version"], catch_exceptions=False)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"alertd {__version__}" == f"alertd {version('alertd')}"
    # The development environment installs every plugin of plugins/ (scripts/setup.sh).
    plugins = Path(__file__).resolve().parents[1] / "plugins"
    names = sorted(tomllib.loads(p.read_text())["project"]["name"] for p in plugins.glob("*/pyproject.toml"))
    assert len(names) >= 4
    assert lines[1:] == [f"  plugin {name} {version(name)}" for name in names]
