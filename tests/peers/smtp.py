"""A real SMTP server on loopback (aiosmtpd): STARTTLS, implicit TLS or plain, with AUTH; mail in, recorded.

``SmtpPeer(tls="starttls")`` listens on 127.0.0.1 and a free port with a certificate for 127.0.0.1/localhost
signed by a test CA made at run time (``ca_file`` is what a client trusts); it requires STARTTLS before
anything else and AUTH (``username``/``password``) before MAIL. ``tls="implicit"`` speaks TLS from the first
byte, ``tls="none"`` never. ``script("451 4.3.0 Try again later")`` answers the next DATA with that;
``refuse`` names recipients answered ``550`` at RCPT.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import functools
import secrets
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal, Self, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

TlsMode = Literal["starttls", "implicit", "none"]


@dataclass(frozen=True)
class Certificate:
    """A test CA and a server certificate it signed, for 127.0.0.1 and localhost (PEM files)."""

    ca_file: str
    cert_file: str
    key_file: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


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


@functools.cache
def shared_certificate() -> Certificate:
    """One CA and server certificate per test run (made once: key generation is the slow part)."""
    directory = Path(tempfile.mkdtemp(prefix="alertd-tls-"))
    try:
        return _with_cryptography(directory)
    except ImportError:
        return _with_openssl(directory)


def _with_cryptography(directory: Path) -> Certificate:
    import datetime
    import ipaddress

    from cryptography import x509  # type: ignore[import-not-found,unused-ignore]
    from cryptography.hazmat.primitives import hashes, serialization  # type: ignore[import-not-found,unused-ignore]
    from cryptography.hazmat.primitives.asymmetric import ec  # type: ignore[import-not-found,unused-ignore]
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # type: ignore[import-not-found,unused-ignore]

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alertd test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = Certificate(str(directory / "ca.pem"), str(directory / "server.pem"), str(directory / "server.key"))
    Path(paths.ca_file).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    Path(paths.cert_file).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(paths.key_file).write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def _with_openssl(directory: Path) -> Certificate:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("making a test certificate needs the cryptography package or the openssl command")
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    (directory / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True)

    run("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=alertd test CA",
        "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *curve, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial",
        str(secrets.randbits(63)), "-days", "2", "-out", "server.pem", "-extfile", "server.ext")
    return Certificate(str(directory / "ca.pem"), str(directory / "server.pem"), str(directory / "server.key"))
