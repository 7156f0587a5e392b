"""What the collectors that read an HTTP server (a scrape target, a Prometheus server) share: the connection
settings (URL, credentials, private CA, response size limit), the client they make, and a bounded read.

A response is read in chunks and abandoned as soon as it passes ``max_bytes``: a target that serves 50 MB
costs at most ``max_bytes`` of memory and the time to read that much, never the whole body.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from pydantic import Field, SecretStr, field_validator, model_validator

from alertd.collectors.base import CollectorSettings
from alertd.collectors.connection import describe_error, display_url
from alertd.errors import CollectorError
from alertd.notifiers.tls import CaFile, client_context

DEFAULT_MAX_BYTES = 10 * 2**20


class HttpSourceSettings(CollectorSettings):
    """How to reach one HTTP server: the settings a scrape target and a Prometheus server have in common."""

    url: str = Field(description="the URL to read (http:// or https://)")
    max_bytes: int = Field(
        DEFAULT_MAX_BYTES, gt=0, description="a response larger than this is abandoned while reading it: a failed run"
    )
    bearer_token: SecretStr | None = Field(None, description="sent as 'Authorization: Bearer <token>' (a secret)")
    username: str | None = Field(None, description="HTTP basic authentication: the user")
    password: SecretStr | None = Field(None, description="HTTP basic authentication: the password (a secret)")
    ca_file: CaFile = Field(None, description="PEM file of the CA certificates that sign the server's (a private CA)")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"the URL must start with http:// or https://, not {value!r}")
        return value

    @model_validator(mode="after")
    def _one_kind_of_auth(self) -> HttpSourceSettings:
        if self.bearer_token is not None and (self.username is not None or self.password is not None):
            raise ValueError("bearer_token and username/password are exclusive: choose one")
        if (self.username is None) != (self.password is None):
            raise ValueError("basic authentication needs both username and password")
        return self


def make_client(settings: HttpSourceSettings, accept: str) -> httpx.AsyncClient:
    headers = {"Accept": accept}
    auth: httpx.BasicAuth | None = None
    if settings.bearer_token is not None:
        headers["Authorization"] = f"Bearer {settings.bearer_token.get_secret_value()}"
    elif settings.username is not None and settings.password is not None:
        auth = httpx.BasicAuth(settings.username, settings.password.get_secret_value())
    verify = client_context(settings.ca_file) if settings.ca_file else True
    # Redirects are not followed: credentials must not travel to a host nobody configured.
    return httpx.AsyncClient(timeout=settings.timeout, headers=headers, auth=auth, verify=verify)


@dataclass
class Body:
    status: int
    content: bytes
    content_type: str

    def error(self, where: str) -> CollectorError:
        """The failure an error status is, with the start of what the server said."""
        said = self.content[:200].decode("utf-8", errors="replace").strip()
        return CollectorError(f"{where} answered HTTP {self.status}" + (f": {said}" if said else ""))


async def read_limited(
    client: httpx.AsyncClient, url: str, max_bytes: int, *, timeout: float, params: dict[str, str] | None = None
) -> Body:
    """GET ``url`` and read at most ``max_bytes`` of its (decompressed) body, whatever its status; raises
    CollectorError when the body is larger or the request fails."""
    where = display_url(url)
    try:
        async with client.stream("GET", url, params=params) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise CollectorError(f"{where} announced {int(declared):,} bytes, more than max_bytes ({max_bytes:,})")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise CollectorError(f"{where} sent more than max_bytes ({max_bytes:,}): abandoned")
                chunks.append(chunk)
            return Body(response.status_code, b"".join(chunks), response.headers.get("Content-Type", ""))
    except CollectorError:
        raise
    except Exception as exc:
        raise describe_error(exc, url, timeout=timeout) from None
