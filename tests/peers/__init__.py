"""Loopback stand-ins for the services alertd notifies: real servers that record requests and answer as documented.

Every HTTP peer is an ``HttpPeer``: a threaded HTTP/1.1 server on 127.0.0.1 and a free port, started with
``start()`` (or ``with``), stopped with ``stop()``; given a ``certificate`` (``tests.peers.tls``), it speaks HTTPS. It records each request (``.requests``) and answers it the
way the service documents, unless ``.script(...)`` queued answers for the next requests::

    with SlackPeer() as slack:
        slack.script(500, Reply(429, "rate_limited", {"Retry-After": "1"}))  # then normal answers again
        ...
        first, second, third = slack.wait_for(3, timeout=5)

``wait_for`` blocks the calling thread; a test whose event loop runs the sender uses ``await
wait_for_async(...)`` instead. Neither sleeps a fixed time: they return as soon as the requests are there.

A misbehaving service: ``delay`` holds every answer back (a slow or, with a long one, a hanging service);
``always`` answers every request not scripted with one reply (a 429 forever); ``throttle(rate, burst)``
enforces a budget as the service does, answering 429 with Retry-After over it. Whatever the answers,
``violations`` counts the requests that came after an answer 429 or 503 with Retry-After had been sent and
before that Retry-After had passed (one sent at the same time as the refused one could not have known).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from tests.peers.tls import Certificate


@dataclass(frozen=True)
class Request:
    """One request as the peer received it."""

    method: str
    path: str  # with the query string
    headers: Mapping[str, str]  # names in lower case
    body: bytes
    time: float  # time.time() when the request had been read

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def json(self) -> Any:
        """The body parsed as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True)
class Reply:
    """One answer: a status, a body (bytes, text, or anything JSON) and headers; ``delay`` holds it back."""

    status: int = 200
    body: Any = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


