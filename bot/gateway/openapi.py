"""The gateway's OpenAPI 3.1 document, served at ``GET /api/openapi.json``.

The paths are written here; every schema comes from the pydantic models the endpoints use
(:mod:`bot.gateway.models`), so the document describes what the code accepts and sends.
A schemathesis run against a live gateway checks that it does (tests/gateway).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from bot import __version__
from bot.gateway.auth import HEADER
from bot.gateway.models import (
    MAX_HISTORY,
    CreateInstanceIn,
    ErrorOut,
    HealthOut,
    HistoryOut,
    InstanceOut,
)

_MODELS: tuple[type[BaseModel], ...] = (
    CreateInstanceIn,
    ErrorOut,
    HealthOut,
    HistoryOut,
    InstanceOut,
)

_ERRORS = {
    400: "The body is not JSON.",
    401: f"The {HEADER} header is missing or names no configured key.",
    403: "The key's role does not allow this action.",
    404: "No instance matches the id, id prefix or name.",
    409: "The reference matches several instances (see candidates), or the backend refused "
    "the transition (e.g. pausing a paused instance), or another action on the instance "
    "is in progress.",
    413: "The body is too large.",
    422: "The body or a parameter is not valid.",
    500: "An unexpected error; the bot's log has the id given in the message.",
    502: "The backend answered with an error or with a body the bot cannot read.",
    503: "The backend cannot be reached.",
}
_READ_ERRORS = (401, 404, 409, 500, 502, 503)
_WRITE_ERRORS = (401, 403, 404, 409, 500, 502, 503)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _responses(
    ok: int, ok_description: str, ok_schema: dict[str, Any] | None, errors: tuple[int, ...]
) -> dict[str, Any]:
    responses: dict[str, Any] = {str(ok): {"description": ok_description}}
    if ok_schema is not None:
        responses[str(ok)]["content"] = _json_content(ok_schema)
    for status in errors:
        responses[str(status)] = {
            "description": _ERRORS[status],
            "content": _json_content(_ref(ErrorOut)),
        }
    return responses


_REF_PARAM = {
    "name": "ref",
    "in": "path",
    "required": True,
    "description": "A full instance id, a unique prefix of one, or an exact instance name.",
    "schema": {"type": "string", "minLength": 1},
}


def _op(
    operation_id: str, summary: str, role: str, responses: dict[str, Any], **more: Any
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "description": f"Needs the {role} role.",
        "responses": responses,
        **more,
    }


def build_openapi(*, server_url: str | None = None) -> dict[str, Any]:
    """The whole document. ``server_url`` is the bot's public URL, when it has one."""
    _, defs = models_json_schema(
        [(m, "validation" if m is CreateInstanceIn else "serialization") for m in _MODELS],
        ref_template="#/components/schemas/{model}",
    )
    schemas = defs.get("$defs", {})
    instance_path = {"parameters": [_REF_PARAM]}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "starpod-bot gateway",
            "version": __version__,
            "description": (
                "Manage Starpod instances over HTTP, with the same roles and audit log as "
                f"the Slack commands. Authenticate with the {HEADER} header."
            ),
        },
        "servers": [{"url": (server_url or "").rstrip("/") + "/api" if server_url else "/api"}],
        "security": [{"apiKey": []}],
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": HEADER}},
            "schemas": schemas,
        },
        "paths": {
            "/instances": {
                "get": _op(
                    "listInstances",
                    "List instances",
                    "viewer",
                    _responses(
                        200,
                        "Every instance (filtered when asked).",
                        {"type": "array", "items": _ref(InstanceOut)},
                        _READ_ERRORS,
                    ),
                    parameters=[
                        {
                            "name": "status",
                            "in": "query",
                            "required": False,
                            "description": "Only instances with this status (any case).",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "region",
                            "in": "query",
                            "required": False,
                            "description": "Only instances in this region.",
                            "schema": {"type": "string"},
                        },
                    ],
                ),
                "post": _op(
                    "createInstance",
                    "Create an instance",
                    "operator",
                    _responses(
                        201,
                        "The new instance, as the backend describes it.",
                        _ref(InstanceOut),
                        (400, 401, 403, 409, 413, 422, 500, 502, 503),
                    ),
                    requestBody={
                        "required": False,
                        "content": _json_content(_ref(CreateInstanceIn)),
                    },
                ),
            },
            "/instances/{ref}": {
                **instance_path,
                "get": _op(
                    "getInstance",
                    "Show one instance",
                    "viewer",
                    _responses(200, "The instance.", _ref(InstanceOut), _READ_ERRORS),
                ),
                "delete": _op(
                    "killInstance",
                    "Terminate an instance",
                    "admin",
                    _responses(204, "The backend accepted the kill.", None, _WRITE_ERRORS),
                ),
            },
            "/instances/{ref}/pause": {
                **instance_path,
                "post": _op(
                    "pauseInstance",
                    "Pause a running instance",
                    "operator",
                    _responses(
                        200, "The instance after the request.", _ref(InstanceOut), _WRITE_ERRORS
                    ),
                ),
            },
            "/instances/{ref}/restart": {
                **instance_path,
                "post": _op(
                    "restartInstance",
                    "Restart (or resume) an instance",
                    "operator",
                    _responses(
                        200, "The instance after the request.", _ref(InstanceOut), _WRITE_ERRORS
                    ),
                ),
            },
            "/instances/{ref}/health": {
                **instance_path,
                "get": _op(
                    "instanceHealth",
                    "An instance's health",
                    "viewer",
                    _responses(
                        200,
                        "CPU, memory, disk, uptime and heartbeat.",
                        _ref(HealthOut),
                        _READ_ERRORS,
                    ),
                ),
            },
            "/instances/{ref}/history": {
                **instance_path,
                "get": _op(
                    "instanceHistory",
                    "Recorded status changes and restarts",
                    "viewer",
                    _responses(
                        200,
                        "Newest first, from the bot's own records.",
                        _ref(HistoryOut),
                        (*_READ_ERRORS, 422),
                    ),
                    parameters=[
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "description": "At most this many of each (default 20).",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY},
                        }
                    ],
                ),
            },
        },
    }
    return document
