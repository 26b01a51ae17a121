"""``GET /instances/{ref}/history``: an instance's records, from the bot's own store.

A full id the bot has recorded is answered without asking the backend, so the history of
a deleted instance, or during a backend outage, is still there.
"""

from __future__ import annotations

from bot.gateway.dependencies import Call
from bot.gateway.models import HistoryOut, RestartOut, StatusChangeOut
from bot.store.queries import is_known_instance, restart_history, status_history


async def read_history(call: Call, ref: str, *, limit: int) -> HistoryOut:
    """The latest ``limit`` status changes and restarts of the instance ``ref`` names."""
    db = call.deps.db
    async with db.session() as session:
        known = await is_known_instance(session, ref)
    instance_id = ref if known else (await call.resolve(ref)).id
    call.draft.instance_id = instance_id
    async with db.session() as session:
        changes = await status_history(session, instance_id, limit=limit)
        restarts = await restart_history(session, instance_id, limit=limit)
    return HistoryOut(
        instance_id=instance_id,
        changes=[StatusChangeOut.model_validate(change) for change in changes],
        restarts=[RestartOut.model_validate(restart) for restart in restarts],
    )
