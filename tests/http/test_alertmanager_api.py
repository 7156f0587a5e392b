"""Alertmanager's API v2 on alertd's server, over real loopback sockets: answers validated against
Alertmanager's own OpenAPI v2 spec (vendored in tests/http/alertmanager/ with its licence), and Debian's
``amtool`` (package prometheus-alertmanager) run against the daemon, with the effect checked in alertd's own API."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from alertd.daemon import Daemon
from tests.http.test_api import (
    TOKEN,
    auth,
    served,  # noqa: F401 - the fixture
)
from tests.services import require_binary

SPEC = Path(__file__).parent / "alertmanager" / "openapi.yaml"


@cache
def definitions() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(SPEC.read_text())
    return spec["definitions"]  # type: ignore[no-any-return]


def valid(data: Any, definition: str) -> Any:
    """``data`` when it is an Alertmanager ``definition`` (dates as RFC 3339, URIs as URIs); fails otherwise."""
    import jsonschema  # imported when first used: a large import, that only these tests need

    schema = {"definitions": definitions(), "$ref": f"#/definitions/{definition}"}
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(data)
    return data


def when(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def am_silence(*matchers: dict[str, Any], hours: float = 1, **extra: Any) -> dict[str, Any]:
    return {"matchers": list(matchers), "startsAt": when(), "endsAt": when(hours=hours), "createdBy": "ann",
            "comment": "deploy", **extra}


PAYMENTS = {"name": "queue", "value": "payments", "isRegex": False, "isEqual": True}


async def test_alerts_groups_status_and_receivers_follow_alertmanagers_spec(
    served: tuple[Daemon, str],  # noqa: F811
) -> None:
    _, url = served
    async with httpx.AsyncClient(base_url=url) as c:
        alerts = valid((await c.get("/api/v2/alerts")).json(), "gettableAlerts")
        # Firing alerts only: QueueSlow is pending, and Alertmanager never holds pending alerts.
        assert sorted(a["labels"]["queue"] for a in alerts) == ["<script>alert(1)</script>", "payments"]
        assert {a["labels"]["alertname"] for a in alerts} == {"QueueDeep"}
        assert [a["fingerprint"] for a in alerts] == sorted(a["fingerprint"] for a in alerts)
        one = next(a for a in alerts if a["labels"]["queue"] == "payments")
        assert one["annotations"]["summary"] == "queue payments holds 50.0"
        assert one["receivers"] == [{"name": "console"}]
        assert one["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": [], "mutedBy": []}
        assert one["startsAt"] <= one["updatedAt"] < one["endsAt"]

        async def fingerprints(**params: Any) -> list[str]:
            response = await c.get("/api/v2/alerts", params=params)
            assert response.status_code == 200, response.text
            return [a["fingerprint"] for a in valid(response.json(), "gettableAlerts")]

        assert await fingerprints(filter='queue="payments"') == [one["fingerprint"]]
        assert await fingerprints(filter=["alertname=QueueDeep", 'queue=~"pay.*"']) == [one["fingerprint"]]
        assert await fingerprints(receiver="cons.*") != []
        assert await fingerprints(receiver="cons") == []  # anchored, as Alertmanager's
        assert await fingerprints(active="false") == []
        assert len(await fingerprints(silenced="false", inhibited="0", unprocessed="f")) == 2

        groups = valid((await c.get("/api/v2/alerts/groups")).json(), "alertGroups")
        assert sorted(g["labels"]["queue"] for g in groups) == ["<script>alert(1)</script>", "payments"]
        assert all(g["receiver"] == {"name": "console"} and len(g["alerts"]) == 1 for g in groups)
        assert all(g["labels"] == {"alertname": "QueueDeep", "queue": g["alerts"][0]["labels"]["queue"]}
                   for g in groups)

        status = valid((await c.get("/api/v2/status")).json(), "alertmanagerStatus")
        assert status["cluster"]["status"] == "disabled"
        route = yaml.safe_load(status["config"]["original"])
        assert route["route"]["receiver"] == "console" and route["route"]["group_by"] == ["alertname", "queue"]
        assert route["receivers"] == [{"name": "console"}] and "pages.log" not in status["config"]["original"]
        receivers = (await c.get("/api/v2/receivers")).json()
        assert receivers == [{"name": "console"}]
        for receiver in receivers:
            valid(receiver, "receiver")

        for bad in ("/api/v2/alerts?active=maybe", "/api/v2/alerts?filter=queue", "/api/v2/alerts?receiver=(",
                    "/api/v2/alerts/groups?muted=2", "/api/v2/silences?filter=%7B"):
            response = await c.get(bad)
            assert response.status_code == 400 and isinstance(response.json(), str), bad


async def test_silences_are_alertds_own_both_ways(
    served: tuple[Daemon, str],  # noqa: F811
) -> None:
    daemon, url = served
    async with httpx.AsyncClient(base_url=url, headers=auth()) as c:
        made = await c.post("/api/v2/silences", json=am_silence(PAYMENTS))
        assert made.status_code == 200, made.text
        sid = made.json()["silenceID"]
        ours = (await c.get("/api/v1/silences")).json()["silences"]
        assert [(s["id"], s["matchers"], s["created_by"]) for s in ours] == [(sid, ['queue="payments"'], "ann")]
        payments = (await c.get("/api/v1/alerts", params={"filter": 'queue="payments"', "state": "firing"})).json()
        assert payments["alerts"][0]["silenced_by"] == [sid]
        alerts = valid((await c.get("/api/v2/alerts")).json(), "gettableAlerts")
        silenced = [a for a in alerts if a["status"]["silencedBy"]]
        assert [(a["labels"]["queue"], a["status"]["state"], a["status"]["silencedBy"]) for a in silenced] == [
            ("payments", "suppressed", [sid])]
        assert len((await c.get("/api/v2/alerts", params={"silenced": "false"})).json()) == 1
        assert len((await c.get("/api/v2/alerts", params={"active": "false"})).json()) == 1
        unmuted = valid((await c.get("/api/v2/alerts/groups", params={"muted": "false"})).json(), "alertGroups")
        assert [g["labels"]["queue"] for g in unmuted] == ["<script>alert(1)</script>"]

        # One made through alertd's own API shows here, with Alertmanager's matcher flags.
        v1 = (await c.post("/api/v1/silences", json={"matchers": ['queue=~"x.*"', 'team!~"db|web"'], "duration": "2h",
                                                     "created_by": "bob"})).json()
        got = valid((await c.get(f"/api/v2/silence/{v1['id']}")).json(), "gettableSilence")
        assert got["matchers"] == [{"name": "queue", "value": "x.*", "isRegex": True, "isEqual": True},
                                   {"name": "team", "value": "db|web", "isRegex": True, "isEqual": False}]
        listed = valid((await c.get("/api/v2/silences")).json(), "gettableSilences")
        assert [s["id"] for s in listed] == [sid, v1["id"]]  # active ones, the earliest end first
        only = (await c.get("/api/v2/silences", params={"filter": 'queue="payments"'})).json()
        assert [s["id"] for s in only] == [sid]

        # Same matchers: updated in place. Other matchers: the old one expires and a new id is returned.
        longer = await c.post("/api/v2/silences", json=am_silence(PAYMENTS, hours=3, id=sid, comment="longer"))
        assert longer.json() == {"silenceID": sid}
        assert daemon.pipeline is not None and daemon.pipeline.silences.get(sid).comment == "longer"  # type: ignore[union-attr]
        other = {**PAYMENTS, "value": "pay.*", "isRegex": True}
        moved = (await c.post("/api/v2/silences", json=am_silence(other, id=sid))).json()["silenceID"]
        assert moved != sid
        assert (await c.get(f"/api/v2/silence/{sid}")).json()["status"]["state"] == "expired"

        assert (await c.delete(f"/api/v2/silence/{moved}")).status_code == 200
        assert (await c.get("/api/v1/silences", params={"status": "active"})).json()["silences"] == [
            {**v1, "status": "active"}]
        assert (await c.get("/api/v2/silences", params={"expired": "false", "active": "false"})).json() == []
        for method in ("GET", "DELETE"):
            assert (await c.request(method, "/api/v2/silence/nope")).status_code == 404


async def test_malformed_silences_are_refused_as_alertmanager_does(
    served: tuple[Daemon, str],  # noqa: F811
) -> None:
    daemon, url = served
    huge = {**PAYMENTS, "value": "x" * 1_001}
    cases: list[tuple[Any, int]] = [
        (b"{not json", 400),
        ({**am_silence(PAYMENTS), "startsAt": "yesterday"}, 400),
        ({**am_silence(PAYMENTS), "endsAt": "2026-01-02T03:04:05"}, 400),  # no time zone
        ({**am_silence(PAYMENTS), "matchers": "queue=payments"}, 400),
        ({**am_silence(PAYMENTS), "createdBy": 7}, 400),
        (am_silence({"name": "queue", "value": "payments"}), 422),  # isRegex is required
        ({k: v for k, v in am_silence(PAYMENTS).items() if k != "endsAt"}, 422),
        (am_silence(), 422),  # no matcher
        (None, 422),  # no body
        ({**am_silence(PAYMENTS), "startsAt": when(hours=2), "endsAt": when(hours=1)}, 400),
        ({**am_silence(PAYMENTS), "startsAt": when(hours=-2), "endsAt": when(hours=-1)}, 400),
        (am_silence(PAYMENTS, hours=24 * 366), 400),  # beyond [http] max_silence_duration
        (am_silence({**PAYMENTS, "value": "(", "isRegex": True}), 400),
        (am_silence({**PAYMENTS, "name": "0queue"}), 400),
        (am_silence({"name": "queue", "value": ".*", "isRegex": True, "isEqual": True}), 400),  # silences all
        (am_silence(huge), 400),
        (am_silence(*[PAYMENTS] * 51), 400),
        (am_silence(PAYMENTS, id="not-a-silence"), 404),
    ]
    async with httpx.AsyncClient(base_url=url, headers=auth()) as c:
        for body, status in cases:
            content = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
            response = await c.post("/api/v2/silences", content=content,
                                    headers={"Content-Type": "application/json"})
            assert response.status_code == status, (body, response.text)
            answer = response.json()
            if status == 422:
                assert answer["code"] == 602 and answer["message"], body
            elif isinstance(answer, dict):
                assert answer["code"] == 400 and answer["message"], body
            else:
                assert isinstance(answer, str) and answer, body
        assert (await c.get("/api/v2/silences")).json() == []
    assert daemon.pipeline is not None and daemon.pipeline.silences.list() == []

    async with httpx.AsyncClient(base_url=url) as c:  # the guard stands in front of /api/v2 as of the rest
        refused = await c.post("/api/v2/silences", json=am_silence(PAYMENTS))
        assert refused.status_code == 401
        assert (await c.delete("/api/v2/silence/x")).status_code == 401
        cross = await c.post("/api/v2/silences", json=am_silence(PAYMENTS),
                             headers={**auth(), "Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403
    assert daemon.pipeline.silences.list() == []


# -- amtool ------------------------------------------------------------------------------------------------


@pytest.fixture
def amtool(served: tuple[Daemon, str], tmp_path: Path) -> Iterator[Any]:  # noqa: F811 - the fixture
    """Runs Debian's amtool against the served daemon, configured as docs/alertmanager.md says: the URL in
    amtool's configuration file (Debian's amtool reads ~/.config/prometheus/amtool.yml), the bearer token in
    the HTTP configuration file it names."""
    binary = require_binary("amtool")
    _, url = served
    home = tmp_path / "home"
    http_config = home / "amtool-http.yml"
    (home / ".config" / "prometheus").mkdir(parents=True)
    http_config.write_text(yaml.safe_dump({"authorization": {"type": "Bearer", "credentials": TOKEN}}))
    (home / ".config" / "prometheus" / "amtool.yml").write_text(
        yaml.safe_dump({"alertmanager.url": url, "http.config.file": str(http_config)}))

    async def run(*args: str, ok: bool = True) -> str:
        done = await asyncio.to_thread(subprocess.run, [binary, *args], capture_output=True, text=True,
                                       timeout=30, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
        if ok:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
            return done.stdout
        assert done.returncode != 0, (args, done.stdout)
        return done.stderr

    yield run


async def test_amtool_queries_alerts_and_manages_silences(served: tuple[Daemon, str], amtool: Any,  # noqa: F811
                                                          tmp_path: Path) -> None:
    daemon, url = served
    listed = await amtool("alert", "query", "-o", "json")
    assert sorted(a["labels"]["queue"] for a in json.loads(listed)) == ["<script>alert(1)</script>", "payments"]
    simple = await amtool("alert", "query", "queue=payments")
    assert "QueueDeep" in simple and "queue payments holds 50.0" in simple and "script" not in simple

    sid = (await amtool("silence", "add", "queue=payments", "--duration=1h", "--author=ann",
                        "--comment=deploy")).strip()
    assert len(sid) == 32, sid
    async with httpx.AsyncClient(base_url=url) as c:
        alert = (await c.get("/api/v1/alerts", params={"filter": 'queue="payments"', "state": "firing"})).json()
        assert alert["alerts"][0]["silenced_by"] == [sid]
        assert [s["id"] for s in (await c.get("/api/v1/silences")).json()["silences"]] == [sid]
    assert "payments" not in await amtool("alert", "query")  # amtool hides silenced alerts by default
    assert "payments" in await amtool("alert", "query", "--silenced")

    table = await amtool("silence", "query")
    assert sid in table and "ann" in table and "deploy" in table and 'queue="payments"' in table
    assert (await amtool("silence", "query", "-q")).split() == [sid]

    exported = await amtool("silence", "query", "-o", "json")
    await amtool("silence", "expire", sid)
    assert daemon.pipeline is not None
    expired = daemon.pipeline.silences.get(sid)
    assert expired is not None and expired.status(daemon.clock.now()) == "expired"
    assert (await amtool("silence", "query", "-q")).split() == []
    assert "payments" in await amtool("alert", "query")

    # import: the exported silence's id is expired, so alertd makes a new silence with the same matchers.
    dump = tmp_path / "silences.json"
    dump.write_text(exported)
    await amtool("silence", "import", str(dump))
    active = daemon.pipeline.silences.list("active")
    assert [(s.matchers, s.created_by, s.comment) for s in active] == [(('queue="payments"',), "ann", "deploy")]
    assert active[0].id != sid

    show = await amtool("config", "show")
    assert "receiver: console" in show
    assert "default-route  receiver: console" in await amtool("config", "routes")  # parsed as Alertmanager's
    assert (await amtool("config", "routes", "test", "queue=payments")).split() == ["console"]
    assert "Cluster Status:  disabled" in await amtool("cluster", "show")
    refused = await amtool("silence", "add", "queue=~.*", "--duration=1h", "--comment=x", ok=False)
    assert "match every alert" in refused, refused  # alertd's message, passed on by amtool
    assert len(daemon.pipeline.silences.list("active")) == 1
