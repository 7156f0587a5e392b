"""Broker and Pushgateway URLs in, their kind, a password-free form and reusable clients out; client errors in, CollectorError out.

This is the one place where alertd looks inside a broker URL and where errors of redis, kombu/amqp and httpx
become ``CollectorError`` messages a person can act on. No message and no label ever shows a password.
"""

from __future__ import annotations

import contextlib
import errno
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import httpx
import redis
import redis.exceptions as redis_errors
from redis.backoff import NoBackoff
from redis.retry import Retry

from alertd.errors import CollectorError

T = TypeVar("T")

BrokerKind = Literal["redis", "amqp"]

# scheme -> (kind, TLS)
_SCHEMES: dict[str, tuple[BrokerKind, bool]] = {
    "redis": ("redis", False),
    "rediss": ("redis", True),
    "redis+socket": ("redis", False),
    "amqp": ("amqp", False),
    "amqps": ("amqp", True),
    "pyamqp": ("amqp", False),
}
SUPPORTED_SCHEMES = tuple(_SCHEMES)

# Query parameters of a kombu Redis URL that redis-py understands too; the others (kombu's own) are dropped.
_REDIS_CLIENT_QUERY = {"ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname"}
_CERT_REQS = {"CERT_NONE": "none", "CERT_OPTIONAL": "optional", "CERT_REQUIRED": "required"}
_SECRET_QUERY = re.compile(r"pass|secret|token|credential", re.IGNORECASE)


@dataclass(frozen=True)
class BrokerURL:
    """One broker URL, classified. ``display`` is what labels and messages show: the URL without its password."""

    url: str = field(repr=False)
    kind: BrokerKind
    scheme: str
    tls: bool
    host: str
    port: int | None
    username: str | None
    password: str | None = field(repr=False)
    database: str  # Redis db number, AMQP virtual host, or the socket path of redis+socket
    display: str

    @property
    def redis_client_url(self) -> str:
        """The URL as redis-py spells it (``unix://`` for a socket, no kombu-only query parameters)."""
        parts = urlsplit(self.url)
        query = dict(parse_qsl(parts.query))
        auth = ""
        if self.username or self.password:
            auth = quote(self.username or "", safe="") + (":" + quote(self.password, safe="") if self.password else "") + "@"
        if self.scheme == "redis+socket":
            db = query.get("db") or query.get("virtual_host") or "0"
            return f"unix://{auth}{self.database}?db={quote(db)}"
        kept_query = {k: v for k, v in query.items() if k in _REDIS_CLIENT_QUERY}
        if "ssl_cert_reqs" in kept_query:
            # kombu also takes the names of the ssl module's constants; redis-py only none/optional/required.
            value = kept_query["ssl_cert_reqs"]
            kept_query["ssl_cert_reqs"] = _CERT_REQS.get(value.upper(), value)
        kept = urlencode(kept_query)
        host = f"[{self.host}]" if ":" in self.host else self.host
        netloc = f"{auth}{host}" + (f":{self.port}" if self.port else "")
        return urlunsplit((self.scheme, netloc, "/" + self.database, kept, ""))


