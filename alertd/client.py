"""A client of a running alertd's HTTP API (``/api/v1``): one method per call, one ``ApiError`` for every failure.

``resolve_target`` decides where to connect and with which token: the ``--url`` and ``--token`` options (or
``ALERTD_URL`` and ``ALERTD_TOKEN``), else the configuration file's ``[http]`` section (``listen``, ``token``
with its ``${ENV}`` and ``token_file`` forms, ``https`` when ``tls_cert`` is set). Only ``[http]`` is read: a
receiver's secret that is not set on the operator's machine does not stop ``alertd alerts``.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from alertd.errors import AlertdError, ConfigError, ConfigErrors

DEFAULT_TIMEOUT = 10.0
ALERT_STATES = ("pending", "firing", "resolved")


class ApiError(AlertdError):
    """A call that failed: the server's ``{"error"}`` message and HTTP status, or why it could not be made
    (``status`` None: the server could not be reached, or the answer was not alertd's)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message if self.status is None else f"{self.message} (HTTP {self.status})"


@dataclass(frozen=True)
class Target:
    """Where to connect: the base URL, the bearer token and how to verify the server's certificate."""

    url: str
    token: str | None = None
    verify: bool | ssl.SSLContext = True
    via: str = "--url"  # why this address: said in every error about reaching it


def _connect_host(host: str) -> str:
    """The address to connect to for a ``listen`` host: a wildcard address means this machine."""
    host = host.strip("[]")
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]" if ":" in host else host


def read_http_settings(config_path: str | Path) -> Any:
    """The ``[http]`` section of a configuration file, with ``${ENV}`` and ``token_file`` substituted.

    Returns ``alertd.config.model.HttpSettings``; raises ConfigError naming the file and line.
    """
    from alertd.config.model import Config, HttpSettings
    from alertd.config.secrets import model_secrecy, substitute
    from alertd.sources import Document, load_document, validation_errors

    doc = load_document(config_path)
    section = doc.data.get("http") or {}
    if not isinstance(section, dict):
        raise ConfigError("[http] must be a table", file=doc.path, line=doc.line_of(("http",)), field="http")
    only_http = Document(doc.path, {"http": section}, doc.lines)
    data, _references = substitute(only_http, lambda loc: model_secrecy(Config, loc))
    try:
        return HttpSettings.model_validate(data["http"])
    except ValidationError as exc:
        raise ConfigErrors(validation_errors(exc, only_http, base=("http",))) from None


def _trusting(cert_file: str) -> ssl.SSLContext | bool:
    """The system's trusted certificates plus ``cert_file`` (a self-signed server certificate is its own CA)."""
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cert_file)
    except (OSError, ssl.SSLError):  # not readable here, or not PEM: the system's store alone
        return True
    return context


def resolve_target(
    config_path: str | Path,
    *,
    url: str | None = None,
    token: str | None = None,
    insecure: bool = False,
    ca: str | None = None,
    config_required: bool = False,
) -> Target:
    """Where to connect: ``url`` and ``token`` when given, else the configuration's ``[http]``.

    A missing configuration file means the defaults (``http://127.0.0.1:9464``, no token) unless
    ``config_required`` (the file was named on the command line). With neither ``insecure`` nor ``ca``, an
    address taken from a configuration with ``tls_cert`` trusts that certificate besides the system's CAs.
    """
    verify: bool | ssl.SSLContext = True
    if insecure:
        verify = False
    elif ca is not None:
        try:
            verify = ssl.create_default_context(cafile=ca)
        except (OSError, ssl.SSLError) as exc:
            raise ApiError(f"--ca {ca}: not a PEM certificate file ({exc})") from None
    if url is not None and token is not None:
        return Target(url.rstrip("/"), token or None, verify)
    settings = None
    if config_required or Path(config_path).exists():
        settings = read_http_settings(config_path)
    via = "--url or ALERTD_URL"
    if url is None:
        if settings is None:
            url = "http://127.0.0.1:9464"
            via = f"the default: there is no {config_path} here; give -c FILE or --url"
        else:
            via = f"[http] listen in {config_path}"
            if not settings.enabled:
                raise ConfigError("[http] enabled = false: this alertd serves no API", file=str(config_path))
            host, _, port = settings.listen.rpartition(":")
            if port == "0":
                raise ConfigError(f"[http] listen = {settings.listen!r} picks a free port at start: give --url",
                                  file=str(config_path))
            url = f"{'https' if settings.tls_cert else 'http'}://{_connect_host(host)}:{port}"
            if settings.tls_cert and verify is True:
                cert = Path(settings.tls_cert)
                verify = _trusting(str(cert if cert.is_absolute() else Path(config_path).parent / cert))
    if token is None and settings is not None:
        token = settings.token
    return Target(url.rstrip("/"), token or None, verify, via)


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _why_unreachable(exc: httpx.TransportError) -> str:
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or cause.reason or "the certificate is not trusted"
            return (f"TLS certificate verification failed ({reason}) — give --ca FILE (the server's certificate "
                    "or its CA) or --insecure")
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed ({cause.reason or cause}) — does it serve HTTPS? ([http] tls_cert)"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused — is `alertd run` running?"
        if isinstance(cause, socket.gaierror):
            return f"unknown host ({cause.strerror or cause})"
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused — is `alertd run` running?"
    return text or type(exc).__name__