class HttpPeer:
    """A recording HTTP server; subclasses answer like one service in ``answer``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, certificate: Certificate | None = None) -> None:
        self._address = (host, port)
        self.certificate = certificate
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition()
        self._requests: list[Request] = []
        self._replies: list[Reply | None] = []  # by request index; None until answered
        self._script: deque[Reply | int] = deque()
        self._stopping = threading.Event()  # cuts a delayed answer short when the peer stops
        self.delay = 0.0
        self.always: Reply | None = None
        self._budget: tuple[float, int, float] | None = None  # rate, burst, Retry-After
        self._tokens = 0.0
        self._tokens_at = 0.0
        self._refusals: list[tuple[float, float]] = []  # (answer sent, Retry-After over) of each 429 and 503
        self.violations = 0

    # -- life cycle ----------------------------------------------------------------------------------------

    def start(self) -> Self:
        peer = self
        self._stopping.clear()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real services and httpx's pool expect

            def do_POST(self) -> None:
                peer._serve(self)

            do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the recorded requests are the log

        self._server = _Server(self._address, Handler)
        if self.certificate is not None:
            # The handshake happens in each connection's own thread, at its first read.
            self._server.socket = self.certificate.server_context().wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        # A short poll interval: stop() waits for the serving loop to notice, at most this long.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (a client's pooled keep-alive one too).

        ``start()`` again listens on the same port: a service that went down and came back.
        """
        self._stopping.set()
        if self._server is not None:
            self._address = (self._address[0], self.port)
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return int(self._server.server_address[1])

    @property
    def ca_file(self) -> str:
        """The CA that signed the peer's certificate: what a client trusts."""
        if self.certificate is None:
            raise RuntimeError(f"{type(self).__name__} speaks plain HTTP: it has no certificate")
        return self.certificate.ca_file

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:40123 (https with a certificate; no trailing slash)."""
        return f"{'https' if self.certificate else 'http'}://{self._address[0]}:{self.port}"

    # -- what tests use ------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Every request received so far, oldest first (a copy)."""
        with self._changed:
            return list(self._requests)

    @property
    def exchanges(self) -> list[tuple[Request, Reply | None]]:
        """Each request with the answer it got (None while it is still being answered)."""
        with self._changed:
            return list(zip(self._requests, self._replies, strict=True))

    def script(self, *replies: Reply | int) -> None:
        """Answer the next requests with these, in order (an int is that status with the service's usual body);
        once they are used up the peer answers normally again."""
        with self._changed:
            self._script.extend(replies)

    def throttle(self, rate: float, burst: int = 1, retry_after: float = 1.0) -> None:
        """Accept at most ``rate`` requests per second, ``burst`` at once; answer the others 429 with Retry-After."""
        with self._changed:
            self._budget = (rate, burst, retry_after)
            self._tokens, self._tokens_at = float(burst), time.time()

    def _over_budget(self, now: float) -> Reply | None:
        if self._budget is None:
            return None
        rate, burst, retry_after = self._budget
        self._tokens = min(burst, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        reply = self.canned(429)
        return dataclasses.replace(reply, headers={**reply.headers, "Retry-After": f"{retry_after:g}"})

    def _check_retry_after(self, request: Request) -> None:
        if any(sent <= request.time < until for sent, until in self._refusals):
            self.violations += 1

    def _refused(self, reply: Reply) -> float | None:
        """When a 429 or 503 answer's Retry-After is over, if it has one."""
        value = {k.lower(): v for k, v in reply.headers.items()}.get("retry-after")
        if reply.status in (429, 503) and value is not None:
            try:
                return time.time() + float(value)
            except ValueError:  # an HTTP date
                return email.utils.parsedate_to_datetime(value).timestamp()
        return None

    def reset(self) -> None:
        """Forget the recorded requests and any scripted answers still queued."""
        with self._changed:
            self._requests.clear()
            self._replies.clear()
            self._script.clear()

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[Request]:
        """Block until at least ``count`` requests have been answered; return all requests. TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._answered() >= count, timeout):
                raise TimeoutError(f"{type(self).__name__}: {self._answered()} of {count} requests after {timeout}s")
            return list(self._requests)

    async def wait_for_async(self, count: int = 1, timeout: float = 5.0, interval: float = 0.01) -> list[Request]:
        """``wait_for`` for a test whose own event loop sends the requests: polls without blocking the loop."""
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                answered = self._answered()
                if answered >= count:
                    return list(self._requests)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{type(self).__name__}: {answered} of {count} requests after {timeout}s")
            await asyncio.sleep(interval)

    def _answered(self) -> int:
        return sum(reply is not None for reply in self._replies)

    # -- what subclasses provide ---------------------------------------------------------------------------

    def answer(self, request: Request) -> Reply:
        """The service's own answer to a request that no script covers."""
        return Reply(200, "ok")

    def canned(self, status: int) -> Reply:
        """What the service sends with this status, for ``script(500)`` and the like."""
        return Reply(status, "")

    # -- plumbing ------------------------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        body = _read_body(handler)
        request = Request(
            method=handler.command,
            path=handler.path,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            time=time.time(),
        )
        with self._changed:
            index = len(self._requests)
            self._requests.append(request)
            self._replies.append(None)
            scripted = self._script.popleft() if self._script else None
            limited = self._over_budget(request.time) if scripted is None else None
        if limited is not None:
            reply = limited
        elif scripted is None:
            reply = self.always or self.answer(request)
            if self.delay > reply.delay:
                reply = dataclasses.replace(reply, delay=self.delay)
        elif isinstance(scripted, int):
            reply = self.canned(scripted)
        else:
            reply = scripted
        until = self._refused(reply)
        with self._changed:
            self._check_retry_after(request)
            if index < len(self._replies):  # unless reset() came in between
                self._replies[index] = reply
            self._changed.notify_all()
        if reply.delay:
            self._stopping.wait(reply.delay)  # the peer's own thread: a slow service, not a slow test
        content, content_type = reply.encode()
        try:
            handler.send_response(reply.status)
            headers = {"Content-Type": content_type, **reply.headers}
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(content)))
            handler.end_headers()
            handler.wfile.write(content)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test); nothing to answer
        if until is not None:
            with self._changed:
                self._refusals.append((time.time(), until))


class _Server(ThreadingHTTPServer):
    """A threaded HTTP server that knows its open connections, so that stopping it really cuts them."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""
