"""A real SMTP server on loopback (aiosmtpd): STARTTLS, implicit TLS or plain, with AUTH; mail in, recorded.

``SmtpPeer(tls="starttls")`` listens on 127.0.0.1 and a free port with a certificate for 127.0.0.1/localhost
signed by the test CA of ``tests.peers.tls`` (``ca_file`` is what a client trusts); it requires STARTTLS before
anything else and AUTH (``username``/``password``) before MAIL. ``tls="implicit"`` speaks TLS from the first
byte, ``tls="none"`` never. ``script("451 4.3.0 Try again later")`` answers the next DATA with that;
``refuse`` names recipients answered ``550`` at RCPT.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import secrets
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Literal, Self, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.peers.tls import Certificate, shared_certificate

TlsMode = Literal["starttls", "implicit", "none"]


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    time: float
    login: str | None  # who authenticated, if anyone
    tls: bool

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


class _Controller(Controller):
    """aiosmtpd's controller, bound to port 0: the port is read back from the listening socket (no race)."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = cast(asyncio.Server, self.server).sockets[0].getsockname()[1]
        super()._trigger_server()

    def factory(self) -> SMTPServer:
        with warnings.catch_warnings():
            # AUTH over implicit TLS is encrypted, but aiosmtpd only knows about STARTTLS and warns.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
            return super().factory()


class SmtpPeer:
    def __init__(
        self,
        *,
        tls: TlsMode = "starttls",
        username: str = "alertd",
        password: str | None = None,
        require_auth: bool = True,
        refuse: Iterable[str] = (),
        certificate: Certificate | None = None,
    ) -> None:
        self.tls = tls
        self.username = username
        self.password = password if password is not None else secrets.token_urlsafe(12)
        self.require_auth = require_auth
        self.refuse = {r.lower() for r in refuse}
        self.certificate = certificate if certificate is not None or tls == "none" else shared_certificate()
        self._controller: _Controller | None = None
        self._port = 0  # a free one at first; the same one after a stop
        self._changed = threading.Condition()
        self._messages: list[ReceivedMail] = []
        self._script: deque[str] = deque()
        self.auth_failures = 0

    # -- life cycle ----------------------------------------------------------------------------------------

    def start(self) -> Self:
        handler = _Handler(self)
        kwargs: dict[str, Any] = {
            "authenticator": handler.authenticate,
            "auth_required": self.require_auth,
            # aiosmtpd cannot tell that an implicit-TLS connection is encrypted; it is, so AUTH is allowed.
            "auth_require_tls": self.tls == "starttls",
        }
        context = self.certificate.server_context() if self.certificate else None
        if self.tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        elif self.tls == "implicit":
            kwargs.update(ssl_context=context)
        self._controller = _Controller(handler, hostname="127.0.0.1", port=self._port, server_hostname="localhost", **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop the server; ``start()`` again listens on the same port (a server that went down and came back)."""
        if self._controller is not None:
            self._port = self.port
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        if self._controller is None:
            raise RuntimeError("SmtpPeer is not running")
        return int(self._controller.port)

    @property
    def smarthost(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ca_file(self) -> str:
        if self.certificate is None:
            raise RuntimeError("a plain-text SmtpPeer has no certificate")
        return self.certificate.ca_file

    # -- what tests use ------------------------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._changed:
            return list(self._messages)

    def script(self, *replies: str) -> None:
        """Answer the next DATA commands with these SMTP replies (e.g. "451 4.3.0 Try again later")."""
        with self._changed:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._changed:
            self._messages.clear()
            self._script.clear()
            self.auth_failures = 0

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMail]:
        """Block until at least ``count`` messages were accepted; TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(f"SmtpPeer: {len(self._messages)} of {count} messages after {timeout}s")
            return list(self._messages)

    async def wait_for_async(self, count: int = 1, timeout: float = 5.0, interval: float = 0.01) -> list[ReceivedMail]:
        """``wait_for`` for a test whose own event loop sends the mail: polls without blocking the loop."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self.messages
            if len(messages) >= count:
                return messages
            if time.monotonic() >= deadline:
                raise TimeoutError(f"SmtpPeer: {len(messages)} of {count} messages after {timeout}s")
            await asyncio.sleep(interval)

    def _next_scripted(self) -> str | None:
        with self._changed:
            return self._script.popleft() if self._script else None

    def _record(self, mail: ReceivedMail) -> None:
        with self._changed:
            self._messages.append(mail)
            self._changed.notify_all()


class _Handler:
    """aiosmtpd's handler for one SmtpPeer (aiosmtpd inspects its handler's attributes, so it is kept apart)."""

    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    def authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        peer = self.peer
        if isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode() == peer.username and auth_data.password.decode() == peer.password
        ):
            return AuthResult(success=True, auth_data=peer.username)
        peer.auth_failures += 1
        return AuthResult(success=False, handled=False)  # aiosmtpd answers 535 5.7.8

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        peer = self.peer
        if address.lower() in peer.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        peer = self.peer
        scripted = peer._next_scripted()
        if scripted is not None:
            return scripted
        peer._record(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=cast(bytes, envelope.original_content or envelope.content or b""),
                time=time.time(),
                login=session.auth_data if session.authenticated else None,
                tls=session.ssl is not None or peer.tls == "implicit",
            )
        )
        return "250 2.0.0 Message accepted for delivery"
