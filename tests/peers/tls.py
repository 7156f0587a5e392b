"""A test CA (trustme) and a server certificate it signed for 127.0.0.1 and localhost, as PEM files.

The peers serve TLS with it; a client trusts it through ``ca_file`` alone (the system's CAs do not know it).
"""

from __future__ import annotations

import functools
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class Certificate:
    """A test CA and a server certificate it signed (PEM files)."""

    ca_file: str
    cert_file: str
    key_file: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@functools.cache
def shared_certificate() -> Certificate:
    """One CA and server certificate per test run (made once: key generation is the slow part)."""
    directory = Path(tempfile.mkdtemp(prefix="alertd-tls-"))
    ca = trustme.CA(organization_name="alertd test CA")
    issued = ca.issue_cert("localhost", "127.0.0.1")
    paths = Certificate(str(directory / "ca.pem"), str(directory / "server.pem"), str(directory / "server.key"))
    ca.cert_pem.write_to_path(paths.ca_file)
    issued.cert_chain_pems[0].write_to_path(paths.cert_file)
    issued.private_key_pem.write_to_path(paths.key_file)
    return paths
