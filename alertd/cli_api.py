"""``alertd alerts``, ``silence``, ``ack`` and ``explain``: clients of a running alertd's HTTP API.

Where to connect: ``--url``, else ``ALERTD_URL``, else the configuration's ``[http] listen``; the token:
``--token``, else ``ALERTD_TOKEN``, else ``[http] token``. Tables for people, ``--json`` for scripts.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import click
import httpx

from alertd.cli import config_option, main
from alertd.http.dashboard import age


class ApiError(Exception):
    pass


class Client:
    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = httpx.request(method, self.url + path, headers=self.headers, timeout=10, **kwargs)
        except httpx.ConnectError as exc:
            raise ApiError(f"cannot reach alertd at {self.url}: {exc} (is `alertd run` running?)") from exc
        except httpx.HTTPError as exc:
            raise ApiError(f"{method} {self.url}{path}: {exc}") from exc
        try:
            data = response.json()
        except ValueError:
            data = {"error": response.text[:200]}
        if response.status_code >= 400:
            raise ApiError(f"alertd answered {response.status_code}: {data.get('error', data)}")
        return data


def _client(config_path: str, url: str | None, token: str | None) -> Client:
    if url is None or token is None:
        try:
            from alertd.config import load_config

            http = load_config(config_path).config.http
        except Exception:  # no usable config file: the defaults
            from alertd.config.model import HttpSettings

            http = HttpSettings()
        if url is None:
            url = f"{'https' if http.tls_cert else 'http'}://{http.listen}"
        if token is None:
            token = http.token
    return Client(url, token)


def api_options(fn: Callable[..., None]) -> Callable[..., None]:
    fn = click.option("--json", "as_json", is_flag=True, help="print the API's JSON")(fn)
    fn = click.option("--token", envvar="ALERTD_TOKEN", default=None, help="bearer token (default: [http] token)")(fn)
    fn = click.option("--url", envvar="ALERTD_URL", default=None, help="alertd's address (default: [http] listen)")(fn)
    return config_option(fn)


def _run(config_path: str, url: str | None, token: str | None, as_json: bool,
         call: Callable[[Client], Any], show: Callable[[Any], str]) -> None:
    try:
        data = call(_client(config_path, url, token))
    except ApiError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(json.dumps(data, indent=2) if as_json else show(data))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in [header, *rows])


def _when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _alerts_table(data: Any) -> str:
    now = time.time()
    rows = []
    for a in data["alerts"]:
        marks = ",".join(m for m, on in (("silenced", a["silenced_by"]), ("inhibited", a["inhibited_by"]),
                                          ("acked", a["acknowledgement"])) if on)
        since = a["fired_at"] if a["state"] == "firing" else a["active_at"]
        value = "" if a["value"] is None else f"{a['value']:.4g}"
        rows.append((a["fingerprint"][:12], a["state"], a["severity"], a["labels"].get("alertname", ""),
                     age(since, now), value, marks, a["annotations"].get("summary", "")))
    if not rows:
        return "no alerts"
    return table(("FINGERPRINT", "STATE", "SEVERITY", "ALERT", "AGE", "VALUE", "MARKS", "SUMMARY"), rows)


def _resolve(client: Client, fingerprint: str) -> str:
    """A full fingerprint from a unique prefix (as the table prints them)."""
    found = client.call("GET", "/api/v1/alerts", params={"state": ["pending", "firing", "resolved"]})["alerts"]
    matches = [a["fingerprint"] for a in found if a["fingerprint"].startswith(fingerprint)]
    if len(matches) != 1:
        raise ApiError(f"{len(matches)} alerts match {fingerprint!r}: give more of the fingerprint")
    return str(matches[0])


@main.command()
@api_options
@click.option("--state", "states", multiple=True, type=click.Choice(["pending", "firing", "resolved"]),
              help="only alerts in this state (repeatable; default pending and firing)")
@click.option("--filter", "filters", multiple=True, help='label matcher, like \'queue=~"pay.*"\' (repeatable)')
def alerts(config_path: str, url: str | None, token: str | None, as_json: bool, states: tuple[str, ...],
           filters: tuple[str, ...]) -> None:
    """The alerts of a running alertd."""
    params = {"state": list(states) or ["pending", "firing"], "filter": list(filters)}
    _run(config_path, url, token, as_json, lambda c: c.call("GET", "/api/v1/alerts", params=params), _alerts_table)


@main.group()
def silence() -> None:
    """Silences: mute the alerts that match label matchers until they expire."""


def _silences_table(data: Any) -> str:
    rows = [(s["id"], s["status"], ", ".join(s["matchers"]), _when(s["ends_at"]), s["created_by"], s["comment"])
            for s in data["silences"]]
    return table(("ID", "STATUS", "MATCHERS", "ENDS", "BY", "COMMENT"), rows) if rows else "no silences"


@silence.command("add")
@api_options
@click.argument("matchers", nargs=-1, required=True)
@click.option("--duration", default="1h", show_default=True, help='how long, like "2h"')
@click.option("--comment", default="", help="why")
@click.option("--author", default=None, help="who (default: your user name)")
def silence_add(config_path: str, url: str | None, token: str | None, as_json: bool, matchers: tuple[str, ...],
                duration: str, comment: str, author: str | None) -> None:
    """Silence the alerts that match every MATCHER (like 'alertname="QueueBacklog"')."""
    body = {"matchers": list(matchers), "duration": duration, "comment": comment,
            "created_by": author or getpass.getuser()}
    _run(config_path, url, token, as_json, lambda c: c.call("POST", "/api/v1/silences", json=body),
         lambda s: f"silence {s['id']} {s['status']} until {_when(s['ends_at'])}")


@silence.command("list")
@api_options
@click.option("--status", type=click.Choice(["active", "pending", "expired"]), default=None)
def silence_list(config_path: str, url: str | None, token: str | None, as_json: bool, status: str | None) -> None:
    """The silences."""
    params = {"status": status} if status else {}
    _run(config_path, url, token, as_json, lambda c: c.call("GET", "/api/v1/silences", params=params),
         _silences_table)


@silence.command("expire")
@api_options
@click.argument("id")
def silence_expire(config_path: str, url: str | None, token: str | None, as_json: bool, id: str) -> None:
    """End the silence ID now."""
    _run(config_path, url, token, as_json, lambda c: c.call("DELETE", f"/api/v1/silences/{id}"),
         lambda s: f"silence {s['id']} {s['status']}")


@main.command()
@api_options
@click.argument("fingerprint")
@click.option("--comment", default="")
@click.option("--duration", default=None, help='the acknowledgement expires after this, like "2h"')
@click.option("--by", default=None, help="who (default: your user name)")
def ack(config_path: str, url: str | None, token: str | None, as_json: bool, fingerprint: str, comment: str,
        duration: str | None, by: str | None) -> None:
    """Acknowledge an alert (by its fingerprint or a unique prefix): its escalation stops."""
    body: dict[str, Any] = {"by": by or getpass.getuser(), "comment": comment}
    if duration:
        body["duration"] = duration

    def call(c: Client) -> Any:
        return c.call("POST", f"/api/v1/alerts/{_resolve(c, fingerprint)}/ack", json=body)

    _run(config_path, url, token, as_json, call, lambda a: f"alert {a['fingerprint'][:12]} acknowledged by {a['by']}")


def _explain_text(data: Any) -> str:
    lines = [f"{data['fingerprint'][:12]} ({data['state']}): {data['summary']}"]
    for r in data["routes"]:
        last = r["last_notification"]
        lines += [
            f"  receiver {r['receiver']}, group {r['group_key']}",
            f"    muted: {(r['silenced_by'] and 'silence ' + r['silenced_by']) or r['inhibited_by'] or r['muted_by'] or 'no'}"
            f"{', acknowledged' if r['acknowledged'] else ''}",
            f"    last notification: {_when(last['at']) + ' (' + last['reason'] + ')' if last else 'none'}",
            f"    next: {r['dedup']}" + (f", at {_when(r['next_send_at'])}" if r["next_send_at"] else ""),
        ]
    return "\n".join(lines)


@main.command()
@api_options
@click.argument("fingerprint")
def explain(config_path: str, url: str | None, token: str | None, as_json: bool, fingerprint: str) -> None:
    """Why an alert did or did not notify: route, group, inhibition, silence, dedup, next send."""
    _run(config_path, url, token, as_json,
         lambda c: c.call("GET", f"/api/v1/alerts/{_resolve(c, fingerprint)}/explain"), _explain_text)
