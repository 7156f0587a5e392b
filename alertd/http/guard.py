"""Who may talk to the HTTP server, and what every answer tells the browser.

- The ``Host`` allow-list (against DNS rebinding): a host *name* is served only when it is a loopback name,
  the host of ``external_url`` or one of ``[http] allowed_hosts``; an IP literal is always served, since a
  rebinding page can only reach alertd under a name of its own.
- Cross-site checks on every call that changes something (against CSRF): a browser's ``Sec-Fetch-Site`` must
  be ``same-origin`` or ``none``, an ``Origin`` must be alertd's own, and a body must be JSON, which no form
  and no preflight-free ``fetch`` can send to another origin.
- The bearer token, or loopback only when no token is configured.
- Security headers on every answer: no sniffing, no framing, no referrer, and a strict Content-Security-Policy.

docs/security.md holds the threat model that these answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import Counter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
SAFE_FETCH_SITES = frozenset({"same-origin", "none"})
JSON_TYPES = frozenset({"application/json"})
REFUSALS = ("host", "cross-site", "origin", "content-type", "token", "remote")


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None


def loopback(peer: str | None) -> bool:
    address = _ip(peer) if peer else None
    return address is not None and address.is_loopback


def host_name(host: str) -> str:
    """``Host``/netloc without the port, brackets or trailing dot, lowercased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def style_hash(css: str) -> str:
    """The CSP source that allows exactly this inline ``<style>`` block."""
    digest = hashlib.sha256(css.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


class Guard:
    """The checks above, for one server: ``middleware`` and ``add_headers`` go on the aiohttp application."""

    def __init__(self, *, token: str | None, external_url: str, allowed_hosts: Iterable[str],
                 listen_host: str, html_styles: Iterable[str], refused: Counter) -> None:
        self.expected = f"Bearer {token}".encode() if token else None
        external = urlsplit(external_url)
        names = {host_name(h) for h in allowed_hosts} | LOOPBACK_NAMES
        if external.hostname:
            names.add(host_name(external.hostname))
        if listen_host and _ip(listen_host) is None:
            names.add(host_name(listen_host))
        self.any_host = "*" in names
        self.names = frozenset(names)
        self.external_origin = f"{external.scheme}://{external.netloc}".lower() if external.netloc else None
        styles = " ".join(style_hash(css) for css in html_styles)
        self.html_csp = (f"default-src 'none'; style-src {styles}; img-src 'self'; connect-src 'self'; "
                         "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        self.refused = refused
        for reason in REFUSALS:
            refused.labels(reason)

    def host_allowed(self, host: str | None) -> bool:
        if host is None or self.any_host:
            return True
        name = host_name(host)
        return _ip(name) is not None or name in self.names

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        origin = origin.strip().lower()
        if self.external_origin is not None and origin == self.external_origin:
            return True
        parts = urlsplit(origin)
        return bool(host) and parts.scheme in ("http", "https") and parts.netloc == (host or "").lower()

    def _refuse(self, reason: str, status: int, message: str, **headers: str) -> web.Response:
        self.refused.labels(reason).inc()
        return web.json_response({"error": message}, status=status, headers=headers or None)

    def check(self, request: web.Request) -> web.Response | None:
        """None when the request may go on, else the answer that refuses it."""
        host = request.headers.get("Host")
        if not self.host_allowed(host):
            return self._refuse("host", 421, f"host {host_name(host or '')!r} is not served here: add it to "
                                "[http] allowed_hosts (or set external_url) if it is really alertd's name")
        if request.method not in MUTATING:
            return None
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site.lower() not in SAFE_FETCH_SITES:
            return self._refuse("cross-site", 403, f"a {site} request cannot change anything here")
        origin = request.headers.get("Origin")
        if origin is not None and not self.origin_allowed(origin, host):
            return self._refuse("origin", 403, f"origin {origin[:200]!r} cannot change anything here")
        if request.body_exists and request.content_type not in JSON_TYPES:
            return self._refuse("content-type", 415, "send the body as Content-Type: application/json")
        if self.expected is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, self.expected):
                return self._refuse("token", 401, "this call needs Authorization: Bearer <[http] token>",
                                    **{"WWW-Authenticate": "Bearer"})
        elif not loopback(request.remote):
            return self._refuse("remote", 403,
                                "calls that change something are taken from loopback only: configure [http] token")
        return None

    @property
    def middleware(self) -> Middleware:
        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            refused = self.check(request)
            return refused if refused is not None else await handler(request)

        return guard

    async def add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        html = (response.content_type or "").startswith("text/html")
        headers.setdefault("Content-Security-Policy",
                           self.html_csp if html else "default-src 'none'; frame-ancestors 'none'")
        if request.path.startswith("/api/"):
            headers.setdefault("Cache-Control", "no-store")