class AlertdClient:
    """A running alertd's API over HTTP. Every method returns the server's JSON or raises ApiError."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        verify: bool | ssl.SSLContext = True,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        via: str = "",
    ) -> None:
        self.url = url.rstrip("/")
        self.via = via
        self.timeout = timeout
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, verify=verify, timeout=timeout,
                                  transport=transport, follow_redirects=False)

    @classmethod
    def for_target(cls, target: Target, *, timeout: float = DEFAULT_TIMEOUT) -> AlertdClient:
        return cls(target.url, target.token, verify=target.verify, timeout=timeout, via=target.via)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AlertdClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, params: Any = None, json: Any = None) -> Any:
        """One call; the decoded JSON answer, or ApiError with the server's message and status."""
        try:
            response = self._http.request(method, path, params=params, json=json)
        except httpx.TimeoutException as exc:
            raise ApiError(f"alertd at {self.url} did not answer within {self.timeout:g}s") from exc
        except httpx.RemoteProtocolError as exc:
            raise ApiError(f"alertd at {self.url} closed the connection without answering "
                           "(if it serves HTTPS, use an https:// URL)") from exc
        except httpx.TransportError as exc:
            where = f"{self.url} ({self.via})" if self.via else self.url
            raise ApiError(f"cannot reach alertd at {where}: {_why_unreachable(exc)}") from exc
        except httpx.HTTPError as exc:  # an invalid URL, too many redirects
            raise ApiError(f"{method} {self.url}{path}: {exc}") from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            if isinstance(data, dict) and isinstance(data.get("error"), str):
                message = data["error"]
            else:
                message = f"{method} {path} failed: {response.reason_phrase or 'error'}"
            if response.status_code == 401:
                message += " — give --token, set ALERTD_TOKEN, or set [http] token in the configuration"
            raise ApiError(message, response.status_code)
        if data is None:
            raise ApiError(f"{self.url}{path} did not answer with JSON: is it alertd?", response.status_code)
        return data

    # -- alerts ------------------------------------------------------------------------------------------------

    def alerts(self, states: Sequence[str] = (), filters: Sequence[str] = ()) -> list[dict[str, Any]]:
        """``GET /api/v1/alerts``: the alerts in ``states`` (default pending and firing) matching every filter."""
        params: dict[str, list[str]] = {}
        if states:
            params["state"] = list(states)
        if filters:
            params["filter"] = list(filters)
        return list(self.request("GET", "/api/v1/alerts", params=params)["alerts"])

    def alert(self, fingerprint: str) -> dict[str, Any]:
        """``GET /api/v1/alerts/{fingerprint}``: one alert with its ``history``."""
        return dict(self.request("GET", f"/api/v1/alerts/{fingerprint}"))

    def ack(self, fingerprint: str, *, by: str, comment: str = "", duration: str | None = None) -> dict[str, Any]:
        """``POST /api/v1/alerts/{fingerprint}/ack``: acknowledge (for ``duration``, like "2h", or until resolved)."""
        body: dict[str, Any] = {"by": by, "comment": comment}
        if duration:
            body["duration"] = duration
        return dict(self.request("POST", f"/api/v1/alerts/{fingerprint}/ack", json=body))

    def explain(self, fingerprint: str) -> dict[str, Any]:
        """``GET /api/v1/alerts/{fingerprint}/explain``: why it did or did not notify, per route."""
        return dict(self.request("GET", f"/api/v1/alerts/{fingerprint}/explain"))

    def find_alert(self, fingerprint: str) -> dict[str, Any]:
        """The alert (from the list, in any state) whose fingerprint is ``fingerprint`` or starts with it."""
        found = self.alerts(states=ALERT_STATES)
        exact = [a for a in found if a["fingerprint"] == fingerprint]
        matches = exact or [a for a in found if a["fingerprint"].startswith(fingerprint)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise ApiError(f"no alert's fingerprint starts with {fingerprint!r} (pending, firing or resolved)")
        names = ", ".join(f"{a['fingerprint']} ({a['labels'].get('alertname', '?')})" for a in matches[:5])
        raise ApiError(f"{fingerprint!r} is the start of {len(matches)} fingerprints ({names}): give more of it")

    # -- silences ----------------------------------------------------------------------------------------------

    def silences(self, status: str | None = None) -> list[dict[str, Any]]:
        """``GET /api/v1/silences``: every silence, or those with ``status`` (active, pending or expired)."""
        params = {"status": status} if status else {}
        return list(self.request("GET", "/api/v1/silences", params=params)["silences"])

    def add_silence(
        self,
        matchers: Sequence[str],
        *,
        duration: str | None = None,
        ends_at: float | None = None,
        starts_at: float | None = None,
        created_by: str,
        comment: str = "",
    ) -> dict[str, Any]:
        """``POST /api/v1/silences``: a new silence for ``duration`` (like "2h") or until ``ends_at``."""
        body: dict[str, Any] = {"matchers": list(matchers), "created_by": created_by, "comment": comment}
        if duration is not None:
            body["duration"] = duration
        if ends_at is not None:
            body["ends_at"] = ends_at
        if starts_at is not None:
            body["starts_at"] = starts_at
        return dict(self.request("POST", "/api/v1/silences", json=body))

    def expire_silence(self, silence_id: str) -> dict[str, Any]:
        """``DELETE /api/v1/silences/{id}``: end a silence now."""
        return dict(self.request("DELETE", f"/api/v1/silences/{silence_id}"))

    def find_silence(self, silence_id: str) -> dict[str, Any]:
        """The silence whose id is ``silence_id`` or starts with it."""
        found = self.silences()
        exact = [s for s in found if s["id"] == silence_id]
        matches = exact or [s for s in found if s["id"].startswith(silence_id)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise ApiError(f"no silence's id starts with {silence_id!r}")
        raise ApiError(f"{silence_id!r} is the start of {len(matches)} silence ids: give more of it")
