"""The envelope of every gateway call: one audit row and one command count, whatever happens.

:class:`AuditedRoute` is the route class of the gateway's router (FastAPI's extension point
for wrapping a route's handler). Before FastAPI solves the route's dependencies it opens
the audit draft (source ``gateway``, the route's name as the action, ``METHOD path?query``
as the arguments, the path's reference as the instance until one is resolved); after the
route answered or raised it turns the error into the gateway's JSON answer, writes the row
(``refused``, ``usage``, ``error`` or ``ok``) and counts the command, before the answer
leaves, so a caller who has the answer also has the row.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from bot.gateway.dependencies import DRAFT_STATE, gateway_deps
from bot.gateway.errors import as_gateway_error, render
from bot.store.audit import AuditDraft

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def open_draft(request: Request, action: str) -> AuditDraft:
    """The audit row of ``request`` before anyone is identified."""
    query = request.url.query
    return AuditDraft(
        user_id="gateway:unknown",
        channel_id=None,
        source="gateway",
        action=action,
        args=f"{request.method} {request.url.path}" + (f"?{query}" if query else ""),
        instance_id=request.path_params.get("ref"),
    )


class AuditedRoute(APIRoute):
    """A gateway route: its ``name`` is the audited action (``list``, ``pause``, …)."""

    def get_route_handler(self) -> Handler:
        """FastAPI's handler for this route, inside the audit envelope."""
        handler = super().get_route_handler()
        action = self.name

        async def audited(request: Request) -> Response:
            draft = open_draft(request, action)
            setattr(request.state, DRAFT_STATE, draft)
            deps = gateway_deps(request)
            try:
                response = await handler(request)
            except Exception as exc:  # every failure is answered, and audited, here
                error = as_gateway_error(exc, action=action)
                draft.fail(error.result, error.detail)
                response = render(error)
            await deps.audit.write(draft)
            if deps.metrics is not None:
                deps.metrics.observe_command(action, draft.result, source="gateway")
            return response

        return audited
