"""``alertd plugins`` and ``alertd notify``."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from alertd.cli import main
from tests.helpers import write

CONFIG = """
[receivers.console]
type = "console"

[receivers.broken]
type = "console"
templates = { text = "{{ alerts[0].labels.missing }}" }

[receivers.unwritable]
type = "console"
path = "no/such/folder/x.log"

[route]
receiver = "console"
"""


def test_plugins_lists_notifiers_and_collectors_with_their_distributions() -> None:
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split()[:4] == ["notifier", "console", "alertd", "0.1.0"] for line in lines)
    assert any(line.split()[:3] == ["notifier", "slack", "alertd-slack"] for line in lines)
    assert any(line.split()[:3] == ["collector", "workers", "alertd"] for line in lines)


def test_notify_sends_a_test_notification(tmp_path: Path) -> None:
    cfg = write(tmp_path / "alertd.toml", CONFIG)
    result = CliRunner().invoke(main, ["notify", "-c", str(cfg), "--receiver", "console"])
    assert result.exit_code == 0, result.output
    assert "AlertdTestNotification" in result.output
    assert "console (console): delivered in" in result.output


def test_notify_reports_a_failing_template_and_still_delivers(tmp_path: Path) -> None:
    cfg = write(tmp_path / "alertd.toml", CONFIG)
    result = CliRunner().invoke(main, ["notify", "-c", str(cfg), "-r", "broken"])
    assert result.exit_code == 0, result.output
    assert "template problem: template text of receiver broken failed" in result.output


def test_notify_prints_the_error_and_fails(tmp_path: Path) -> None:
    cfg = write(tmp_path / "alertd.toml", CONFIG)
    result = CliRunner().invoke(main, ["notify", "-c", str(cfg), "-r", "unwritable"])
    assert result.exit_code == 1
    assert "unwritable (console): FAILED in" in result.output
    assert "error: RetryableError: cannot append to no/such/folder/x.log" in result.output


def test_notify_names_the_receivers_there_are(tmp_path: Path) -> None:
    cfg = write(tmp_path / "alertd.toml", CONFIG)
    result = CliRunner().invoke(main, ["notify", "-c", str(cfg), "-r", "nope"])
    assert result.exit_code == 1
    assert "unknown receiver 'nope'; configured receivers: broken, console, unwritable" in result.output
