"""Alertmanager's API v2 (``/api/v2``) over alertd's alerts and silences, so that amtool, Grafana's
Alertmanager data source and the other tools made for Alertmanager work against alertd unchanged.

Alertmanager's OpenAPI v2 spec is the reference for paths, parameters and JSON shapes:

- Alerts are the firing ones (Alertmanager holds no pending alerts: Prometheus does not send them), from the
  readers' snapshot, filtered and serialized in a worker thread. ``receivers`` are the receivers of the
  routes that take the alert; ``status.state`` is ``suppressed`` when a silence or an inhibition mutes it.
  A firing alert's ``endsAt`` is five minutes ahead, Alertmanager's default ``resolve_timeout``.
- Silences are alertd's own (one store): a silence made here shows in ``/api/v1/silences`` and the
  dashboard, and the reverse.
- ``/status`` shows the route tree in Alertmanager's YAML form, without receivers' settings (they hold
  secrets) and without alertd's own route options.
- Errors are Alertmanager's: a body that is not JSON or has a wrong type is 400 ``{"code": 400, "message"}``,
  a missing field 422 ``{"code": 602, "message"}``, a refused silence 400 with a JSON string.

Alerts cannot be posted here (``POST /api/v2/alerts``): alertd's alerts come from its rules.
"""

from __future__ import annotations

import functools
import logging
import math
import platform
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import yaml
from aiohttp import web
from pydantic import ValidationError

from alertd import __version__
from alertd.dispatch.matchers import Matcher, Matchers, parse_matchers
from alertd.durations import format_duration
from alertd.errors import AlertdError
from alertd.http import api
from alertd.http.bodies import PostableSilence
from alertd.http.snapshot import Snapshot, dumps
from alertd.regex import RegexError, compile_regex
from alertd.state.base import SILENCE_EXPIRED, Silence

if TYPE_CHECKING:
    from alertd.config.model import Config
    from alertd.dispatch.config import RouteConfig
    from alertd.dispatch.route import Route

