"""The gateway's endpoints: instance management over HTTP, JSON in and out.

Every call goes through :meth:`Gateway._call`, which authenticates the key, checks the role
the action needs (the same table as Slack's: ``bot.catalog.SPECS``), runs the action,
turns errors into ``{"error": "...", "status": n}`` and writes one audit row (source
``gateway``, user ``gateway:<key name>``), allowed or refused.

``{id}`` is what Slack users type too: a full id, a unique id prefix or an exact name.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.backend.client import InstanceClient
from bot.backend.errors import (
    AmbiguousInstance,
    BackendError,
    BackendStatusError,
    BackendUnavailable,
    InstanceNotFound,
)
from bot.backend.models import Instance
from bot.catalog import SPECS, Subcommand
from bot.errors import StarpodBotError
from bot.gateway.auth import HEADER, Caller, KeyRing
from bot.gateway.models import (
    MAX_HISTORY,
    CreateInstanceIn,
    HealthOut,
    HistoryOut,
    InstanceOut,
    RestartOut,
    StatusChangeOut,
)
from bot.instances import Actor, Busy, Failed, InstanceActions, Verb
from bot.metrics import Metrics
from bot.store.audit import AuditDraft, AuditLog
from bot.store.database import Database
from bot.store.models import InstanceRow, RestartAttempt
from bot.store.queries import status_history

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# Starlette routes a function to GET only unless told; the gateway answers every method.
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
DEFAULT_HISTORY = 20
# Backend answers passed on as they are; any other failure of the backend is ours (502).
_PASSED_ON = frozenset({400, 404, 409, 422})

# action → the Slack subcommand whose role it needs.
ACTION_ROLES: dict[str, Subcommand] = {
    "list": Subcommand.LIST,
    "get": Subcommand.LIST,
    "create": Subcommand.CREATE,
    "kill": Subcommand.KILL,
    "pause": Subcommand.PAUSE,
    "restart": Subcommand.RESTART,
    "health": Subcommand.HEALTH,
    "history": Subcommand.HISTORY,
}


class GatewayError(StarpodBotError):
    """An answer other than success: its status, message and audit result."""

    def __init__(
        self, status: int, message: str, *, result: str, candidates: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.result = result
        self.candidates = candidates


def error_response(
    status: int,
    message: str,
    *,
    candidates: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The JSON body every error has."""
    body: dict[str, Any] = {"error": message, "status": status}
    if candidates is not None:
        body["candidates"] = candidates
    return JSONResponse(body, status_code=status, headers=headers)


def _from_backend(exc: BackendError) -> GatewayError:
    """Translate a backend error once, here (architecture rule 6)."""
    if isinstance(exc, AmbiguousInstance):
        return GatewayError(
            409, str(exc), result="usage", candidates=[c.id for c in exc.candidates]
        )
    if isinstance(exc, InstanceNotFound):
        return GatewayError(404, str(exc), result="usage")
    if isinstance(exc, BackendStatusError) and exc.status_code in _PASSED_ON:
        return GatewayError(exc.status_code, str(exc), result="error")
    if isinstance(exc, BackendUnavailable):
        return GatewayError(503, str(exc), result="error")
    return GatewayError(502, str(exc), result="error")


