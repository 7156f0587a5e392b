"""``alertd alerts``, ``silence add|list|expire``, ``ack`` and ``explain``: clients of a running alertd's API.

Where to connect: ``--url``, else ``ALERTD_URL``, else the configuration's ``[http] listen``; the token:
``--token``, else ``ALERTD_TOKEN``, else ``[http] token``. Tables for people, ``--json`` for scripts. Exit
status: 0 done, 1 the call failed (one line on stderr), 2 a usage error.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import click
from click.core import ParameterSource

from alertd.cli import config_option, main

if TYPE_CHECKING:
    from alertd.client import AlertdClient

ALERT_STATES = ("pending", "firing", "resolved")
SILENCE_STATUSES = ("active", "pending", "expired")


@dataclass(frozen=True)
class Connection:
    """The connection options of one command, turned into a client on demand."""

    config_path: str
    config_named: bool
    url: str | None
    token: str | None
    insecure: bool
    ca: str | None
    timeout: float

    def client(self) -> AlertdClient:
        from alertd.client import AlertdClient, resolve_target

        target = resolve_target(self.config_path, url=self.url, token=self.token, insecure=self.insecure,
                                ca=self.ca, config_required=self.config_named)
        return AlertdClient.for_target(target, timeout=self.timeout)


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(1)


def api_command(fn: Callable[..., None]) -> Callable[..., None]:
    """The options every API command takes (config, url, token, TLS, timeout, --json); ``fn`` gets ``conn``.

    An ApiError or ConfigError becomes one line on stderr and exit status 1.
    """
    from alertd.errors import AlertdError

    @functools.wraps(fn)
    def wrapper(*args: Any, config_path: str, url: str | None, token: str | None, insecure: bool,
                ca: str | None, timeout: float, **kwargs: Any) -> None:
        source = click.get_current_context().get_parameter_source("config_path")
        conn = Connection(config_path, source not in (ParameterSource.DEFAULT, None), url, token, insecure, ca,
                          timeout)
        try:
            fn(*args, conn=conn, **kwargs)
        except AlertdError as exc:
            _fail(str(exc))

    options = [
        config_option,
        click.option("--url", envvar="ALERTD_URL", show_envvar=True, default=None,
                     help="alertd's address, like http://127.0.0.1:9464 (default: from [http] listen)"),
        click.option("--token", envvar="ALERTD_TOKEN", show_envvar=True, default=None,
                     help="bearer token for calls that change something (default: [http] token)"),
        click.option("--insecure", is_flag=True, help="do not verify the server's TLS certificate"),
        click.option("--ca", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="PEM file of the CA (or self-signed certificate) to verify the server with"),
        click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
                     help="seconds to wait for an answer"),
        click.option("--json", "as_json", is_flag=True, help="print the API's JSON instead of text"),
    ]
    decorated: Callable[..., None] = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _user() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in a container
        return "unknown"


def _check_duration(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from alertd.durations import parse_duration

    if value is not None:
        try:
            parse_duration(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def _check_matchers(ctx: click.Context, param: click.Parameter, value: Sequence[str]) -> Sequence[str]:
    from alertd.dispatch.matchers import parse_matcher

    for text in value:
        try:
            parse_matcher(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def _list(values: Any) -> list[str]:
    """A mute reason from the API (a string, a list of them or null) as a list."""
    if not values:
        return []
    if isinstance(values, str):
        return [values]
    return [str(v) for v in values]


def _labels(labels: Mapping[str, str], skip: Sequence[str] = ()) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k not in skip)


# -- alertd alerts -------------------------------------------------------------------------------------------


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def alert_flags(alert: Mapping[str, Any]) -> str:
    """The markers of the alerts table: silenced, inhibited, acked."""
    flags = [name for name, on in (("silenced", alert.get("silenced_by")), ("inhibited", alert.get("inhibited_by")),
                                   ("acked", alert.get("acknowledgement"))) if on]
    return ",".join(flags)


def alerts_table(alerts: Sequence[Mapping[str, Any]], *, wide: bool = False, now: float | None = None) -> str:
    """The alerts as ``alertd alerts`` prints them; AGE is the time in the current state."""
    from alertd.tables import age_since, format_table

    header = ["FINGERPRINT", "STATE", "SEVERITY", "ALERT", "AGE", "VALUE", "FLAGS", "SUMMARY"]
    if wide:
        header.insert(-1, "LABELS")
    rows = []
    for a in alerts:
        since = {"firing": a.get("fired_at"), "resolved": a.get("resolved_at")}.get(a["state"]) or a.get("active_at")
        row = [a["fingerprint"], a["state"], a.get("severity") or "", a["labels"].get("alertname", ""),
               age_since(since, now), _number(a.get("value")), alert_flags(a)]
        if wide:
            row.append(_labels(a["labels"], skip=("alertname", "severity")))
        row.append(" ".join(str(a.get("annotations", {}).get("summary", "")).split()))
        rows.append(row)
    return format_table(header, rows)


@main.command()
@click.option("--state", "states", multiple=True, type=click.Choice(ALERT_STATES),
              help="only alerts in this state (repeatable; default: pending and firing)")
@click.option("--filter", "filters", multiple=True, callback=_check_matchers, metavar="MATCHER",
              help="""only alerts whose labels match, like 'queue="payments"' or 'severity=~"crit.*"' (repeatable)""")
@click.option("-w", "--wide", is_flag=True, help="add a LABELS column with the other labels")
@api_command
def alerts(conn: Connection, as_json: bool, states: tuple[str, ...], filters: tuple[str, ...], wide: bool) -> None:
    """The alerts of a running alertd: fingerprint, state, severity, name, age, value, silenced or acked, summary."""
    wanted = list(states) or ["pending", "firing"]
    with conn.client() as client:
        found = client.alerts(wanted, filters)
    if as_json:
        _print_json({"alerts": found})
    elif not found:
        click.echo(f"no {' or '.join(wanted)} alerts" + (" match the filters" if filters else ""))
    else:
        click.echo(alerts_table(found, wide=wide))


# -- alertd silence ------------------------------------------------------------------------------------------


@main.group()
def silence() -> None:
    """Silences: mute the alerts whose labels match, until the silence ends."""


def silences_table(silences: Sequence[Mapping[str, Any]], *, now: float | None = None) -> str:
    from alertd.tables import format_table, local_time, relative_time

    rows = [[s["id"], s["status"], ", ".join(s["matchers"]), local_time(s.get("starts_at")),
             relative_time(s.get("ends_at"), now), s.get("created_by") or "", " ".join(str(s.get("comment", "")).split())]
            for s in silences]
    return format_table(["ID", "STATUS", "MATCHERS", "STARTS", "ENDS", "CREATED BY", "COMMENT"], rows)


@silence.command("add", short_help="Silence the alerts that match MATCHERS; prints the new id.")
@click.argument("matchers", nargs=-1, required=True, callback=_check_matchers)
@click.option("-d", "--duration", default="1h", show_default=True, callback=_check_duration,
              help="how long from now (or from --start), like 30m, 2h or 1d")
@click.option("--comment", default="", help="why, for whoever reads the silence list")
@click.option("--author", default=None, help="who silences (default: $USER)")
@api_command
def silence_add(conn: Connection, as_json: bool, matchers: tuple[str, ...], duration: str, comment: str,
                author: str | None) -> None:
    """Silence every alert whose labels match all MATCHERS, like 'alertname="QueueBacklog"' 'queue="payments"'.

    Prints the new silence's id (and, on stderr, until when it runs).
    """
    from alertd.tables import relative_time

    with conn.client() as client:
        created = client.add_silence(matchers, duration=duration, created_by=author or _user(), comment=comment)
    if as_json:
        _print_json(created)
        return
    click.echo(created["id"])
    click.echo(f"silence {created['status']} until {relative_time(created['ends_at'])}: "
               f"{', '.join(created['matchers'])}", err=True)


@silence.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(SILENCE_STATUSES),
              help="only silences with this status (repeatable; default: active and pending)")
@click.option("-a", "--all", "everything", is_flag=True, help="every silence, expired ones too")
@api_command
def silence_list(conn: Connection, as_json: bool, statuses: tuple[str, ...], everything: bool) -> None:
    """The silences: id, status, matchers, start, end, author, comment."""
    wanted = SILENCE_STATUSES if everything else (statuses or ("active", "pending"))
    with conn.client() as client:
        if len(wanted) == 1:
            found = client.silences(wanted[0])
        else:
            found = [s for s in client.silences() if s["status"] in wanted]
    if as_json:
        _print_json({"silences": found})
    elif not found:
        click.echo(f"no {' or '.join(wanted)} silences")
    else:
        click.echo(silences_table(found))


@silence.command("expire")
@click.argument("silence_ids", nargs=-1, required=True, metavar="ID...")
@api_command
def silence_expire(conn: Connection, as_json: bool, silence_ids: tuple[str, ...]) -> None:
    """End silences now (by id, or a unique start of one)."""
    expired = []
    with conn.client() as client:
        for given in silence_ids:
            found = client.expire_silence(client.find_silence(given)["id"])
            expired.append(found)
            if not as_json:
                click.echo(f"silence {found['id']} {found['status']}: {', '.join(found['matchers'])}")
    if as_json:
        _print_json(expired[0] if len(expired) == 1 else {"silences": expired})


# -- alertd ack ----------------------------------------------------------------------------------------------


@main.command()
@click.argument("fingerprint")
@click.option("--comment", default="", help="what is being done about it")
@click.option("-d", "--duration", default=None, callback=_check_duration,
              help="the acknowledgement ends after this, like 2h (default: when the alert resolves)")
@click.option("--by", default=None, help="who acknowledges (default: $USER)")
@api_command
def ack(conn: Connection, as_json: bool, fingerprint: str, comment: str, duration: str | None,
        by: str | None) -> None:
    """Acknowledge an alert (by fingerprint, or a unique start of one): its escalation stops."""
    from alertd.tables import relative_time

    with conn.client() as client:
        alert = client.find_alert(fingerprint)
        got = client.ack(alert["fingerprint"], by=by or _user(), comment=comment, duration=duration)
    if as_json:
        _print_json(got)
        return
    until = f"until {relative_time(got['expires_at'])}" if got.get("expires_at") else "until it resolves"
    click.echo(f"acknowledged {got['fingerprint']} ({alert['labels'].get('alertname', '?')}) as {got['by']}, {until}")


# -- alertd explain ------------------------------------------------------------------------------------------


def explain_text(explained: Mapping[str, Any], alert: Mapping[str, Any] | None = None,
                 *, now: float | None = None) -> str:
    """An explanation as ``alertd explain`` prints it: the summary sentence, then one block per route."""
    from alertd.tables import relative_time

    name = alert["labels"].get("alertname", "?") if alert else None
    title = f"{explained['fingerprint']}{' ' + name if name else ''} ({explained['state']})"
    lines = [f"{title}: {explained['summary']}"]
    routes = explained.get("routes") or []
    for i, r in enumerate(routes, 1):
        last = r.get("last_notification")
        if last:
            sent = (f"{relative_time(last.get('at'), now)}: {last.get('reason', '')}, {last.get('status', '')}"
                    f" by {last.get('receiver', r['receiver'])}")
        else:
            sent = "none"
        fields = [
            ("receiver", r["receiver"]),
            ("group", "{" + _labels(r.get("group_labels") or {}) + "}"),
            ("inhibited by", ", ".join(_list(r.get("inhibited_by"))) or "no"),
            ("silenced by", ", ".join(_list(r.get("silenced_by"))) or "no"),
            ("muted by", ", ".join(_list(r.get("muted_by"))) or "no"),
            ("acknowledged", "yes" if r.get("acknowledged") else "no"),
            ("last notification", sent),
            ("dedup", r.get("dedup") or ""),
            ("next send", relative_time(r.get("next_send_at"), now) or "none scheduled"),
            ("escalation", r.get("escalation") or "none"),
        ]
        width = max(len(k) for k, _ in fields)
        lines += ["", f"route {i} of {len(routes)}: {r.get('route', '')}"]
        lines += [f"  {k.ljust(width)}  {v}" for k, v in fields]
    return "\n".join(lines)


@main.command()
@click.argument("fingerprint")
@api_command
def explain(conn: Connection, as_json: bool, fingerprint: str) -> None:
    """Why an alert did or did not notify: per route its receiver, group, mutes, last notification and next send."""
    with conn.client() as client:
        alert = client.find_alert(fingerprint)
        explained = client.explain(alert["fingerprint"])
    if as_json:
        _print_json(explained)
    else:
        click.echo(explain_text(explained, alert))
