"""The PagerDuty Events API v2 on loopback: events in, PagerDuty's documented answers (and incident states) out.

``POST /v2/enqueue`` validates like the service: a 32-character ``routing_key``, an ``event_action`` of
trigger/acknowledge/resolve, a ``dedup_key`` (at most 255 characters; required to acknowledge or resolve),
and for a trigger a ``payload`` with ``summary`` (at most 1,024 characters), ``source`` and a ``severity`` of
critical/error/warning/info; the whole body at most 512 KB. Invalid: 400 ``{"status": "invalid event",
"message": "Event object is invalid", "errors": [...]}``. Valid: 202 ``{"status": "success", "message":
"Event processed", "dedup_key": ...}``, and ``incidents`` follows the event. Scripted: 429 ``throttle
exceeded``, 500/502/503.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from tests.peers import HttpPeer, Reply, Request

ENQUEUE_PATH = "/v2/enqueue"
MAX_BODY = 512 * 1024
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
STATES = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}


class PagerDutyPeer(HttpPeer):
    """``enqueue_url`` takes events; ``events`` are the accepted ones; ``incidents`` maps dedup_key to state."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.incidents: dict[str, str] = {}

    @property
    def enqueue_url(self) -> str:
        return self.url + ENQUEUE_PATH

    @property
    def events(self) -> list[Any]:
        """The events answered 202, oldest first."""
        return [request.json for request, reply in self.exchanges if reply is not None and reply.status == 202]

    def reset(self) -> None:
        super().reset()
        self.incidents.clear()

    def canned(self, status: int) -> Reply:
        if status == 429:
            return Reply(429, {"status": "throttle exceeded", "message": "Requests for this service are arriving too quickly.  Please retry later."})
        if status == 400:
            return invalid("Event object is invalid")
        if status == 202:
            return Reply(202, {"status": "success", "message": "Event processed", "dedup_key": uuid.uuid4().hex})
        return Reply(status, "")

    def answer(self, request: Request) -> Reply:
        if request.path.split("?")[0] != ENQUEUE_PATH:
            return Reply(404, {"status": "not found"})
        if request.method != "POST":
            return Reply(405, "")
        if len(request.body) > MAX_BODY:
            return invalid(f"Event object is too large: {len(request.body)} bytes (at most {MAX_BODY})")
        event = request.json
        if not isinstance(event, dict):
            return invalid("Could not parse JSON from request body")
        errors = event_errors(event)
        if errors:
            return invalid(*errors)
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        self.incidents[dedup_key] = STATES[event["event_action"]]
        return Reply(202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key})


def invalid(*errors: str) -> Reply:
    return Reply(400, {"status": "invalid event", "message": "Event object is invalid", "errors": list(errors)})


def event_errors(event: dict[str, Any]) -> list[str]:
    """What PagerDuty would say is wrong with an event; empty when it would accept it."""
    errors = []
    routing_key = event.get("routing_key")
    if not isinstance(routing_key, str) or len(routing_key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > MAX_DEDUP_KEY):
        errors.append(f"'dedup_key' must be a string of at most {MAX_DEDUP_KEY} characters")
    if action in ("acknowledge", "resolve") and not dedup_key:
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        errors += payload_errors(event.get("payload"))
    links = event.get("links", [])
    if not isinstance(links, list) or not all(isinstance(link, dict) and isinstance(link.get("href"), str) for link in links):
        errors.append("'links' must be a list of objects with an 'href'")
    return errors


def payload_errors(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    errors = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > MAX_SUMMARY:
        errors.append(f"'payload.summary' is too long (at most {MAX_SUMMARY} characters)")
    source = payload.get("source")
    if not isinstance(source, str) or not source.strip():
        errors.append("'payload.source' is missing or blank")
    if payload.get("severity") not in SEVERITIES:
        errors.append("'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')")
    timestamp = payload.get("timestamp")
    if timestamp is not None:
        try:
            datetime.datetime.fromisoformat(str(timestamp))
        except ValueError:
            errors.append("'payload.timestamp' is not a valid ISO 8601 timestamp")
    for key in ("component", "group", "class"):
        if key in payload and not isinstance(payload[key], str):
            errors.append(f"'payload.{key}' must be a string")
    return errors
