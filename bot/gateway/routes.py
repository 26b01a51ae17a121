"""The gateway's endpoints: instance management over HTTP, JSON in and out.

Endpoints are plain ``async def`` functions; :func:`gateway_router` registers them in one
place, each with its action (the route's ``name``, which the audit row and the command
count use), its answers and its OpenAPI text. The role an endpoint needs is its ``call``
parameter's guard: the role Slack needs for the same subcommand (``bot.catalog.SPECS``).
The work is one call (:mod:`bot.gateway.actions`, :mod:`bot.gateway.history` or the
backend client), then the presentation of its result.

``{ref}`` is what Slack users type too: a full id, a unique id prefix or an exact name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, get_type_hints

from fastapi import APIRouter, Depends, Response

from bot.backend.models import Instance
from bot.catalog import Subcommand
from bot.gateway import actions
from bot.gateway.dependencies import Call, RoleGuard, guard_for
from bot.gateway.envelope import AuditedRoute
from bot.gateway.errors import CREATE_ERRORS, READ_ERRORS, WRITE_ERRORS, error_responses
from bot.gateway.history import read_history
from bot.gateway.models import CreateInstanceIn, HealthOut, HistoryOut, InstanceOut
from bot.gateway.params import (
    DEFAULT_HISTORY,
    SPEC_BODY,
    HistoryLimit,
    Ref,
    RegionFilter,
    StatusFilter,
    instance_spec,
)

# The call of a caller whose role Slack would let run this subcommand. Every endpoint
# takes it first: FastAPI solves dependencies in parameter order, so the key is judged
# before anything else.
Lists = Annotated[Call, Depends(guard_for(Subcommand.LIST))]
Creates = Annotated[Call, Depends(guard_for(Subcommand.CREATE))]
Kills = Annotated[Call, Depends(guard_for(Subcommand.KILL))]
Pauses = Annotated[Call, Depends(guard_for(Subcommand.PAUSE))]
Restarts = Annotated[Call, Depends(guard_for(Subcommand.RESTART))]
ReadsHealth = Annotated[Call, Depends(guard_for(Subcommand.HEALTH))]
ReadsHistory = Annotated[Call, Depends(guard_for(Subcommand.HISTORY))]
Spec = Annotated[CreateInstanceIn, Depends(instance_spec)]


def _matches(instance: Instance, status: str | None, region: str | None) -> bool:
    if status and instance.status != status.strip().lower():
        return False
    return not region or instance.region == region


async def list_instances(
    call: Lists, status: StatusFilter = None, region: RegionFilter = None
) -> list[InstanceOut]:
    """``GET /api/instances[?status=S&region=R]``."""
    instances = await call.deps.client.list_instances()
    return [call.present(i) for i in instances if _matches(i, status, region)]


async def create_instance(call: Creates, spec: Spec) -> InstanceOut:
    """``POST /api/instances`` with ``{"name": …, "region": …}`` (both optional)."""
    return call.present(await actions.create(call, spec))


async def get_instance(call: Lists, ref: Ref) -> InstanceOut:
    """``GET /api/instances/{ref}``."""
    return call.present(await call.resolve(ref))


async def kill_instance(call: Kills, ref: Ref) -> None:
    """``DELETE /api/instances/{ref}``: terminate it (admin); 204 when the backend accepted."""
    await actions.perform(call, "kill", ref)


async def pause_instance(call: Pauses, ref: Ref) -> InstanceOut:
    """``POST /api/instances/{ref}/pause``."""
    return call.present(await actions.perform(call, "pause", ref))


async def restart_instance(call: Restarts, ref: Ref) -> InstanceOut:
    """``POST /api/instances/{ref}/restart``."""
    return call.present(await actions.perform(call, "restart", ref))


async def instance_health(call: ReadsHealth, ref: Ref) -> HealthOut:
    """``GET /api/instances/{ref}/health``."""
    instance = await call.resolve(ref)
    return call.present_health(await call.deps.client.get_health(instance.id))


async def instance_history(
    call: ReadsHistory, ref: Ref, limit: HistoryLimit = DEFAULT_HISTORY
) -> HistoryOut:
    """``GET /api/instances/{ref}/history[?limit=N]``: from the bot's own records."""
    return await read_history(call, ref, limit=limit)


def _guard_of(endpoint: Callable[..., Any]) -> RoleGuard:
    """The guard of ``endpoint``'s ``call`` parameter: the document says what the code checks."""
    hint = get_type_hints(endpoint, include_extras=True)["call"]
    for meta in getattr(hint, "__metadata__", ()):
        guard = getattr(meta, "dependency", None)
        if isinstance(guard, RoleGuard):
            return guard
    raise TypeError(f"{endpoint.__name__} takes no guarded call")


def gateway_router() -> APIRouter:
    """Every endpoint, each under its action name; paths are relative to the gateway's mount."""
    router = APIRouter(route_class=AuditedRoute)

    def add(
        method: str,
        path: str,
        endpoint: Callable[..., Any],
        *,
        action: str,
        operation_id: str,
        summary: str,
        answers: str,
        errors: tuple[int, ...],
        **more: Any,
    ) -> None:
        options: dict[str, Any] = {
            "name": action,
            "summary": summary,
            "description": f"Needs the {_guard_of(endpoint).role.label} role.",
            "response_description": answers,
            "responses": error_responses(*errors),
            **more,
        }
        router.add_api_route(path, endpoint, methods=[method], operation_id=operation_id, **options)
        if method == "GET":  # HEAD is answered as GET is, and left out of the document
            router.add_api_route(
                path, endpoint, methods=["HEAD"], include_in_schema=False, **options
            )

    add(
        "GET",
        "/instances",
        list_instances,
        action="list",
        operation_id="listInstances",
        summary="List instances",
        answers="Every instance (filtered when asked).",
        errors=READ_ERRORS,
    )
    add(
        "POST",
        "/instances",
        create_instance,
        action="create",
        operation_id="createInstance",
        summary="Create an instance",
        answers="The new instance, as the backend describes it.",
        errors=CREATE_ERRORS,
        status_code=201,
        openapi_extra=SPEC_BODY,
    )
    add(
        "GET",
        "/instances/{ref}",
        get_instance,
        action="get",
        operation_id="getInstance",
        summary="Show one instance",
        answers="The instance.",
        errors=READ_ERRORS,
    )
    add(
        "DELETE",
        "/instances/{ref}",
        kill_instance,
        action="kill",
        operation_id="killInstance",
        summary="Terminate an instance",
        answers="The backend accepted the kill.",
        errors=WRITE_ERRORS,
        status_code=204,
        response_class=Response,
    )
    add(
        "POST",
        "/instances/{ref}/pause",
        pause_instance,
        action="pause",
        operation_id="pauseInstance",
        summary="Pause a running instance",
        answers="The instance after the request.",
        errors=WRITE_ERRORS,
    )
    add(
        "POST",
        "/instances/{ref}/restart",
        restart_instance,
        action="restart",
        operation_id="restartInstance",
        summary="Restart (or resume) an instance",
        answers="The instance after the request.",
        errors=WRITE_ERRORS,
    )
    add(
        "GET",
        "/instances/{ref}/health",
        instance_health,
        action="health",
        operation_id="instanceHealth",
        summary="An instance's health",
        answers="CPU, memory, disk, uptime and heartbeat.",
        errors=READ_ERRORS,
    )
    add(
        "GET",
        "/instances/{ref}/history",
        instance_history,
        action="history",
        operation_id="instanceHistory",
        summary="Recorded status changes and restarts",
        answers="Newest first, from the bot's own records.",
        errors=READ_ERRORS,
    )
    return router