log = logging.getLogger("alertd.http")
RESOLVE_TIMEOUT = 300.0
# isRegex, isEqual -> operator, and back.
OPERATORS = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}
FLAGS = {op: flags for flags, op in OPERATORS.items()}
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def am_errors(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Handler:
    """alertd's errors as Alertmanager writes its handlers' errors: the status, and the message as a JSON
    string."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except api.HttpError as exc:
            return web.json_response(str(exc), status=exc.status, headers=exc.headers)

    return wrapped


def rfc3339(seconds: float) -> str:
    """``2026-01-02T03:04:05.678Z``, as Alertmanager writes times."""
    whole = math.floor(seconds)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))}.{int((seconds - whole) * 1000):03d}Z"


def flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it; true when absent."""
    text = request.query.get(name)
    if text is None or text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise api.HttpError(400, f"{name}: {text[:50]!r} is not a boolean")


# -- alerts ------------------------------------------------------------------------------------------------


def _receivers(route: Route | None, labels: Mapping[str, str]) -> list[dict[str, str]]:
    if route is None:
        return []
    names = dict.fromkeys(r.options.receiver for r in route.match(labels))
    return [{"name": name} for name in names]


def gettable_alert(view: Mapping[str, Any], route: Route | None, now: float,
                   times: Callable[[float], str] = rfc3339) -> dict[str, Any]:
    """A snapshot's alert view as Alertmanager's ``gettableAlert``."""
    silenced, inhibited = view["silenced_by"], view["inhibited_by"]
    starts = view["fired_at"] or view["active_at"] or now
    alert: dict[str, Any] = {
        "labels": view["labels"],
        "annotations": view["annotations"],
        "startsAt": times(starts),
        "endsAt": times(now + RESOLVE_TIMEOUT),
        "updatedAt": times(view["last_evaluated_at"] or starts),
        "fingerprint": view["fingerprint"],
        "receivers": _receivers(route, view["labels"]),
        "status": {"state": "suppressed" if silenced or inhibited else "active",
                   "silencedBy": list(silenced), "inhibitedBy": list(inhibited), "mutedBy": []},
    }
    if view["generator_url"]:
        alert["generatorURL"] = view["generator_url"]
    return alert


class AlertQuery:
    """The filters of ``GET /api/v2/alerts`` and ``/alerts/groups``, as Alertmanager applies them."""

    def __init__(self, request: web.Request) -> None:
        self.matchers = api.filters(request)
        self.active = flag(request, "active")
        self.silenced = flag(request, "silenced")
        self.inhibited = flag(request, "inhibited")
        self.unprocessed = flag(request, "unprocessed")  # alertd has no unprocessed alerts: nothing to drop
        self.muted = flag(request, "muted")
        pattern = request.query.get("receiver")
        try:
            self.receiver = compile_regex(pattern) if pattern is not None else None
        except RegexError as exc:
            raise api.HttpError(400, f"receiver: {exc}") from exc
        self.key = (tuple(self.matchers.texts()), self.active, self.silenced, self.inhibited, self.muted, pattern)

    def keeps(self, alert: Mapping[str, Any]) -> bool:
        status = alert["status"]
        if not self.active and status["state"] == "active":
            return False
        if not self.silenced and status["silencedBy"]:
            return False
        if not self.inhibited and status["inhibitedBy"]:
            return False
        if not self.matchers.matches(alert["labels"]):
            return False
        receiver = self.receiver
        return receiver is None or any(receiver.fullmatch(r["name"]) for r in alert["receivers"])


class Firing(NamedTuple):
    """A firing alert in Alertmanager's shape, and its JSON: serialized once per snapshot, so that a query
    only filters and joins."""

    alert: dict[str, Any]
    json: bytes


def _firing(snap: Snapshot, route: Route | None, now: float) -> list[Firing]:
    formatted: dict[float, str] = {}  # the alerts of one evaluation share their times

    def times(seconds: float) -> str:
        text = formatted.get(seconds)
        if text is None:
            text = formatted[seconds] = rfc3339(seconds)
        return text

    found = [gettable_alert(v, route, now, times) for v in snap.alerts if v["state"] == "firing"]
    found.sort(key=lambda a: a["fingerprint"])  # Alertmanager's order
    return [Firing(a, dumps(a)) for a in found]


def _array(items: Iterable[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


async def _answer(request: web.Request, key: tuple[Any, ...],
                  make: Callable[[list[Firing]], bytes]) -> web.StreamResponse:
    """A heavy answer from the snapshot, in worker threads: its firing alerts in Alertmanager's shape once per
    snapshot, then ``make(alerts)`` once per snapshot and query."""
    route = _route(request)

    async def work() -> web.StreamResponse:
        snap = await api.snapshots_of(request).current()
        now = api.daemon_of(request).clock.now()
        firing = await snap.cached(("am", id(route)), lambda: _firing(snap, route, now))
        body = await snap.cached(("am", id(route), *key), lambda: make(firing))
        return web.Response(body=body, content_type="application/json")

    return await api.heavy(request, work)


def _route(request: web.Request) -> Route | None:
    pipeline = api.daemon_of(request).pipeline
    return pipeline.route if pipeline is not None else None


@am_errors
async def alerts(request: web.Request) -> web.StreamResponse:
    query = AlertQuery(request)

    def make(firing: list[Firing]) -> bytes:
        return _array(f.json for f in firing if query.keeps(f.alert))

    return await _answer(request, ("alerts", *query.key), make)


@am_errors
async def alert_groups(request: web.Request) -> web.StreamResponse:
    """The aggregation groups the route tree makes of the firing alerts: one per route and group labels."""
    query = AlertQuery(request)
    route = _route(request)

    def make(firing: list[Firing]) -> bytes:
        if route is None:
            return b"[]"
        groups: dict[str, tuple[dict[str, Any], list[Firing]]] = {}
        for f in firing:
            if not query.keeps(f.alert):
                continue
            for taken in route.match(f.alert["labels"]):
                if query.receiver is not None and not query.receiver.fullmatch(taken.options.receiver):
                    continue
                labels = taken.group_labels(f.alert["labels"])
                group = groups.setdefault(taken.group_key(labels), (
                    {"labels": labels, "routeLabels": {}, "receiver": {"name": taken.options.receiver}}, []))
                group[1].append(f)
        # {"labels": ..., "routeLabels": ..., "receiver": ..., "alerts": [...]} with the alerts' JSON as it is.
        return _array(dumps(head)[:-1] + b',"alerts":' + _array(f.json for f in members) + b"}"
                      for head, members in groups.values()
                      if query.muted or any(f.alert["status"]["state"] == "active" for f in members))

    return await _answer(request, ("groups", *query.key), make)


# -- silences ----------------------------------------------------------------------------------------------


def _matchers(silence: Silence) -> list[Matcher]:
    return list(parse_matchers(silence.matchers))


def gettable_silence(silence: Silence, now: float) -> dict[str, Any]:
    return {
        "id": silence.id,
        "status": {"state": silence.status(now)},
        "updatedAt": rfc3339(silence.created_at),
        "matchers": [{"name": m.label, "value": m.value, "isRegex": FLAGS[m.op][0], "isEqual": FLAGS[m.op][1]}
                     for m in _matchers(silence)],
        "startsAt": rfc3339(silence.starts_at),
        "endsAt": rfc3339(silence.ends_at),
        "createdBy": silence.created_by,
        "comment": silence.comment,
        "annotations": {},
    }


_STATE_ORDER = {"active": 0, "pending": 1, "expired": 2}


def _silence_order(silence: Silence, now: float) -> tuple[int, float]:
    """Alertmanager's: active by end, then pending by start, then expired latest first."""
    state = silence.status(now)
    when = {"active": silence.ends_at, "pending": silence.starts_at, "expired": -silence.ends_at}[state]
    return _STATE_ORDER[state], when


def _has_filter_matchers(silence: Silence, wanted: Matchers) -> bool:
    """Alertmanager's silence filter: each filter matcher is one of the silence's, same operator and value."""
    own = {(m.label, m.op, m.value) for m in _matchers(silence)}
    return all((m.label, m.op, m.value) in own for m in wanted.matchers)


@am_errors
async def silences(request: web.Request) -> web.Response:
    wanted = api.filters(request)
    shown = {state for state in ("active", "pending", "expired") if flag(request, state)}
    daemon = api.daemon_of(request)
    now = daemon.clock.now()
    pipeline = daemon.pipeline
    found = [s for s in (pipeline.silences.list() if pipeline is not None else [])
             if s.status(now) in shown and _has_filter_matchers(s, wanted)]
    found.sort(key=lambda s: _silence_order(s, now))
    return web.Response(body=dumps([gettable_silence(s, now) for s in found]), content_type="application/json")


def _schema_error(exc: ValidationError) -> web.Response:
    """go-openapi's answers: 422 with code 602 for a missing field or an empty list, else 400."""
    errors = exc.errors(include_url=False)
    where = ".".join(str(p) for p in errors[0]["loc"]) or "body"
    message = f"{where} in body: {errors[0]['msg']}"
    if errors[0]["type"] in ("missing", "too_short"):
        return web.json_response({"code": 602, "message": message}, status=422)
    return web.json_response({"code": 400, "message": message}, status=400)


def _matcher_texts(body: PostableSilence) -> list[str]:
    texts = []
    for m in body.matchers:
        try:
            texts.append(str(Matcher(m.name, OPERATORS[m.isRegex, m.isEqual], m.value)))  # type: ignore[arg-type]
        except ValueError as exc:
            raise api.HttpError(400, f"invalid silence: invalid label matcher: {exc}") from exc
    return texts


@am_errors
async def post_silence(request: web.Request) -> web.Response:
    """Create a silence, or update the one with ``id``: in place when its matchers are unchanged and it has not
    ended; otherwise the old one is expired and a new one made, as Alertmanager does."""
    daemon = api.daemon_of(request)
    pipeline = daemon.pipeline
    if pipeline is None:
        raise api.HttpError(400, "no notifications are configured ([route] has no receiver): nothing to silence")
    raw = await request.read()
    if not raw.strip():
        return web.json_response({"code": 602, "message": "silence in body is required"}, status=422)
    try:
        body = PostableSilence.model_validate_json(raw)
    except ValidationError as exc:
        return _schema_error(exc)
    now = daemon.clock.now()
    starts, ends = max(body.startsAt.timestamp(), now), body.endsAt.timestamp()
    if ends <= now:
        raise api.HttpError(400, "invalid silence: end time can't be in the past")
    if ends <= starts:
        raise api.HttpError(400, "invalid silence: end time must not be before start time")
    longest = daemon.loaded.config.http.max_silence_duration
    if ends - starts > longest:
        raise api.HttpError(400, "invalid silence: a silence lasts at most [http] max_silence_duration "
                                 f"({format_duration(longest)})")
    texts = _matcher_texts(body)
    keep_id = None
    if body.id:
        old = pipeline.silences.get(body.id)
        if old is None:
            raise api.HttpError(404, f"silence {body.id} not found")
        if old.status(now) != SILENCE_EXPIRED and list(old.matchers) == Matchers.parse(texts).texts():
            keep_id = old.id
        else:
            pipeline.silences.expire(old.id)
    try:
        silence = pipeline.silences.add(texts, starts_at=starts, ends_at=ends, created_by=body.createdBy,
                                        comment=body.comment, id=keep_id)
    except (ValueError, AlertdError) as exc:
        raise api.HttpError(400, f"invalid silence: {exc}") from exc
    api.snapshots_of(request).changed()
    log.info("silence %s %s by %s through the Alertmanager API: %s", silence.id,
             "updated" if keep_id else "created", silence.created_by, ", ".join(silence.matchers))
    return web.json_response({"silenceID": silence.id})


def _silence(request: web.Request) -> tuple[Silence, Any]:
    pipeline = api.daemon_of(request).pipeline
    id = request.match_info["id"]
    silence = pipeline.silences.get(id) if pipeline is not None else None
    if silence is None:
        raise api.HttpError(404, f"silence {id[:100]} not found")
    return silence, pipeline


@am_errors
async def get_silence(request: web.Request) -> web.Response:
    silence, _ = _silence(request)
    return web.json_response(gettable_silence(silence, api.daemon_of(request).clock.now()))


@am_errors
async def delete_silence(request: web.Request) -> web.Response:
    silence, pipeline = _silence(request)
    pipeline.silences.expire(silence.id)
    api.snapshots_of(request).changed()
    log.info("silence %s expired through the Alertmanager API", silence.id)
    return web.Response(status=200)


# -- status and receivers ----------------------------------------------------------------------------------


def _route_yaml(route: RouteConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if route.receiver:
        out["receiver"] = route.receiver
    if route.group_by is not None:
        out["group_by"] = list(route.group_by)
    if route.matchers:
        out["matchers"] = route.matchers.texts()
    if route.continue_:
        out["continue"] = True
    for name in ("group_wait", "group_interval", "repeat_interval"):
        value = getattr(route, name)
        if value is not None:
            out[name] = format_duration(value)
    if route.routes:
        out["routes"] = [_route_yaml(child) for child in route.routes]
    return out


def config_original(config: Config) -> str:
    """The route tree, the receivers' names and the inhibit rules, in Alertmanager's configuration form."""
    data: dict[str, Any] = {"route": _route_yaml(config.route)}
    data["receivers"] = [{"name": name} for name in config.receivers]
    if config.inhibit_rules:
        data["inhibit_rules"] = [{"source_matchers": r.source_matchers.texts(),
                                  "target_matchers": r.target_matchers.texts(), "equal": list(r.equal)}
                                 for r in config.inhibit_rules]
    text: str = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return text


@am_errors
async def status(request: web.Request) -> web.Response:
    daemon = api.daemon_of(request)
    return web.json_response({
        "cluster": {"name": "", "status": "disabled", "peers": []},
        "versionInfo": {"version": __version__, "revision": "", "branch": "", "buildUser": "", "buildDate": "",
                        "goVersion": f"python{platform.python_version()}"},
        "config": {"original": config_original(daemon.loaded.config)},
        "uptime": rfc3339(daemon.counters.started),
    })


@am_errors
async def receivers(request: web.Request) -> web.Response:
    names: Iterable[str] = api.daemon_of(request).loaded.config.receivers
    return web.json_response([{"name": name} for name in names])


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/api/v2/status", status),
    ("GET", "/api/v2/receivers", receivers),
    ("GET", "/api/v2/alerts", alerts),
    ("GET", "/api/v2/alerts/groups", alert_groups),
    ("GET", "/api/v2/silences", silences),
    ("POST", "/api/v2/silences", post_silence),
    ("GET", "/api/v2/silence/{id}", get_silence),
    ("DELETE", "/api/v2/silence/{id}", delete_silence),
]
