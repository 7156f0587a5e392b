"""The OpenAPI 3.1 description of alertd's HTTP interface, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

from alertd import __version__
from alertd.http.bodies import MAX_FILTERS, MAX_MATCHER_CHARS, MAX_PAGE, AckBody, SilenceBody, schema

_OBJ = {"type": "object"}
_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _op(summary: str, ok: str, schema: dict[str, Any] | None = None, *, mutating: bool = False,
        params: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None,
        status: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {status: {"description": ok, "content": {"application/json": {"schema": schema or _OBJ}}},
                      "4XX": _ERROR},
    }
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if mutating:
        op["security"] = [{"bearer": []}]
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


_NUM = {"type": ["number", "null"]}
SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
    "Alert": {"type": "object", "properties": {
        "fingerprint": {"type": "string"}, "rule": {"type": "string"},
        "state": {"enum": ["pending", "firing", "resolved"]},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "severity": {"type": "string"}, "value": _NUM, "active_at": _NUM, "fired_at": _NUM,
        "resolved_at": _NUM, "last_evaluated_at": _NUM,
        "silenced_by": {"type": "array", "items": {"type": "string"}},
        "inhibited_by": {"type": "array", "items": {"type": "string"}},
        "acknowledgement": {"type": ["object", "null"]}, "generator_url": {"type": "string"},
    }},
    "Silence": {"type": "object", "properties": {
        "id": {"type": "string"}, "matchers": {"type": "array", "items": {"type": "string"}},
        "starts_at": {"type": "number"}, "ends_at": {"type": "number"}, "created_by": {"type": "string"},
        "comment": {"type": "string"}, "status": {"enum": ["pending", "active", "expired"]},
    }},
    "NewSilence": schema(SilenceBody),
    "Ack": schema(AckBody),
    "Reload": {"type": "object", "properties": {
        "ok": {"type": "boolean"}, "source": {"type": "string"}, "message": {"type": "string"},
        "at": {"type": "number"}, "rules": {"type": "integer"}, "changed": {"type": "array"}}},
}

FP = [_path_param("fingerprint")]
_AM = "Alertmanager API v2 (shapes and parameters: Alertmanager's OpenAPI v2 spec): "
AM_PATHS: dict[str, dict[str, Any]] = {
    "/api/v2/status": {"get": _op(_AM + "cluster, version, route tree, uptime", "status")},
    "/api/v2/receivers": {"get": _op(_AM + "receivers", "receivers", {"type": "array"})},
    "/api/v2/alerts": {"get": _op(_AM + "firing alerts (filter, active, silenced, inhibited, receiver)",
                                  "alerts", {"type": "array"})},
    "/api/v2/alerts/groups": {"get": _op(_AM + "firing alerts by route and group", "groups", {"type": "array"})},
    "/api/v2/silences": {
        "get": _op(_AM + "silences (filter, active, pending, expired)", "silences", {"type": "array"}),
        "post": _op(_AM + "create a silence, or update the one with id", "{silenceID}", mutating=True),
    },
    "/api/v2/silence/{id}": {
        "get": _op(_AM + "one silence", "the silence", params=[_path_param("id")]),
        "delete": _op(_AM + "expire a silence", "expired", params=[_path_param("id")], mutating=True),
    },
}
PATHS: dict[str, dict[str, Any]] = {
    "/-/healthy": {"get": _op("The process serves", "ok")},
    "/-/ready": {"get": _op("Ready once the first collection has finished (503 before)", "ready")},
    "/-/reload": {"post": _op("Reload the configuration and rules (400 with the errors if bad)", "reloaded",
                              _ref("Reload"), mutating=True)},
    "/health/celery": {"get": _op("Cluster health: 200 healthy, 503 unhealthy with reasons", "healthy")},
    "/metrics": {"get": {"summary": "alertd's own Prometheus metrics",
                         "responses": {"200": {"description": "text exposition format",
                                               "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    "/api/v1/status": {"get": _op("Version, readiness, configuration, broker, workers and queues", "status")},
    "/api/v1/alerts": {"get": _op(
        "Alerts, filtered by state (default pending and firing) and label matchers", "alerts",
        {"type": "object", "properties": {"alerts": {"type": "array", "items": _ref("Alert")},
                                          "total": {"type": "integer", "description": "matching alerts, all pages"}}},
        params=[{"name": "state", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
                {"name": "filter", "in": "query",
                 "schema": {"type": "array", "maxItems": MAX_FILTERS,
                            "items": {"type": "string", "maxLength": MAX_MATCHER_CHARS}}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": MAX_PAGE}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}])},
    "/api/v1/alerts/{fingerprint}": {"get": _op("One alert with its history", "the alert", params=FP)},
    "/api/v1/alerts/{fingerprint}/ack": {"post": _op("Acknowledge an alert: stops its escalation", "acknowledged",
                                                     params=FP, body=_ref("Ack"), mutating=True)},
    "/api/v1/alerts/{fingerprint}/explain": {"get": _op(
        "Why the alert did or did not notify: route, group, inhibition, silence, dedup, next send", "explanation",
        params=FP)},
    "/api/v1/silences": {
        "get": _op("Silences", "silences", params=[{"name": "status", "in": "query", "schema": {"type": "string"}}]),
        "post": _op("Create a silence", "created", _ref("Silence"), body=_ref("NewSilence"), mutating=True,
                    status="201"),
    },
    "/api/v1/silences/{id}": {"delete": _op("Expire a silence", "expired", _ref("Silence"),
                                            params=[_path_param("id")], mutating=True)},
    "/api/v1/openapi.json": {"get": _op("This document", "the OpenAPI document")},
    **AM_PATHS,
    "/": {"get": {"summary": "The dashboard", "responses": {"200": {"description": "HTML page"}}}},
    "/alerts/{fingerprint}": {"get": {"summary": "Where notifications link to (generatorURL): the alert",
                                      "parameters": FP,
                                      "responses": {"302": {"description": "to /api/v1/alerts/{fingerprint}"}}}},
}


def openapi() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "alertd", "version": __version__,
                 "description": "Alerts, silences, acknowledgements and health of an alertd daemon."},
        "paths": PATHS,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
