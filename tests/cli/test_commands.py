"""``alertd alerts``, ``silence``, ``ack`` and ``explain`` against a real alertd, as tables and as JSON."""

from __future__ import annotations

import json
import re

import pytest

from tests.cli.conftest import TOKEN, Served, alertd


def rows(table: str) -> tuple[str, list[dict[str, str]]]:
    """A table's header line and its rows as {column: cell}, cut where the header's columns start."""
    header, *lines = table.rstrip("\n").splitlines()
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", header)]
    names = [header[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=True)]
    out = []
    for line in lines:
        cells = [line[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=True)]
        out.append(dict(zip(names, cells, strict=True)))
    return header, out


def test_alerts_table_and_json(served: Served) -> None:
    result = alertd("alerts", "--url", served.url)
    assert result.exit_code == 0, result.output
    header, found = rows(result.stdout)
    assert header.split() == ["FINGERPRINT", "STATE", "SEVERITY", "ALERT", "AGE", "VALUE", "FLAGS", "SUMMARY"]
    payments = next(r for r in found if r["SUMMARY"] == "queue payments holds 50.0 tasks")
    assert payments["STATE"] == "firing" and payments["SEVERITY"] == "warning"
    assert payments["ALERT"] == "QueueBacklog" and payments["VALUE"] == "50" and payments["FLAGS"] == ""
    assert re.fullmatch(r"\d+s", payments["AGE"])
    assert re.fullmatch(r"[0-9a-f]{16}", payments["FINGERPRINT"])
    assert sorted((r["STATE"], r["ALERT"]) for r in found) == [
        ("firing", "QueueBacklog"), ("firing", "QueueBacklog"), ("pending", "QueueStuck"), ("pending", "QueueStuck")]

    result = alertd("alerts", "--url", served.url, "--json", "--state", "firing", "--filter", 'queue="payments"')
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(a["labels"]["alertname"], a["labels"]["queue"], a["value"]) for a in data["alerts"]] == [
        ("QueueBacklog", "payments", 50.0)]
    assert data["alerts"][0]["fingerprint"] == payments["FINGERPRINT"]

    result = alertd("alerts", "--url", served.url, "--state", "pending", "--filter", 'queue=~"e.*"', "--wide")
    _, found = rows(result.stdout)
    assert [(r["ALERT"], r["LABELS"], r["SEVERITY"]) for r in found] == [("QueueStuck", 'queue="emails"', "critical")]

    result = alertd("alerts", "--url", served.url, "--filter", 'queue="nothing"')
    assert result.exit_code == 0 and result.stdout == "no pending or firing alerts match the filters\n"


def test_silence_add_list_shows_silenced_then_expire(served: Served) -> None:
    url = ["--url", served.url, "--token", TOKEN]
    result = alertd("silence", "add", 'queue="payments"', 'alertname="QueueBacklog"', "--duration", "2h",
                    "--comment", "deploy", "--author", "alice", *url)
    assert result.exit_code == 0, result.output
    silence_id = result.stdout.strip()
    assert re.fullmatch(r"\S+", silence_id)
    assert re.fullmatch(r'silence active until \S+ \S+ \(in (2h|1h 59m)\): queue="payments", alertname="QueueBacklog"\n',
                        result.stderr), result.stderr

    result = alertd("silence", "list", *url)
    _, found = rows(result.stdout)
    assert [(s["ID"], s["STATUS"], s["CREATED BY"], s["COMMENT"]) for s in found] == [
        (silence_id, "active", "alice", "deploy")]
    assert found[0]["MATCHERS"] == 'queue="payments", alertname="QueueBacklog"'
    assert re.search(r"\(in (2h|1h 59m)\)$", found[0]["ENDS"])  # times are rounded to the second

    _, alerts = rows(alertd("alerts", *url).stdout)
    flags = {(a["ALERT"], a["SUMMARY"].split()[1]): a["FLAGS"] for a in alerts}
    assert flags[("QueueBacklog", "payments")] == "silenced"
    assert flags[("QueueBacklog", "emails")] == ""
    assert flags[("QueueStuck", "payments")] == ""
    backlog = next(a for a in alerts if a["ALERT"] == "QueueBacklog" and "payments" in a["SUMMARY"])
    result = alertd("explain", backlog["FINGERPRINT"], *url)
    assert f"silenced by {silence_id}" in result.stdout

    result = alertd("silence", "expire", silence_id[:8], *url)
    assert result.exit_code == 0, result.output
    assert result.stdout == f'silence {silence_id} expired: queue="payments", alertname="QueueBacklog"\n'
    assert alertd("silence", "list", *url).stdout == "no active or pending silences\n"
    listed = json.loads(alertd("silence", "list", "--status", "expired", "--json", *url).stdout)
    assert [(s["id"], s["status"]) for s in listed["silences"]] == [(silence_id, "expired")]
    _, alerts = rows(alertd("alerts", *url).stdout)
    assert all(a["FLAGS"] == "" for a in alerts)

    result = alertd("silence", "add", 'queue="emails"', "--json", *url)
    created = json.loads(result.stdout)
    assert created["matchers"] == ['queue="emails"'] and created["status"] == "active"
    assert created["ends_at"] - created["starts_at"] == pytest.approx(3600, abs=1)


