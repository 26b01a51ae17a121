"""Helpers shared by the handlers: resolving what the user typed to an instance."""

from __future__ import annotations

import logging

from bot.backend.errors import InstanceNotFound
from bot.backend.models import Instance
from bot.backend.refs import pick_instance
from bot.catalog import SPECS, Subcommand
from bot.slack.invocation import Invocation
from bot.slack.services import Services
from bot.store.queries import known_instances

log = logging.getLogger(__name__)


async def resolve(svc: Services, inv: Invocation, ref: str, subcommand: Subcommand) -> Instance:
    """The instance ``ref`` names (id, unique prefix or exact name), from the backend.

    ``subcommand`` says whether it acts: an action needs 4 characters of an id prefix.
    """
    instance = await svc.deps.backend.resolve(ref, acting=SPECS[subcommand].acts)
    inv.draft.instance_id = instance.id
    return instance


async def resolve_past(
    svc: Services, inv: Invocation, ref: str, subcommand: Subcommand
) -> Instance:
    """Like :func:`resolve`, but also finds instances that are gone from the backend.

    History and audit outlive instances: a killed one is still found by the store's
    record of it.
    """
    try:
        return await resolve(svc, inv, ref, subcommand)
    except InstanceNotFound:
        async with svc.deps.db.session() as session:
            rows = await known_instances(session)
        remembered = [
            Instance.model_validate(
                {"id": row.id, "name": row.name, "region": row.region, "status": row.status}
            )
            for row in rows
        ]
        instance = pick_instance(ref, remembered, acting=SPECS[subcommand].acts)
        inv.draft.instance_id = instance.id
        return instance
