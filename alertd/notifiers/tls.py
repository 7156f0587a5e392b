"""A receiver's ``ca_file`` in, a TLS client context that verifies the server against it out; a failed
connection in, whether the server's certificate was the reason out.

``CaFile`` is the type of a notifier's ``ca_file`` setting: a PEM file of CA certificates (a private CA),
relative to the configuration file, checked when the configuration is loaded (so ``alertd check`` reports a
missing or unreadable file), never rewritten by the ``<key>_file`` secret convention.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo


def _ca_file(value: str | None, info: ValidationInfo) -> str | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    base = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    try:
        ssl.create_default_context(cafile=str(path))
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise ValueError(f"{path} holds no PEM CA certificate ({exc.reason or exc})") from None
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    return str(path)


CaFile = Annotated[str | None, AfterValidator(_ca_file)]


def client_context(ca_file: str | None = None, *, verify: bool = True) -> ssl.SSLContext:
    """Verification on, against the CA certificates in ``ca_file`` (instead of the system's) when given."""
    context = ssl.create_default_context(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``exc`` (a client library's wrapper), if that was the reason."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
