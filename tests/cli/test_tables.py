"""Tables, ages and times as the CLI prints them."""

from __future__ import annotations

import time

import pytest

from alertd.cli_api import alert_flags, alerts_table
from alertd.tables import age_since, format_age, format_table, local_time, relative_time


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.4, "0s"), (12, "12s"), (60, "1m"), (192, "3m 12s"), (3600, "1h"), (3725, "1h 2m"),
    (93784, "1d 2h"), (7199.8, "2h"), (-5, "0s"),
])
def test_format_age(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


def test_times() -> None:
    ts = 1_700_000_000.0
    assert local_time(ts) == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
    assert relative_time(ts, now=ts - 7200) == f"{local_time(ts)} (in 2h)"
    assert relative_time(ts, now=ts + 192) == f"{local_time(ts)} (3m 12s ago)"
    assert relative_time(ts, now=ts + 0.2) == f"{local_time(ts)} (now)"
    assert relative_time(None) == local_time(None) == age_since(None) == ""
    assert age_since(ts, now=ts + 61) == "1m 1s"


def test_format_table_aligns_columns_without_trailing_spaces() -> None:
    assert format_table(["A", "LONG HEADER", "C"], [["xxxx", "y", ""], ["", "", "z"]]).splitlines() == [
        "A     LONG HEADER  C",
        "xxxx  y",
        "                   z",
    ]


def test_alerts_table_cells() -> None:
    now = 1_700_000_000.0
    alert = {
        "fingerprint": "0123456789abcdef", "state": "resolved", "severity": "", "labels": {"alertname": "X", "b": "2"},
        "annotations": {"summary": "two\nlines"}, "value": None, "active_at": now - 600, "fired_at": now - 500,
        "resolved_at": now - 30, "silenced_by": ["s1"], "inhibited_by": ["f"], "acknowledgement": {"by": "bob"},
    }
    assert alert_flags(alert) == "silenced,inhibited,acked"
    header, row = alerts_table([alert], wide=True, now=now).splitlines()
    assert header.split() == ["FINGERPRINT", "STATE", "SEVERITY", "ALERT", "AGE", "VALUE", "FLAGS", "LABELS", "SUMMARY"]
    assert row.split() == ["0123456789abcdef", "resolved", "X", "30s", "silenced,inhibited,acked", 'b="2"', "two", "lines"]
