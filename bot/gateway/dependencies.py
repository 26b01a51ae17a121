"""The gateway's FastAPI dependencies: what it talks to, who is calling, and whether they may.

A route declares what it does with one parameter, ``call: Annotated[Call,
Depends(guard_for(Subcommand.PAUSE))]``: :func:`authenticate` finds the caller of the
``X-API-Key`` header (401 without one), the :class:`RoleGuard` compares the caller's role
with the one Slack needs for the same subcommand (``bot.catalog.SPECS``, the one table of
roles; 403 below it), and the route gets a :class:`Call`. FastAPI solves a route's
dependencies in the order of its parameters, so routes put the guard first: a caller
without a valid key is refused before any body is read or parameter judged, as it always
was.

Both outcomes land in the request's audit row (:func:`audit_draft`), which
:class:`bot.gateway.envelope.AuditedRoute` opens before and writes after every call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from bot.backend.client import InstanceClient
from bot.backend.models import HealthInfo, Instance
from bot.catalog import SPECS, Role, Subcommand
from bot.gateway.auth import HEADER, Caller, KeyRing
from bot.gateway.auth_failures import AuthFailures
from bot.gateway.errors import GatewayError
from bot.gateway.models import HealthOut, InstanceOut
from bot.instances import InstanceActions
from bot.metrics import Metrics
from bot.store.audit import AuditDraft, AuditLog
from bot.store.database import Database

# Where the route class leaves the request's audit draft for the dependencies.
DRAFT_STATE = "gateway_audit_draft"


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
    # Refused requests without a valid key: 429 past the limit, one audit row a minute.
    auth_failures: AuthFailures = field(default_factory=AuthFailures)

    def with_actions(self) -> GatewayDeps:
        """These deps with an instance-action service: the given one, or one of their own."""
        if self.actions is not None:
            return self
        return replace(self, actions=InstanceActions(self.client, self.db, clock=self.clock))


@dataclass
class Call:
    """One authorised call: the dependencies, the caller, and the audit row being filled."""

    deps: GatewayDeps
    caller: Caller
    draft: AuditDraft
    # The role the route needs: above a viewer's, the route acts (bot.catalog.Role.acts).
    needs: Role = Role.VIEWER

    def present(self, instance: Instance) -> InstanceOut:
        """``instance`` as the gateway shows it, its heartbeat judged now."""
        return InstanceOut.build(
            instance, now=self.deps.clock(), timeout_secs=self.deps.heartbeat_timeout_secs
        )

    def present_health(self, health: HealthInfo) -> HealthOut:
        """``health`` as the gateway shows it, its heartbeat judged now."""
        return HealthOut.build(
            health, now=self.deps.clock(), timeout_secs=self.deps.heartbeat_timeout_secs
        )

    @property
    def actions(self) -> InstanceActions:
        """The one instance-action service (:meth:`GatewayDeps.with_actions` built it)."""
        if self.deps.actions is None:
            raise RuntimeError("the gateway app was built without instance actions")
        return self.deps.actions

    async def resolve(self, ref: str) -> Instance:
        """The instance ``ref`` names (id, unique prefix or name); the audit row gets its id.

        A route that acts needs 4 characters of an id prefix, as in Slack and the CLI.
        """
        instance = await self.deps.client.resolve(ref, acting=self.needs.acts)
        self.draft.instance_id = instance.id
        return instance


def gateway_deps(request: Request) -> GatewayDeps:
    """What the gateway app was built with (:func:`bot.gateway.app.create_gateway_app`)."""
    deps = request.app.state.gateway
    if not isinstance(deps, GatewayDeps):
        raise TypeError("the gateway app was built without its GatewayDeps")
    return deps


def audit_draft(request: Request) -> AuditDraft:
    """This request's audit row, opened by :class:`bot.gateway.envelope.AuditedRoute`."""
    draft = getattr(request.state, DRAFT_STATE, None)
    if not isinstance(draft, AuditDraft):
        raise TypeError("a gateway route must be an AuditedRoute")
    return draft


api_key = APIKeyHeader(
    name=HEADER,
    scheme_name="apiKey",
    description="A gateway key (STARPOD_GATEWAY_KEYS); its role decides what it may do.",
    auto_error=False,  # the gateway answers a missing key itself, in its own JSON shape
)

Deps = Annotated[GatewayDeps, Depends(gateway_deps)]
Draft = Annotated[AuditDraft, Depends(audit_draft)]


async def authenticate(
    request: Request, key: Annotated[str | None, Security(api_key)], deps: Deps, draft: Draft
) -> Caller:
    """The caller owning the presented key; 401 without one, 429 past the client's limit.

    Both refusals are counted in the client's audit row of the minute
    (:mod:`bot.gateway.auth_failures`), not in a row of their own. A throttled client is
    refused before its key is compared, so the answer says nothing about the key.
    """
    failures = deps.auth_failures
    client = failures.client_of(request.client.host if request.client else None)
    now = deps.clock()
    wait = failures.retry_after(client, now)
    if wait is not None:
        draft.counted_elsewhere()
        await failures.refused(client, now, deps.audit, throttled=True)
        raise GatewayError(
            429,
            f"too many requests without a valid {HEADER} header; retry after {wait} s",
            result="refused",
            headers={"Retry-After": str(wait)},
        )
    caller = deps.keys.identify(key)
    if caller is None:
        draft.counted_elsewhere()
        await failures.refused(client, now, deps.audit, guessed=bool(key))
        raise GatewayError(401, f"missing or unknown {HEADER} header", result="refused")
    draft.user_id = caller.actor
    return caller


class RoleGuard:
    """A dependency letting through callers with at least ``role``; 403 for the others."""

    def __init__(self, role: Role) -> None:
        self.role = role

    def __repr__(self) -> str:
        return f"RoleGuard({self.role.label})"

    async def __call__(
        self, caller: Annotated[Caller, Depends(authenticate)], deps: Deps, draft: Draft
    ) -> Call:
        """The call, when ``caller`` may make it."""
        if caller.role < self.role:
            raise GatewayError(
                403,
                f"the {self.role.label} role is needed to {draft.action} "
                f"(key {caller.name!r} is a {caller.role.label})",
                result="refused",
            )
        return Call(deps=deps, caller=caller, draft=draft, needs=self.role)


@cache
def guard_for(subcommand: Subcommand) -> RoleGuard:
    """The guard of the role Slack needs for ``subcommand`` (one guard per role)."""
    return _GUARDS[SPECS[subcommand].role]


_GUARDS = {role: RoleGuard(role) for role in Role}
