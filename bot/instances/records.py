"""What an action leaves in the store, written in one transaction whatever its source.

* when the status differs from the one the action started from: a status change naming
  the actor (cause ``user`` or ``monitor``, ``source``, reason ``"<verb> <where>"``), and
  the instance row gets the new status, so the monitor's next sweep does not record the
  same change again as one it discovered;
* for a restart, the attempt: ok unless it failed, with the error when it did.

A refused call changed nothing, so a refused restart records only the failed attempt.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.backend.models import Instance
from bot.instances.actor import Actor, Verb
from bot.instances.outcome import Done, Failed, Pending
from bot.store.database import Database
from bot.store.queries import record_restart, record_status_change, upsert_instances
from bot.store.records import InstanceSnapshot

log = logging.getLogger(__name__)


async def record_action(
    db: Database,
    *,
    at: datetime,
    actor: Actor,
    instance_id: str,
    result: Done | Failed | Pending,
) -> None:
    """Record ``result`` of ``actor``'s action on ``instance_id``. Never raises.

    The action happened whatever the store says; a failed write is logged, and the next
    sweep records the status the monitor sees.
    """
    verb = result.verb
    before_raw = result.before.status_raw if result.before is not None else None
    refused = isinstance(result, Failed) and result.exc is not None
    after_raw = None if refused else result.status
    changed = after_raw is not None and (
        before_raw is None or before_raw.lower() != after_raw.lower()
    )
    # The name and region: from the instance as last seen, else as it was.
    known: Instance | None = result.instance or result.before

    async def write(session: AsyncSession) -> None:
        # An unchanged status leaves the row alone: it may hold what the monitor derived
        # (a stale heartbeat), and the monitor must still see the recovery itself.
        if changed and after_raw is not None:
            snapshot = InstanceSnapshot(
                instance_id,
                known.name if known is not None else None,
                known.region if known is not None else None,
                after_raw,
            )
            await upsert_instances(session, instances=[snapshot], seen_at=at)
            await record_status_change(
                session,
                instance_id=instance_id,
                from_status=before_raw,
                to_status=after_raw,
                at=at,
                cause=actor.cause,
                actor=actor.stored_id,
                reason=actor.reason(verb),
                source=actor.source.value,
            )
        if verb is Verb.RESTART:
            failed = isinstance(result, Failed)
            await record_restart(
                session,
                instance_id=instance_id,
                at=at,
                cause=actor.cause,
                actor=actor.stored_id,
                ok=not failed,
                error=result.error if isinstance(result, Failed) else None,
                source=actor.source.value,
            )

    try:
        await db.run(write)
    except Exception:
        log.exception("could not record the %s of %s in the store", verb.value, instance_id)
