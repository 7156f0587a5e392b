"""The JSON API's handlers (``/api/v1``), ``/-/reload`` and the health endpoints.

Every handler reads the daemon's parts at request time: a reload replaces them. Every error is JSON
``{"error": "..."}`` with a fitting status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from alertd import __version__
from alertd.dispatch.matchers import Matchers
from alertd.durations import format_duration, parse_duration
from alertd.errors import AlertdError
from alertd.http.bodies import (
    MAX_FILTERS,
    MAX_MATCHER_CHARS,
    MAX_PAGE,
    AckBody,
    Body,
    SilenceBody,
    parse_body,
)
from alertd.http.health import celery_health
from alertd.http.snapshot import Busy, Snapshot, Snapshots, dumps
from alertd.http.views import find_alert, silence_view
from alertd.models import AlertState

if TYPE_CHECKING:
    from alertd.daemon.core import Daemon

log = logging.getLogger("alertd.http")
DAEMON: web.AppKey[Daemon] = web.AppKey("daemon")


SNAPSHOTS: web.AppKey[Snapshots] = web.AppKey("snapshots")


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


def daemon_of(request: web.Request) -> Daemon:
    return request.app[DAEMON]


def snapshots_of(request: web.Request) -> Snapshots:
    return request.app[SNAPSHOTS]


async def heavy(request: web.Request, work: Callable[[], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """A heavy answer (a list of every alert, the dashboard) in the line that bounds them."""
    try:
        return await snapshots_of(request).heavy(work)
    except Busy:
        raise HttpError(503, "too many readers at once: try again in a second", {"Retry-After": "1"}) from None


def json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def body(request: web.Request, model: type[Body]) -> Body:
    try:
        return parse_body(model, await request.read())
    except ValueError as exc:
        raise HttpError(400, str(exc)) from exc


def duration(value: str, field: str, request: web.Request) -> float:
    """A duration from a request, up to ``[http] max_silence_duration``."""
    longest = daemon_of(request).loaded.config.http.max_silence_duration
    try:
        seconds = parse_duration(value)
    except (ValueError, AlertdError) as exc:
        raise HttpError(400, f"{field}: {exc}") from exc
    if not 0 < seconds <= longest:
        raise HttpError(400, f"{field}: {value} is not between 0 and [http] max_silence_duration "
                             f"({format_duration(longest)})")
    return seconds


# -- health ------------------------------------------------------------------------------------------------


async def healthy(request: web.Request) -> web.Response:
    return json({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    if not daemon.first_collection_done.is_set():
        return json({"status": "starting"}, 503)
    trouble = daemon.state_write_error()
    if trouble is not None:  # pages still go out; a restart now would lose what was not saved
        return json({"status": "degraded", "reason": trouble}, 503)
    return json({"status": "ready"})


async def health_celery(request: web.Request) -> web.Response:
    report = celery_health(daemon_of(request))
    return json(report, 200 if report["status"] == "healthy" else 503)


async def metrics(request: web.Request) -> web.Response:
    data = generate_latest(daemon_of(request).metrics.registry)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def reload(request: web.Request) -> web.Response:
    result = await daemon_of(request).reload("HTTP")
    snapshots_of(request).changed()
    return json(result.as_dict(), 200 if result.ok else 400)


# -- alerts ------------------------------------------------------------------------------------------------


def _states(request: web.Request) -> set[AlertState]:
    names = request.query.getall("state", ["pending", "firing"])
    try:
        return {AlertState(name) for name in names}
    except ValueError as exc:
        raise HttpError(400, f"state: {exc}; use pending, firing or resolved") from exc


def filters(request: web.Request) -> Matchers:
    texts = request.query.getall("filter", [])
    if len(texts) > MAX_FILTERS or any(len(t) > MAX_MATCHER_CHARS for t in texts):
        raise HttpError(400, f"filter: at most {MAX_FILTERS} filters of {MAX_MATCHER_CHARS} characters each")
    try:
        return Matchers.parse(texts)
    except (ValueError, AlertdError) as exc:
        raise HttpError(400, f"filter: {exc}") from exc


def _int(request: web.Request, name: str, default: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not 0 <= int(text) <= high:
        raise HttpError(400, f"{name}: a whole number from 0 to {high}")
    return int(text)


async def alerts(request: web.Request) -> web.StreamResponse:
    """From the readers' snapshot: filtered, paged and serialized in a worker thread."""
    matchers = filters(request)
    states = _states(request)
    offset = _int(request, "offset", 0, 10**9)
    limit = _int(request, "limit", MAX_PAGE, MAX_PAGE)

    def select(snap: Snapshot) -> bytes:
        found = [a for a in snap.of_states(states) if matchers.matches(a["labels"])]
        return dumps({"alerts": found[offset:offset + limit], "total": len(found)})

    async def work() -> web.StreamResponse:
        snap = await snapshots_of(request).current()
        key = ("alerts", frozenset(states), tuple(matchers.texts()), offset, limit)
        return web.Response(body=await snap.cached(key, lambda: select(snap)), content_type="application/json")

    return await heavy(request, work)


