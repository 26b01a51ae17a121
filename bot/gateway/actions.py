"""The gateway's changing actions: create, and pause, restart or kill one instance.

Each route calls one function here and only presents its result: :func:`create` for
``POST /instances``, :func:`perform` for the actions on an instance. Both go through the
one instance-action service (:class:`bot.instances.InstanceActions`): it holds the
instance's lease in the database, asks the backend and records the outcome, naming the
caller (``gateway:<key name>``). The gateway answers at once (``wait=False``): the
backend's answer is the outcome; the sweep sees the rest.
"""

from __future__ import annotations

from typing import Literal, overload

from bot.backend.models import Instance
from bot.gateway.dependencies import Call
from bot.gateway.errors import GatewayError
from bot.gateway.models import CreateInstanceIn
from bot.instances import Actor, Busy, Failed, Verb

InstanceAction = Literal["pause", "restart", "kill"]
_VERBS: dict[InstanceAction, Verb] = {
    "pause": Verb.PAUSE,
    "restart": Verb.RESTART,
    "kill": Verb.KILL,
}


async def create(call: Call, spec: CreateInstanceIn) -> Instance:
    """Ask for a new instance; the audit row gets its id. A refusal raises the backend's error."""
    result = await call.actions.create(
        Actor.gateway(call.caller.actor), name=spec.name, region=spec.region, wait=False
    )
    if isinstance(result, Failed) and result.exc is not None:
        raise result.exc
    if result.instance is None:  # only a refused create has none
        raise RuntimeError(f"the create answered no instance: {result!r}")
    call.draft.instance_id = result.instance.id
    return result.instance


@overload
async def perform(call: Call, action: Literal["pause", "restart"], ref: str) -> Instance: ...
@overload
async def perform(call: Call, action: Literal["kill"], ref: str) -> None: ...
async def perform(call: Call, action: InstanceAction, ref: str) -> Instance | None:
    """Run ``action`` on the instance ``ref`` names.

    Returns the instance as the backend's answer shows it after a pause or restart, None
    after a kill. A refusal raises the backend's error; another action on the instance in
    progress (on any replica) is a 409.
    """
    before = await call.resolve(ref)
    result = await call.actions.run(
        _VERBS[action], before, Actor.gateway(call.caller.actor), wait=False
    )
    if isinstance(result, Busy):
        running = result.running
        raise GatewayError(
            409,
            f"{before.label}: a {running.verb} by {running.actor or running.source} "
            f"is already in progress (for {result.age_secs:.0f} s)",
            result="error",
        )
    if isinstance(result, Failed) and result.exc is not None:
        raise result.exc
    if action == "kill":
        return None
    return result.instance or before
