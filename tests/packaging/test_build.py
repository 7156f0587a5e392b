"""``python -m build`` of alertd and of a plugin gives a wheel and an sdist that carry every file the packages
need, and that ``pipx`` installs as a tool, the plugin injected, where ``alertd --version`` names the plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def build(project: Path, out: Path) -> tuple[Path, Path]:
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(project)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    # setuptools warns of deprecated settings (a license table, ...) on stderr; a clean build has none
    assert "deprecated" not in (done.stdout + done.stderr).lower()
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def data_files(package: Path) -> set[str]:
    """Every file of a package that is not Python source, as a path from the package's parent."""
    return {str(p.relative_to(package.parent)) for p in package.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}


def check_contents(package: Path, wheel: Path, sdist: Path) -> None:
    modules = {str(p.relative_to(package.parent)) for p in package.rglob("*.py")}
    expected = modules | data_files(package)
    assert f"{package.name}/py.typed" in expected
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert expected <= in_wheel, expected - in_wheel
    prefix = sdist.name.removesuffix(".tar.gz") + "/"
    with tarfile.open(sdist) as tar:
        in_sdist = {n.removeprefix(prefix) for n in tar.getnames()}
    assert expected <= in_sdist, expected - in_sdist
    assert "pyproject.toml" in in_sdist and "README.md" in in_sdist


def test_wheels_and_sdists_build_and_install_as_a_tool_with_its_plugin(tmp_path: Path) -> None:
    core_wheel, core_sdist = build(ROOT, tmp_path / "core")
    check_contents(ROOT / "alertd", core_wheel, core_sdist)
    slack_wheel, slack_sdist = build(ROOT / "plugins" / "slack", tmp_path / "slack")
    check_contents(ROOT / "plugins" / "slack" / "alertd_slack", slack_wheel, slack_sdist)

    # As a user installs a tool: pipx makes it a virtual environment of its own, and injects the plugin into it.
    pipx_env = {**os.environ, "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin"),
                "PIPX_MAN_DIR": str(tmp_path / "man"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for command in (["install", str(core_wheel)], ["inject", "alertd", str(slack_sdist)]):
        done = subprocess.run([sys.executable, "-m", "pipx", *command], capture_output=True, text=True,
                              timeout=540, env=pipx_env)
        assert done.returncode == 0, done.stdout + done.stderr
    alertd = str(tmp_path / "bin" / "alertd")

    version = subprocess.run([alertd, "--version"], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert version.stdout.splitlines() == ["alertd 0.1.0", "  plugin alertd-slack 0.1.0"]
    # The installed templates load: the slack notifier's defaults come from its package data.
    plugins = subprocess.run([alertd, "plugins"], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path)
    assert plugins.returncode == 0, plugins.stderr
    assert any(line.split()[:4] == ["notifier", "slack", "alertd-slack", "0.1.0"]
               for line in plugins.stdout.splitlines())