def _alert(request: web.Request) -> dict[str, Any]:
    fp = request.match_info["fingerprint"]
    found = find_alert(daemon_of(request), fp)
    if found is None:
        raise HttpError(404, f"no alert with fingerprint {fp}")
    return found


async def alert(request: web.Request) -> web.Response:
    found = _alert(request)
    history = daemon_of(request).state.history(found["fingerprint"])
    found["history"] = [
        {"at": t.at, "from": t.from_state.value, "to": t.to_state.value, "value": t.value} for t in history
    ]
    return json(found)


def _pipeline(request: web.Request) -> Any:
    pipeline = daemon_of(request).pipeline
    if pipeline is None:
        raise HttpError(409, "no notifications are configured ([route] has no receiver)")
    return pipeline


async def ack(request: web.Request) -> web.Response:
    found = _alert(request)
    pipeline = _pipeline(request)
    data = await body(request, AckBody)
    expires = time.time() + duration(data.duration, "duration", request) if data.duration else None
    got = pipeline.acks.ack(found["fingerprint"], by=data.by, comment=data.comment, expires_at=expires)
    snapshots_of(request).changed()
    told = await pipeline.acknowledged(found["fingerprint"], data.by, data.comment)
    log.info("alert %s acknowledged by %s; %d receiver(s) told", found["fingerprint"], data.by, told)
    return json({"fingerprint": got.fingerprint, "by": got.by, "comment": got.comment, "at": got.at,
                 "expires_at": got.expires_at, "notified": told})


async def explain(request: web.Request) -> web.Response:
    found = _alert(request)
    daemon = daemon_of(request)
    pipeline = daemon.pipeline
    if pipeline is None:
        return json({"fingerprint": found["fingerprint"], "state": found["state"], "routes": [],
                     "summary": "no notifications are configured ([route] has no receiver)"})
    from alertd.http.explain import explain_alert

    return json(explain_alert(daemon, pipeline, found))


# -- silences ----------------------------------------------------------------------------------------------


async def silences(request: web.Request) -> web.Response:
    pipeline = _pipeline(request)
    status = request.query.get("status")
    if status not in (None, "active", "pending", "expired"):
        raise HttpError(400, "status: use active, pending or expired")
    now = daemon_of(request).clock.now()
    return json({"silences": [silence_view(s, now) for s in pipeline.silences.list(status)]})


async def create_silence(request: web.Request) -> web.Response:
    pipeline = _pipeline(request)
    data = await body(request, SilenceBody)
    now = daemon_of(request).clock.now()
    starts = data.starts_at
    if data.ends_at is not None:
        ends = data.ends_at
        longest = daemon_of(request).loaded.config.http.max_silence_duration
        if ends - (starts or now) > longest:
            raise HttpError(400, f"ends_at: a silence lasts at most [http] max_silence_duration "
                                 f"({format_duration(longest)})")
    else:
        assert data.duration is not None
        ends = (starts or now) + duration(data.duration, "duration", request)
    if ends <= now:
        raise HttpError(400, "ends_at: the silence would already be over")
    try:
        silence = pipeline.silences.add(data.matchers, ends_at=ends, starts_at=starts,
                                        created_by=data.created_by, comment=data.comment)
    except (ValueError, AlertdError) as exc:
        raise HttpError(400, str(exc)) from exc
    snapshots_of(request).changed()
    log.info("silence %s created by %s: %s", silence.id, silence.created_by, ", ".join(silence.matchers))
    return json(silence_view(silence, daemon_of(request).clock.now()), 201)


async def expire_silence(request: web.Request) -> web.Response:
    pipeline = _pipeline(request)
    id = request.match_info["id"]
    if pipeline.silences.get(id) is None:
        raise HttpError(404, f"no silence with id {id}")
    silence = pipeline.silences.expire(id)
    snapshots_of(request).changed()
    log.info("silence %s expired", id)
    return json(silence_view(silence, daemon_of(request).clock.now()))


async def status(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    last = daemon.last_reload
    return json({
        "version": __version__,
        "started_at": daemon.counters.started,
        "ready": daemon.first_collection_done.is_set(),
        "config": {"path": daemon.loaded.path, "rules": len(daemon.engine.rules.rules),
                   "last_reload": last.as_dict() if last is not None else None},
        **{k: v for k, v in celery_health(daemon).items() if k in ("broker", "workers", "queues")},
    })
