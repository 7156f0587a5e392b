"""A Slack incoming webhook on loopback: JSON messages in, Slack's documented answers and limits out.

Answers as Slack documents for incoming webhooks: 200 ``ok``; 400 ``invalid_payload`` (not JSON),
``no_text`` (neither text, blocks nor attachments), ``invalid_blocks`` (a block over its limits, more than
50 blocks), ``too_many_attachments``; 404 ``no_service`` for a webhook path it does not know; and, scripted,
403 ``action_prohibited``, 404 ``channel_not_found``, 410 ``channel_is_archived``, 429 ``rate_limited`` with
``Retry-After``, 500 ``internal_error``.
"""

from __future__ import annotations

import secrets
from typing import Any

from tests.peers import HttpPeer, Reply, Request

MAX_BLOCKS = 50
MAX_ATTACHMENTS = 100
MAX_HEADER_TEXT = 150
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_TEXT_OBJECT = 3000
KNOWN_BLOCKS = {"header", "section", "context", "divider", "image", "actions", "rich_text", "input", "file", "video"}

CANNED = {
    400: "invalid_payload",
    403: "action_prohibited",
    404: "channel_not_found",
    410: "channel_is_archived",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class SlackPeer(HttpPeer):
    """``webhook_url`` is the one webhook this peer knows; ``messages`` are the payloads it accepted."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.path = f"/services/T0ALERTD/B0ALERTD/{secrets.token_hex(12)}"

    @property
    def webhook_url(self) -> str:
        return self.url + self.path

    @property
    def messages(self) -> list[Any]:
        """The JSON payloads of the requests answered 200 (what Slack would have posted to the channel)."""
        return [request.json for request, reply in self.exchanges if reply is not None and reply.status == 200]

    def canned(self, status: int) -> Reply:
        headers = {"Retry-After": "1"} if status == 429 else {}
        return Reply(status, CANNED.get(status, "error"), headers)

    def answer(self, request: Request) -> Reply:
        if request.path != self.path:
            return Reply(404, "no_service")
        if request.method != "POST":
            return Reply(405, "invalid_method")
        payload = request.json
        if not isinstance(payload, dict):
            return Reply(400, "invalid_payload")
        found = problems(payload)
        if found:
            return Reply(400, found[0])
        return Reply(200, "ok")


def problems(payload: Any) -> list[str]:
    """Slack's error code(s) for a payload; empty when Slack would post it."""
    if not isinstance(payload, dict):
        return ["invalid_payload"]
    attachments = payload.get("attachments") or []
    if not (payload.get("text") or payload.get("blocks") or attachments):
        return ["no_text"]
    if not isinstance(attachments, list) or len(attachments) > MAX_ATTACHMENTS:
        return ["too_many_attachments"]
    blocks = list(payload.get("blocks") or [])
    for attachment in attachments:
        if not isinstance(attachment, dict):
            return ["invalid_attachments"]
        blocks += attachment.get("blocks") or []
    if len(blocks) > MAX_BLOCKS:
        return ["invalid_blocks"]
    return ["invalid_blocks" for block in blocks if not block_ok(block)][:1]


def block_ok(block: Any) -> bool:
    if not isinstance(block, dict) or block.get("type") not in KNOWN_BLOCKS:
        return False
    kind = block["type"]
    if kind == "header":
        text = block.get("text")
        return _text_ok(text, MAX_HEADER_TEXT) and isinstance(text, dict) and text["type"] == "plain_text"
    if kind == "section":
        fields = block.get("fields")
        if fields is not None and (len(fields) > MAX_SECTION_FIELDS or not all(_text_ok(f, MAX_FIELD_TEXT) for f in fields)):
            return False
        text = block.get("text")
        if text is None:
            return bool(fields)
        return _text_ok(text, MAX_SECTION_TEXT)
    if kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
            return False
        return all(e.get("type") == "image" or _text_ok(e, MAX_TEXT_OBJECT) for e in elements)
    return True


def _text_ok(obj: Any, limit: int) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("type") in ("plain_text", "mrkdwn")
        and isinstance(obj.get("text"), str)
        and 1 <= len(obj["text"]) <= limit
    )