def _json(model: BaseModel, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


@dataclass
class GatewayDeps:
    """What the gateway talks to. ``clock`` returns aware datetimes."""

    client: InstanceClient
    db: Database
    keys: KeyRing
    audit: AuditLog
    clock: Callable[[], datetime]
    heartbeat_timeout_secs: float = 90.0
    metrics: Metrics | None = None
    # The instance actions (built on ``client`` and ``db`` when not given).
    actions: InstanceActions | None = None


Action = Callable[[Request, Caller, AuditDraft], Awaitable[Response]]


class Gateway:
    """The endpoints, bound to their dependencies."""

    def __init__(self, deps: GatewayDeps) -> None:
        self.deps = deps
        self.actions = deps.actions or InstanceActions(deps.client, deps.db, clock=deps.clock)

    # -- the envelope every call goes through -------------------------------------------------

    async def _call(self, request: Request, action: str, fn: Action) -> Response:
        caller = self.deps.keys.identify(request.headers.get(HEADER))
        draft = AuditDraft(
            user_id=caller.actor if caller else "gateway:unknown",
            channel_id=None,
            source="gateway",
            action=action,
            args=f"{request.method} {request.url.path}"
            + (f"?{request.url.query}" if request.url.query else ""),
            instance_id=request.path_params.get("ref"),
        )
        try:
            if caller is None:
                raise GatewayError(401, f"missing or unknown {HEADER} header", result="refused")
            needed = SPECS[ACTION_ROLES[action]].role
            if caller.role < needed:
                raise GatewayError(
                    403,
                    f"the {needed.label} role is needed to {action} "
                    f"(key {caller.name!r} is a {caller.role.label})",
                    result="refused",
                )
            response = await fn(request, caller, draft)
        except GatewayError as exc:
            draft.fail(exc.result, f"{exc.status}: {exc.message}")
            headers = {"WWW-Authenticate": HEADER} if exc.status == 401 else None
            response = error_response(
                exc.status, exc.message, candidates=exc.candidates, headers=headers
            )
        except BackendError as exc:
            err = _from_backend(exc)
            draft.fail(err.result, f"{err.status}: {err.message}")
            response = error_response(err.status, err.message, candidates=err.candidates)
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception("gateway %s failed (error id %s)", action, error_id)
            draft.fail("error", f"internal error {error_id}")
            response = error_response(500, f"internal error; the bot's log has id {error_id}")
        await self.deps.audit.write(draft)
        if self.deps.metrics is not None:
            self.deps.metrics.observe_command(action, draft.result, source="gateway")
        return response

    # -- helpers ------------------------------------------------------------------------------

    def _out(self, instance: Instance) -> InstanceOut:
        return InstanceOut.build(
            instance, now=self.deps.clock(), timeout_secs=self.deps.heartbeat_timeout_secs
        )

    async def _resolve(self, request: Request, draft: AuditDraft) -> Instance:
        instance = await self.deps.client.resolve(request.path_params["ref"])
        draft.instance_id = instance.id
        return instance

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise GatewayError(413, f"body larger than {MAX_BODY_BYTES} bytes", result="usage")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise GatewayError(413, f"body larger than {MAX_BODY_BYTES} bytes", result="usage")
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise GatewayError(400, "the body is not JSON", result="usage") from None
        if not isinstance(data, dict):
            raise GatewayError(422, "the body must be a JSON object", result="usage")
        return data

    # -- endpoints ----------------------------------------------------------------------------

    async def list_instances(self, request: Request) -> Response:
        """``GET /api/instances[?status=S&region=R]``."""

        async def act(request: Request, _caller: Caller, _draft: AuditDraft) -> Response:
            instances = await self.deps.client.list_instances()
            status = request.query_params.get("status")
            region = request.query_params.get("region")
            if status:
                instances = [i for i in instances if i.status == status.strip().lower()]
            if region:
                instances = [i for i in instances if i.region == region]
            body = "[" + ",".join(self._out(i).model_dump_json() for i in instances) + "]"
            return Response(body, media_type="application/json")

        return await self._call(request, "list", act)

    async def create_instance(self, request: Request) -> Response:
        """``POST /api/instances`` with ``{"name": …, "region": …}`` (both optional)."""

        async def act(request: Request, caller: Caller, draft: AuditDraft) -> Response:
            data = await self._body(request)
            try:
                spec = CreateInstanceIn.model_validate(data)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "body"
                raise GatewayError(422, f"{where}: {first['msg']}", result="usage") from None
            result = await self.actions.create(
                Actor.gateway(caller.actor), name=spec.name, region=spec.region, wait=False
            )
            if isinstance(result, Failed) and result.exc is not None:
                raise result.exc
            assert result.instance is not None  # only a refused create has none
            draft.instance_id = result.instance.id
            return _json(self._out(result.instance), 201)

        return await self._call(request, "create", act)

    async def get_instance(self, request: Request) -> Response:
        """``GET /api/instances/{id}``."""

        async def act(request: Request, _caller: Caller, draft: AuditDraft) -> Response:
            return _json(self._out(await self._resolve(request, draft)))

        return await self._call(request, "get", act)

    async def kill_instance(self, request: Request) -> Response:
        """``DELETE /api/instances/{id}``: terminate it (admin)."""

        async def act(request: Request, caller: Caller, draft: AuditDraft) -> Response:
            await self._act(Verb.KILL, await self._resolve(request, draft), caller)
            return Response(status_code=204)

        return await self._call(request, "kill", act)

    async def pause_instance(self, request: Request) -> Response:
        """``POST /api/instances/{id}/pause``."""
        return await self._call(request, "pause", self._transition(Verb.PAUSE))

    async def restart_instance(self, request: Request) -> Response:
        """``POST /api/instances/{id}/restart``."""
        return await self._call(request, "restart", self._transition(Verb.RESTART))

    def _transition(self, verb: Verb) -> Action:
        async def act(request: Request, caller: Caller, draft: AuditDraft) -> Response:
            before = await self._resolve(request, draft)
            after = await self._act(verb, before, caller)
            return _json(self._out(after or before))

        return act

    async def _act(self, verb: Verb, instance: Instance, caller: Caller) -> Instance | None:
        """Run ``verb`` through the instance actions: locked, recorded, answered at once.

        The instance as the backend's answer shows it; a refusal raises the backend's
        error, another action in progress is a 409.
        """
        result = await self.actions.run(verb, instance, Actor.gateway(caller.actor), wait=False)
        if isinstance(result, Busy):
            running = result.running
            raise GatewayError(
                409,
                f"{instance.label}: a {running.verb} by {running.actor or running.source} "
                f"is already in progress (for {result.age_secs:.0f} s)",
                result="error",
            )
        if isinstance(result, Failed) and result.exc is not None:
            raise result.exc
        return result.instance

    async def instance_health(self, request: Request) -> Response:
        """``GET /api/instances/{id}/health``."""

        async def act(request: Request, _caller: Caller, draft: AuditDraft) -> Response:
            instance = await self._resolve(request, draft)
            health = await self.deps.client.get_health(instance.id)
            return _json(
                HealthOut.build(
                    health, now=self.deps.clock(), timeout_secs=self.deps.heartbeat_timeout_secs
                )
            )

        return await self._call(request, "health", act)

    async def instance_history(self, request: Request) -> Response:
        """``GET /api/instances/{id}/history[?limit=N]``: from the bot's own records.

        A full id the bot has recorded is answered without asking the backend, so the
        history of a deleted instance, or during a backend outage, is still there.
        """

        async def act(request: Request, _caller: Caller, draft: AuditDraft) -> Response:
            limit = _limit(request.query_params.get("limit"))
            ref = request.path_params["ref"]
            async with self.deps.db.session() as session:
                known = await session.get(InstanceRow, ref)
            instance_id = ref if known is not None else (await self._resolve(request, draft)).id
            draft.instance_id = instance_id
            async with self.deps.db.session() as session:
                changes = await status_history(session, instance_id, limit=limit)
                restarts = list(
                    await session.scalars(
                        select(RestartAttempt)
                        .where(RestartAttempt.instance_id == instance_id)
                        .order_by(RestartAttempt.at.desc(), RestartAttempt.id.desc())
                        .limit(limit)
                    )
                )
            return _json(
                HistoryOut(
                    instance_id=instance_id,
                    changes=[
                        StatusChangeOut(
                            at=c.at,
                            from_status=c.from_status,
                            to_status=c.to_status,
                            cause=c.cause,
                            actor=c.actor,
                            reason=c.reason,
                        )
                        for c in changes
                    ],
                    restarts=[
                        RestartOut(at=r.at, cause=r.cause, actor=r.actor, ok=r.ok, error=r.error)
                        for r in restarts
                    ],
                )
            )

        return await self._call(request, "history", act)


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_HISTORY
    text = raw.strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_HISTORY:
        raise GatewayError(
            422, f"limit must be a whole number from 1 to {MAX_HISTORY}", result="usage"
        )
    return int(text)


def _by_method(path: str, **handlers: Callable[[Request], Awaitable[Response]]) -> Route:
    """One route per path for every method, so a wrong one gets the gateway's JSON 405."""
    allowed = [*handlers, "HEAD"] if "GET" in handlers else list(handlers)

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        handler = handlers.get(method)
        if handler is None:
            return error_response(
                405,
                f"{request.method} is not allowed here; use {', '.join(allowed)}",
                headers={"Allow": ", ".join(allowed)},
            )
        return await handler(request)

    return Route(path, endpoint, methods=ALL_METHODS)


def gateway_routes(
    deps: GatewayDeps, *, openapi: dict[str, Any], prefix: str = "/api"
) -> list[BaseRoute]:
    """The gateway's routes under ``prefix``, to add to the bot's web app.

    Plain routes rather than a ``Mount``: a mount's pattern stops at a newline, and an
    id with one must still reach the gateway and get its JSON 404.
    """
    gateway = Gateway(deps)
    document = json.dumps(openapi).encode()

    async def openapi_json(_request: Request) -> Response:
        return Response(document, media_type="application/json")

    return [
        _by_method(f"{prefix}/openapi.json", GET=openapi_json),
        _by_method(f"{prefix}/instances", GET=gateway.list_instances, POST=gateway.create_instance),
        _by_method(
            f"{prefix}/instances/{{ref}}", GET=gateway.get_instance, DELETE=gateway.kill_instance
        ),
        _by_method(f"{prefix}/instances/{{ref}}/pause", POST=gateway.pause_instance),
        _by_method(f"{prefix}/instances/{{ref}}/restart", POST=gateway.restart_instance),
        _by_method(f"{prefix}/instances/{{ref}}/health", GET=gateway.instance_health),
        _by_method(f"{prefix}/instances/{{ref}}/history", GET=gateway.instance_history),
        Route(f"{prefix}/{{path:path}}", _not_found, methods=ALL_METHODS),
    ]


async def _not_found(request: Request) -> Response:
    return error_response(404, f"no such gateway path: {request.url.path}")


def gateway_off_routes(prefix: str = "/api") -> list[BaseRoute]:
    """What ``/api`` answers when no key is configured: 404 everywhere, saying why."""

    async def off(_request: Request) -> Response:
        return error_response(404, "the gateway is off: no gateway keys are configured")

    return [
        Route(prefix, off, methods=ALL_METHODS),
        Route(f"{prefix}/{{path:path}}", off, methods=ALL_METHODS),
    ]