def test_ack_by_prefix(served: Served) -> None:
    url = ["--url", served.url, "--token", TOKEN]
    firing = json.loads(alertd("alerts", "--state", "firing", "--filter", 'queue="emails"', "--json", *url).stdout)
    fingerprint = firing["alerts"][0]["fingerprint"]

    result = alertd("ack", fingerprint[:6], "--by", "bob", "--comment", "on it", "--duration", "90m", *url)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"acknowledged {fingerprint} (QueueBacklog) as bob, until ")
    assert re.search(r" \(in (1h 30m|1h 29m)\)\n$", result.stdout)

    _, alerts = rows(alertd("alerts", *url).stdout)
    assert next(a for a in alerts if a["FINGERPRINT"] == fingerprint)["FLAGS"] == "acked"
    again = json.loads(alertd("alerts", "--state", "firing", "--filter", 'queue="emails"', "--json", *url).stdout)
    ack = again["alerts"][0]["acknowledgement"]
    assert (ack["by"], ack["comment"]) == ("bob", "on it")
    assert ack["expires_at"] - ack["at"] == pytest.approx(5400, abs=1)
    assert "  acknowledged       yes" in alertd("explain", fingerprint, *url).stdout

    result = alertd("ack", fingerprint, "--json", *url)  # without --by: $USER
    assert json.loads(result.stdout)["fingerprint"] == fingerprint


def test_explain_names_the_receiver_and_what_was_sent(served: Served) -> None:
    alerts = json.loads(alertd("alerts", "--url", served.url, "--json", "--filter", 'queue="payments"',
                               "--state", "firing").stdout)["alerts"]
    fingerprint = alerts[0]["fingerprint"]
    result = alertd("explain", fingerprint[:10], "--url", served.url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (f"{fingerprint} QueueBacklog (firing): console: already notified (first notification); "
                        "repeated after repeat_interval")
    block = {key: value.strip() for key, value in (line.strip().split("  ", 1) for line in lines[3:])}
    assert lines[2].startswith("route 1 of 1: ")
    assert block["receiver"] == "console"
    assert block["group"] == '{alertname="QueueBacklog", queue="payments"}'
    assert block["inhibited by"] == block["silenced by"] == block["muted by"] == block["acknowledged"] == "no"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \((\d+s ago|now)\): first notification, accepted by console",
                        block["last notification"]), block["last notification"]
    assert block["dedup"].startswith("already notified")
    assert re.search(r"\(in (4h|3h 59m)\)$", block["next send"])  # repeat_interval 4h
    assert block["escalation"] == "none"

    data = json.loads(alertd("explain", fingerprint, "--url", served.url, "--json").stdout)
    assert data["fingerprint"] == fingerprint and data["routes"][0]["receiver"] == "console"

    pending = json.loads(alertd("alerts", "--url", served.url, "--json", "--state", "pending").stdout)["alerts"][0]
    result = alertd("explain", pending["fingerprint"], "--url", served.url)
    assert result.stdout.startswith(f"{pending['fingerprint']} QueueStuck (pending): the alert is pending")


def test_fingerprint_prefix_must_be_unique_and_known(served: Served) -> None:
    fingerprints = [a["fingerprint"] for a in json.loads(alertd("alerts", "--url", served.url, "--json").stdout)["alerts"]]
    result = alertd("explain", "zz", "--url", served.url)
    assert result.exit_code == 1
    assert result.stderr == "error: no alert's fingerprint starts with 'zz' (pending, firing or resolved)\n"
    result = alertd("explain", "", "--url", served.url)
    assert result.exit_code == 1 and f"is the start of {len(fingerprints)} fingerprints" in result.stderr
