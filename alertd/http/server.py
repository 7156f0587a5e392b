"""The HTTP server: the routes, the guard (alertd/http/guard.py) in front of them, JSON errors, optional TLS,
served by aiohttp on the daemon's own event loop."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from alertd.config.model import HttpSettings
from alertd.http import alertmanager, api
from alertd.http.bodies import MAX_BODY_BYTES
from alertd.http.dashboard import STYLE, render_dashboard
from alertd.http.guard import Guard
from alertd.http.openapi import openapi
from alertd.http.snapshot import Snapshots

if TYPE_CHECKING:
    from alertd.daemon.core import Daemon

log = logging.getLogger("alertd.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except api.HttpError as exc:
        return web.json_response({"error": str(exc)}, status=exc.status, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": exc.reason}, status=exc.status)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": "internal error (see alertd's log)"}, status=500)


async def _dashboard(request: web.Request) -> web.StreamResponse:
    async def work() -> web.StreamResponse:
        page = await render_dashboard(api.daemon_of(request), await api.snapshots_of(request).current())
        return web.Response(text=page, content_type="text/html")

    return await api.heavy(request, work)


async def _alert_link(request: web.Request) -> web.StreamResponse:
    """Where notifications' links (generatorURL) point: the alert, for now as the API shows it."""
    raise web.HTTPFound(f"/api/v1/alerts/{request.match_info['fingerprint']}")


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi())


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/", _dashboard),
    ("GET", "/alerts/{fingerprint}", _alert_link),
    ("GET", "/-/healthy", api.healthy),
    ("GET", "/-/ready", api.ready),
    ("POST", "/-/reload", api.reload),
    ("GET", "/health/celery", api.health_celery),
    ("GET", "/metrics", api.metrics),
    ("GET", "/api/v1/openapi.json", _openapi),
    ("GET", "/api/v1/status", api.status),
    ("GET", "/api/v1/alerts", api.alerts),
    ("GET", "/api/v1/alerts/{fingerprint}", api.alert),
    ("POST", "/api/v1/alerts/{fingerprint}/ack", api.ack),
    ("GET", "/api/v1/alerts/{fingerprint}/explain", api.explain),
    ("GET", "/api/v1/silences", api.silences),
    ("POST", "/api/v1/silences", api.create_silence),
    ("DELETE", "/api/v1/silences/{id}", api.expire_silence),
    *alertmanager.ROUTES,
]


def build_app(daemon: Daemon, settings: HttpSettings) -> web.Application:
    guard = Guard(
        token=settings.token, external_url=daemon.loaded.config.external_url,
        allowed_hosts=settings.allowed_hosts, listen_host=settings.listen.rpartition(":")[0].strip("[]"),
        html_styles=[STYLE], refused=daemon.metrics.http_refused,
    )
    app = web.Application(middlewares=[json_errors, guard.middleware], client_max_size=MAX_BODY_BYTES)
    app.on_response_prepare.append(guard.add_headers)
    app[api.DAEMON] = daemon
    app[api.SNAPSHOTS] = Snapshots(daemon)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    return app


class HttpServer:
    def __init__(self, runner: web.AppRunner, url: str) -> None:
        self.runner = runner
        self.url = url

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_http_server(daemon: Daemon, settings: HttpSettings) -> HttpServer:
    host, _, port = settings.listen.rpartition(":")
    host = host.strip("[]")
    context = None
    if settings.tls_cert and settings.tls_key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(daemon.loaded.resolve(settings.tls_cert), daemon.loaded.resolve(settings.tls_key))
    runner = web.AppRunner(build_app(daemon, settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, int(port), ssl_context=context)
    await site.start()
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else int(port)
    shown = f"[{host}]" if ":" in host else host
    return HttpServer(runner, f"{'https' if context else 'http'}://{shown}:{bound}")
