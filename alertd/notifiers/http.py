"""One HTTP POST within a time limit in; the answer, or alertd's retryable or permanent error, out.

Shared by the notifiers that speak HTTP (Slack, PagerDuty, webhook, and yours). Error messages name the service by the part of its URL that is not a secret, and never carry a secret:
each one passes through ``redact`` with the receiver's secrets.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

import httpx

from alertd.config.secrets import scrub as redact
from alertd.errors import PermanentError, RetryableError
from alertd.notifiers.tls import certificate_error

MAX_ERROR_BODY = 500
# 408 and 425 ask to try again later, 429 is a rate limit; every 5xx is retryable too.
RETRYABLE_STATUS = frozenset({408, 425, 429})


async def post(
    http: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    service: str,
    secrets: Iterable[str] = (),
) -> httpx.Response:
    """POST ``body``; a timeout or a connection failure is retryable, an unusable URL is permanent."""
    limit = timeout or None
    try:
        # httpx's timeout bounds each phase; the whole attempt gets the same limit.
        async with asyncio.timeout(limit):
            # A redirect is not followed: it would carry the alerts (and the headers) to another address.
            return await http.post(url, content=body, headers=dict(headers), timeout=limit, follow_redirects=False)
    except (TimeoutError, httpx.TimeoutException):
        raise RetryableError(f"{service} did not answer within {timeout:g}s") from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise PermanentError(f"{service}: the URL is not usable: {redact(str(exc), secrets)}") from None
    except httpx.TransportError as exc:
        problem = certificate_error(exc)
        if problem is not None:
            # Not a passing fault: the next attempt meets the same certificate.
            raise PermanentError(f"{service}: the server's certificate is not trusted ({problem.verify_message})") from None
        raise RetryableError(f"{service} unreachable: {type(exc).__name__}: {redact(str(exc), secrets)}") from None


def raise_for_status(response: httpx.Response, *, service: str, secrets: Iterable[str] = (), now: float) -> None:
    """2xx is delivered; 408, 425, 429 and 5xx are retryable (after Retry-After, if sent); the rest is permanent."""
    status = response.status_code
    if 200 <= status < 300:
        return
    message = f"{service} answered {status}: {redact(snippet(response.text), secrets)}"
    if status in RETRYABLE_STATUS or status >= 500:
        raise RetryableError(message, retry_after=retry_after(response.headers, now))
    raise PermanentError(message)


def public_url(url: str) -> str:
    """The part of a URL that is not a secret: https://host/path?token=x -> https://host/…"""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}/…"


def snippet(body: str) -> str:
    body = body.strip()
    return body if len(body) <= MAX_ERROR_BODY else body[:MAX_ERROR_BODY] + "…"


def retry_after(headers: httpx.Headers, now: float) -> float | None:
    """Retry-After in seconds, from either form the header takes (seconds, or an HTTP date)."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - now)
