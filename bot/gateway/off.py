"""The gateway's error shape, and what ``/api`` answers when no key is configured.

Starlette only: with the gateway off the running bot never imports FastAPI (4.4 MB of
modules; BENCHMARKS.md, "What the running bot imports"). :mod:`bot.gateway.errors`
renders every other error through :func:`error_response` too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

PREFIX = "/api"
# Starlette routes a function to GET only unless told; the off switch answers every method.
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


def error_response(
    status: int,
    message: str,
    *,
    candidates: list[str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The JSON body every error has."""
    body: dict[str, Any] = {"error": message, "status": status}
    if candidates is not None:
        body["candidates"] = candidates
    return JSONResponse(body, status_code=status, headers=headers)


def gateway_off_routes(prefix: str = PREFIX) -> list[BaseRoute]:
    """What ``/api`` answers when no key is configured: 404 everywhere, saying why."""

    async def off(_request: Request) -> Response:
        return error_response(404, "the gateway is off: no gateway keys are configured")

    return [
        Route(prefix, off, methods=ALL_METHODS),
        Route(f"{prefix}/{{path:path}}", off, methods=ALL_METHODS),
    ]
