"""Every answer other than success: ``{"error": "...", "status": n}``, translated once, here.

:func:`as_gateway_error` turns whatever a call raised (a refusal, a backend error, a
parameter FastAPI could not validate, a bug) into a :class:`GatewayError`: its status, its
message and the audit result it stands for. :func:`render` renders one (the shape itself
is :func:`bot.gateway.off.error_response`). The exception handlers answer what the router
decides before any route runs (no such path, wrong method) in the same shape.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match

from bot.backend.errors import (
    AmbiguousInstance,
    BackendError,
    BackendStatusError,
    BackendUnavailable,
    InstanceNotFound,
    PrefixTooShort,
)
from bot.errors import StarpodBotError
from bot.gateway.auth import HEADER
from bot.gateway.models import MAX_HISTORY, ErrorOut
from bot.gateway.off import error_response
from bot.store.errors import StoreUnwritable

log = logging.getLogger(__name__)

# Backend answers passed on as they are; any other failure of the backend is ours (502).
_PASSED_ON = frozenset({400, 404, 409, 422})

# What each error status means, for the OpenAPI document.
DESCRIPTIONS = {
    400: "The body is not JSON.",
    401: f"The {HEADER} header is missing or names no configured key.",
    403: "The key's role does not allow this action.",
    404: "No instance matches the id, id prefix or name.",
    409: "The reference matches several instances (see candidates), or the backend refused "
    "the transition (e.g. pausing a paused instance), or another action on the instance "
    "is in progress.",
    413: "The body is too large.",
    422: "The body or a parameter is not valid, or an action named an id prefix shorter "
    "than 4 characters (see candidates).",
    429: "Too many requests without a valid key from this client this minute; see Retry-After.",
    500: "An unexpected error; the bot's log has the id given in the message.",
    502: "The backend answered with an error or with a body the bot cannot read.",
    503: "The backend cannot be reached, or the database is full or read-only.",
}
READ_ERRORS = (401, 404, 409, 422, 429, 500, 502, 503)
WRITE_ERRORS = (401, 403, 404, 409, 422, 429, 500, 502, 503)
CREATE_ERRORS = (400, 401, 403, 409, 413, 422, 429, 500, 502, 503)


class GatewayError(StarpodBotError):
    """An answer other than success: its status, message and audit result.

    ``result`` is what the audit row records: ``refused`` (no key, or too low a role),
    ``usage`` (the caller asked for something that cannot be) or ``error``; ``detail``
    is the row's detail (by default the status and the message).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        result: str,
        candidates: list[str] | None = None,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.result = result
        self.candidates = candidates
        self.detail = detail or f"{status}: {message}"
        self.headers = dict(headers or {})


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route for the OpenAPI document: each status as an ``Error``."""
    return {status: {"model": ErrorOut, "description": DESCRIPTIONS[status]} for status in statuses}


def render(error: GatewayError) -> JSONResponse:
    """The response for ``error``; a 401 says which header to send."""
    headers = {"WWW-Authenticate": HEADER} if error.status == 401 else {}
    headers.update(error.headers)
    return error_response(error.status, error.message, candidates=error.candidates, headers=headers)


def from_backend(exc: BackendError) -> GatewayError:
    """Translate a backend error (architecture rule 6)."""
    if isinstance(exc, AmbiguousInstance):
        return GatewayError(
            409, str(exc), result="usage", candidates=[c.id for c in exc.candidates]
        )
    if isinstance(exc, PrefixTooShort):
        return GatewayError(
            422, str(exc), result="usage", candidates=[c.id for c in exc.candidates]
        )
    if isinstance(exc, InstanceNotFound):
        return GatewayError(404, str(exc), result="usage")
    if isinstance(exc, BackendStatusError) and exc.status_code in _PASSED_ON:
        return GatewayError(exc.status_code, str(exc), result="error")
    if isinstance(exc, BackendUnavailable):
        return GatewayError(503, str(exc), result="error")
    return GatewayError(502, str(exc), result="error")


def from_validation(exc: RequestValidationError) -> GatewayError:
    """A path or query parameter FastAPI refused: 422, naming the parameter."""
    first = exc.errors()[0] if exc.errors() else {}
    where = [str(part) for part in first.get("loc", ())]
    name = where[-1] if where else "request"
    rule = PARAMETER_RULES.get(name)
    message = rule or f"{name}: {first.get('msg', 'not valid')}"
    return GatewayError(422, message, result="usage")


# How a query parameter's rule reads in an error, where pydantic's own words would be
# vaguer than the message the gateway has always given.
PARAMETER_RULES: dict[str, str] = {
    "limit": f"limit must be a whole number from 1 to {MAX_HISTORY}",
}


def as_gateway_error(exc: Exception, *, action: str) -> GatewayError:
    """Whatever a call raised, as the answer to give. A bug is logged with an id to quote."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, BackendError):
        return from_backend(exc)
    if isinstance(exc, RequestValidationError):
        return from_validation(exc)
    if isinstance(exc, StoreUnwritable):
        return GatewayError(503, f"{exc}; nothing was done", result="error")
    if isinstance(exc, HTTPException):
        return GatewayError(exc.status_code, str(exc.detail), result="usage")
    error_id = uuid.uuid4().hex[:8]
    log.error("gateway %s failed (error id %s)", action, error_id, exc_info=exc)
    return GatewayError(
        500,
        f"internal error; the bot's log has id {error_id}",
        result="error",
        detail=f"internal error {error_id}",
    )


def _allowed_methods(routes: list[BaseRoute], request: Request) -> list[str]:
    """Every method some route of this path answers, in the routes' order, HEAD last."""
    allowed: list[str] = []
    for route in routes:
        # No method is any route's: a route of this path answers PARTIAL, others NONE.
        match, _ = route.matches({**request.scope, "method": ""})
        if match is not Match.NONE:
            methods: set[str] = getattr(route, "methods", None) or set()
            allowed.extend(m for m in sorted(methods) if m not in allowed)
    return sorted(allowed, key=lambda method: method == "HEAD")


def _bounded(text: str, limit: int = 200) -> str:
    """``text``, cut to ``limit`` characters: an answer never echoes a caller's megabyte."""
    return text if len(text) <= limit else text[:limit] + "…"


def install_error_handlers(app: FastAPI, routes: list[BaseRoute]) -> None:
    """Answer the router's own 404 and 405 (and any stray validation error) in JSON.

    ``routes`` are the gateway's routes: a 405 lists every method its path answers, not
    only those of the first route that matched the path.
    """

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return error_response(404, f"no such gateway path: {_bounded(request.url.path)}")
        if exc.status_code == 405:
            allowed = _allowed_methods(routes, request)
            return error_response(
                405,
                f"{request.method} is not allowed here; use {', '.join(allowed)}",
                headers={"Allow": ", ".join(allowed)},
            )
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    async def validation_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return render(from_validation(exc))

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
