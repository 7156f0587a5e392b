"""The examples in docs/notifications.md load, so the manual does not drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alertd.config import load_config
from tests.helpers import write

DOC = (Path(__file__).resolve().parents[2] / "docs" / "notifications.md").read_text(encoding="utf-8")


def test_the_full_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = DOC.split("## A full example", 1)[1]
    example = re.search(r"```toml\n(.*?)```", section, re.S)
    assert example is not None
    for name in ("SLACK_WEBHOOK_URL", "SLACK_PAYMENTS_LEAD_WEBHOOK_URL"):
        monkeypatch.setenv(name, "https://hooks.slack.com/services/T000/B000/XXXX")
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", "0123456789abcdef0123456789abcdef")
    write(tmp_path / "rules" / "r.toml", "")
    loaded = load_config(write(tmp_path / "alertd.toml", example.group(1)))
    assert set(loaded.receiver_settings) == {"ops-slack", "ops-email", "payments-pagerduty", "payments-lead"}
