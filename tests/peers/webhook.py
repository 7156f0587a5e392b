"""An Alertmanager-style webhook receiver on loopback: JSON posts in, 200 (or 401 on a bad signature) out.

Given ``secret`` (``whsec_`` + base64), it verifies Standard Webhooks signatures as a receiver would, with its
own implementation (``verify_signature``), and answers 401 when they do not verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

from tests.peers import HttpPeer, Reply, Request
from tests.peers.tls import Certificate

DEFAULT_TOLERANCE = 300.0  # seconds, as the Standard Webhooks reference libraries allow

CANNED = {
    400: {"error": "bad request"},
    401: {"error": "unauthorized"},
    404: {"error": "not found"},
    410: {"error": "this endpoint has been removed"},
    429: {"error": "too many requests"},
    500: {"error": "internal server error"},
}


class WebhookPeer(HttpPeer):
    """``hook_url`` receives notifications; ``payloads`` are the JSON bodies it accepted."""

    path = "/hooks/alertd"

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, secret: str | None = None, certificate: Certificate | None = None
    ) -> None:
        super().__init__(host, port, certificate=certificate)
        self.secret = secret

    @property
    def hook_url(self) -> str:
        return self.url + self.path

    @property
    def payloads(self) -> list[Any]:
        return [request.json for request, reply in self.exchanges if reply is not None and 200 <= reply.status < 300]

    def canned(self, status: int) -> Reply:
        headers = {"Retry-After": "1"} if status == 429 else {}
        return Reply(status, CANNED.get(status, ""), headers)

    def answer(self, request: Request) -> Reply:
        if request.path.split("?")[0] != self.path:
            return Reply(404, CANNED[404])
        if request.method != "POST":
            return Reply(405, "")
        if request.json is None:
            return Reply(400, {"error": "body is not JSON"})
        if self.secret is not None and not verify_signature(self.secret, request.headers, request.body):
            return Reply(401, {"error": "invalid signature"})
        return Reply(200, "")


def verify_signature(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None, tolerance: float = DEFAULT_TOLERANCE
) -> bool:
    """Standard Webhooks verification: any ``v1,`` signature in ``webhook-signature`` over
    ``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256, and a timestamp within ``tolerance``."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, timestamp, signatures = (lower.get(h, "") for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and timestamp and signatures):
        return False
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in signatures.split():
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False