def classify_broker_url(url: str) -> BrokerURL:
    """Classify a Celery broker URL; raises CollectorError naming the accepted schemes when it is not one."""
    # Celery accepts a failover list "url1;url2": the first one is the one in use until it fails.
    first = url.split(";", 1)[0].strip()
    try:
        parts = urlsplit(first)
        port = parts.port
    except ValueError as exc:
        raise CollectorError(f"invalid broker URL {display_url(first)!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES or "://" not in first:
        raise CollectorError(
            f"unsupported broker URL {display_url(first)!r}: alertd reads Redis and RabbitMQ brokers, "
            f"with URLs starting {', '.join(s + '://' for s in SUPPORTED_SCHEMES)}"
        )
    kind, tls = _SCHEMES[scheme]
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    host = parts.hostname or ("" if scheme == "redis+socket" else "127.0.0.1")
    path = unquote(parts.path)
    if scheme == "redis+socket":
        if not path:
            raise CollectorError(f"invalid broker URL {display_url(first)!r}: redis+socket:// needs a socket path")
        database = path
    elif kind == "redis":
        database = path.lstrip("/") or "0"
        if not database.isdigit():
            raise CollectorError(
                f"invalid broker URL {display_url(first)!r}: the Redis database must be a number, not {database!r}"
            )
        port = port or 6379
    else:
        database = path[1:] if path.startswith("/") else path
        database = database or "/"
        port = port or (5671 if tls else 5672)
    return BrokerURL(first, kind, scheme, tls, host, port, username, password, database, display_url(first))


def display_url(url: str) -> str:
    """The URL without its password (the user name stays), and with secret-looking query values masked."""
    try:
        parts = urlsplit(url)
        hostport = parts.netloc.rsplit("@", 1)[-1]
        user = parts.username
    except ValueError:
        return re.sub(r"://[^@/]*@", "://", url)
    netloc = f"{user}@{hostport}" if user else hostport
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if _SECRET_QUERY.search(k) else v) for k, v in pairs], safe="/")
    if "://" not in url:
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    # Spelled out rather than urlunsplit, which drops the "//" of a URL with no host (redis+socket:///path).
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "") + (
        f"#{parts.fragment}" if parts.fragment else ""
    )


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every occurrence of the secrets (and their URL-encoded forms) replaced by ``***``."""
    for secret in secrets:
        if secret:
            for form in {secret, quote(secret, safe="")}:
                text = text.replace(form, "***")
    return text


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend((e.__cause__, e.__context__))


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def describe_error(exc: BaseException, target: BrokerURL | str, *, timeout: float | None = None) -> CollectorError:
    """Translate an error of redis-py, kombu/py-amqp, httpx or the socket layer into a CollectorError.

    ``target`` is the broker (its display form is shown, never its password) or an HTTP URL.
    """
    if isinstance(exc, CollectorError):
        return exc
    if isinstance(target, BrokerURL):
        where, password = target.display, target.password
    else:
        where, password = display_url(target), urlsplit(target).password
    chain = list(_chain(exc))
    # Only what the client library wrote is scrubbed: ``where`` has no password, and scrubbing it would blank
    # a user name that equals the password (guest:guest).
    text = scrub(_message(exc), password)
    reply_code = getattr(exc, "reply_code", None)

    if isinstance(exc, redis_errors.AuthenticationError) or reply_code == 403:
        if isinstance(target, BrokerURL) and not target.password:
            return CollectorError(f"authentication failed for {where}: the server requires a password and the URL has none")
        return CollectorError(f"authentication failed for {where}: check the user name and password ({text})")
    if reply_code == 530:
        vhost = target.database if isinstance(target, BrokerURL) else "?"
        return CollectorError(f"virtual host {vhost!r} of {where} does not exist or the user may not use it ({text})")
    if isinstance(exc, httpx.HTTPStatusError):
        body = scrub(exc.response.text[:200].strip(), password)
        return CollectorError(f"{where} answered HTTP {exc.response.status_code}" + (f": {body}" if body else ""))
    for e in chain:
        if isinstance(e, ConnectionRefusedError) or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED):
            return CollectorError(f"connection refused by {where}: is the server running and listening there?")
        if isinstance(e, socket.gaierror):
            return CollectorError(f"cannot resolve the host of {where}: {scrub(_message(e), password)}")
        if isinstance(e, FileNotFoundError):
            return CollectorError(f"no socket at {where}: is the server running?")
        if isinstance(e, ssl.SSLError):
            return CollectorError(f"TLS with {where} failed: {scrub(_message(e), password)}")
        if isinstance(e, TimeoutError | redis_errors.TimeoutError | httpx.TimeoutException):
            within = f" within {timeout:g}s" if timeout is not None else ""
            return CollectorError(f"no answer from {where}{within}")
    # redis-py folds the errno into its message ("Error 111 connecting to ...") when it keeps no cause.
    if "Error 111 " in text or "Connection refused" in text:
        return CollectorError(f"connection refused by {where}: is the server running and listening there?")
    if isinstance(exc, redis_errors.InvalidResponse):
        return CollectorError(f"{where} did not answer like a Redis server ({text})")
    if isinstance(exc, redis_errors.ConnectionError | httpx.TransportError | ConnectionError | OSError):
        return CollectorError(f"cannot talk to {where}: {text}")
    if isinstance(exc, redis_errors.ResponseError):
        return CollectorError(f"{where} refused a command: {text}")
    return CollectorError(f"{where}: {type(exc).__name__}: {text}")


class _BlockingConnection:
    """A blocking client, used from threads: made on first use, kept between runs, dropped after a failure.

    ``run`` holds a lock for the whole call: a run that the collector's timeout abandoned may still be
    running in its thread, and neither a kombu connection nor a redis-py pipeline may be shared by two
    threads. A connection error on a client kept from an earlier run is retried once on a new one: the
    server may have restarted or dropped the idle connection, and only a fresh attempt tells whether it is
    down. Every error comes out as a CollectorError.
    """

    def __init__(self, broker: BrokerURL, timeout: float) -> None:
        self.broker = broker
        self.timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def _make(self) -> Any:
        raise NotImplementedError

    def _drop(self, client: Any) -> None:
        raise NotImplementedError

    def _worth_retrying(self, exc: BaseException) -> bool:
        return getattr(exc, "reply_code", None) not in (403, 530)

    @property
    def connected(self) -> bool:
        """Whether a client was made (and not dropped since): its connection has been used before."""
        return self._client is not None

    def run(self, fn: Callable[[Any], T]) -> T:
        """Call ``fn(client)`` in this thread; errors come out as CollectorError and drop the client."""
        if not self._lock.acquire(timeout=self.timeout):
            raise CollectorError(f"an earlier read of {self.broker.display} is still waiting for an answer")
        try:
            for attempt in (1, 2):
                reused = self._client is not None
                try:
                    if self._client is None:
                        self._client = self._make()
                    return fn(self._client)
                except CollectorError:
                    raise
                except Exception as exc:
                    self.reset()
                    if reused and attempt == 1 and self._worth_retrying(exc):
                        continue
                    raise describe_error(exc, self.broker, timeout=self.timeout) from None
            raise AssertionError("unreachable")
        finally:
            self._lock.release()

    def reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            # A broken connection may fail to close: it is dropped either way.
            with contextlib.suppress(Exception):
                self._drop(client)

    def close(self) -> None:
        if self._lock.acquire(timeout=self.timeout):
            try:
                self.reset()
            finally:
                self._lock.release()


class RedisConnection(_BlockingConnection):
    """A redis-py client (blocking: faster than redis.asyncio on long pipelines, and off the event loop).

    redis-py's own retries are off: a run that fails says so at once.
    """

    def _make(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.broker.redis_client_url,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )

    def _drop(self, client: Any) -> None:
        client.close()

    def _worth_retrying(self, exc: BaseException) -> bool:
        return isinstance(exc, redis_errors.ConnectionError | OSError) and not isinstance(
            exc, redis_errors.AuthenticationError
        )


class AmqpConnection(_BlockingConnection):
    """A kombu connection (py-amqp) without heartbeats, with connect, read and write timeouts."""

    def _make(self) -> Any:
        from kombu import Connection

        conn = Connection(
            self.broker.url,
            connect_timeout=self.timeout,
            heartbeat=0,
            transport_options={"read_timeout": self.timeout, "write_timeout": self.timeout},
        )
        try:
            conn.connect()
        except BaseException:
            with contextlib.suppress(Exception):
                conn.release()
            raise
        return conn

    def _drop(self, client: Any) -> None:
        client.release()
