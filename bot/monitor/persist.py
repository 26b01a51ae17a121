"""The monitor's batched writes and reads, on top of :mod:`bot.store.queries`.

A sweep may record thousands of status changes at once (the first sweep of a fleet, a
storm), so they are inserted in one ``executemany`` here rather than one flush each.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.monitor.tracking import Change
from bot.store.models import InstanceRow, StatusChange
from bot.store.queries import restarts_since

# Ids per IN (...) list: well under both dialects' bound-parameter limits.
_IN_CHUNK = 500
_ROW_CHUNK = 2000
# A default slice (1,000 ids) in one statement: each statement costs ~1 ms of CPU.
_SLICE_IN_CHUNK = 1000
_INSTANCES = cast(Table, InstanceRow.__table__)


async def statuses_of(session: AsyncSession, instance_ids: Sequence[str]) -> dict[str, str]:
    """The stored status of each given instance that has a row (one slice of a sweep)."""
    found: dict[str, str] = {}
    for start in range(0, len(instance_ids), _SLICE_IN_CHUNK):
        chunk = instance_ids[start : start + _SLICE_IN_CHUNK]
        # Plain rows through the connection: no ORM loading for thousands of pairs.
        conn = await session.connection()
        rows = await conn.execute(
            select(_INSTANCES.c.id, _INSTANCES.c.status).where(_INSTANCES.c.id.in_(chunk))
        )
        found.update(rows.all())
    return found


async def latest_recorded_statuses(
    session: AsyncSession, instance_ids: Sequence[str]
) -> dict[str, str]:
    """The ``to_status`` of the newest recorded status change of each given instance."""
    found: dict[str, str] = {}
    for start in range(0, len(instance_ids), _IN_CHUNK):
        chunk = instance_ids[start : start + _IN_CHUNK]
        newest = (
            select(func.max(StatusChange.id))
            .where(StatusChange.instance_id.in_(chunk))
            .group_by(StatusChange.instance_id)
        )
        rows = await session.execute(
            select(StatusChange.instance_id, StatusChange.to_status).where(
                StatusChange.id.in_(newest)
            )
        )
        found.update({row.instance_id: row.to_status for row in rows})
    return found


async def record_changes(session: AsyncSession, *, changes: Sequence[Change], at: datetime) -> None:
    """Append status changes in batched inserts (their instances must already be stored)."""
    rows = [
        {
            "instance_id": c.instance.id,
            "from_status": c.from_status,
            "to_status": c.to_status,
            "at": at,
            "cause": c.cause,
            "actor": None,
            "reason": c.reason,
        }
        for c in changes
    ]
    stmt = insert(cast(Table, StatusChange.__table__))
    for start in range(0, len(rows), _ROW_CHUNK):
        await session.execute(stmt, rows[start : start + _ROW_CHUNK])


async def auto_restart_times(
    session: AsyncSession, instance_id: str, *, since: datetime
) -> list[datetime]:
    """When the monitor restarted this instance since ``since`` (user restarts do not count)."""
    return [r.at for r in await restarts_since(session, instance_id, since) if r.cause == "monitor"]
