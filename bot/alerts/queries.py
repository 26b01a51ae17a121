"""Reads and small writes of the alerts tables; the session first, none commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.alert_models import FLEET_KEY, AlertIncident, AlertMute, AlertOutbox
from bot.store.models import InstanceRow, RestartAttempt, StatusChange

_IN_CHUNK = 500


async def prune_outbox(session: AsyncSession, *, before: datetime, batch: int) -> int:
    """Delete up to ``batch`` finished outbox rows (sent, superseded, failed) created before
    ``before``; pending rows are never deleted. Returns how many went."""
    old = (
        select(AlertOutbox.id)
        .where(
            AlertOutbox.state.in_(("sent", "superseded", "failed")),
            AlertOutbox.created_at < before,
        )
        .order_by(AlertOutbox.id)
        .limit(batch)
    )
    ids = list((await session.scalars(old)).all())
    if ids:
        await session.execute(
            delete(AlertOutbox)
            .where(AlertOutbox.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
    return len(ids)


async def incident_by_id(session: AsyncSession, incident_id: int) -> AlertIncident | None:
    """One incident, or None."""
    return await session.get(AlertIncident, incident_id)


async def open_incident(session: AsyncSession, instance_id: str) -> AlertIncident | None:
    """The open (or acknowledged) incident of one instance, if any."""
    return await session.scalar(select(AlertIncident).where(AlertIncident.open_key == instance_id))


async def open_fleet_incident(session: AsyncSession) -> AlertIncident | None:
    """The open fleet-wide incident (storm, backend unreachable), if any."""
    return await session.scalar(select(AlertIncident).where(AlertIncident.open_key == FLEET_KEY))


async def all_open_keys(session: AsyncSession) -> list[str]:
    """The ``open_key`` of every unresolved incident (instance ids and the fleet key)."""
    rows = await session.scalars(
        select(AlertIncident.open_key).where(AlertIncident.open_key.is_not(None))
    )
    return [key for key in rows if key is not None]


async def open_fleet_incident_id(session: AsyncSession) -> int | None:
    """The id of the open fleet incident, without loading its (possibly large) facts."""
    return await session.scalar(select(AlertIncident.id).where(AlertIncident.open_key == FLEET_KEY))


async def count_fleet_restart(session: AsyncSession) -> None:
    """Add one auto-restart to the open fleet incident, if there is one (one UPDATE)."""
    await session.execute(
        update(AlertIncident)
        .where(AlertIncident.open_key == FLEET_KEY)
        .values(restart_attempts=AlertIncident.restart_attempts + 1)
        .execution_options(synchronize_session=False)
    )


async def problem_instance_ids(session: AsyncSession) -> list[str]:
    """Instances whose last recorded status is a problem (``error``, ``unknown``)."""
    rows = await session.scalars(
        select(InstanceRow.id)
        .where(func.lower(InstanceRow.status).in_(("error", "unknown")))
        .order_by(InstanceRow.name, InstanceRow.id)
    )
    return list(rows)


async def open_keys_among(session: AsyncSession, instance_ids: Sequence[str]) -> set[str]:
    """Which of these instances have an open incident of their own."""
    found: set[str] = set()
    for start in range(0, len(instance_ids), _IN_CHUNK):
        chunk = list(instance_ids[start : start + _IN_CHUNK])
        rows = await session.scalars(
            select(AlertIncident.open_key).where(AlertIncident.open_key.in_(chunk))
        )
        found.update(key for key in rows if key is not None)
    return found


async def recently_resolved(
    session: AsyncSession, instance_id: str, *, since: datetime
) -> AlertIncident | None:
    """The instance's latest incident resolved at or after ``since`` (a candidate to reopen)."""
    return await session.scalar(
        select(AlertIncident)
        .where(
            AlertIncident.instance_id == instance_id,
            AlertIncident.state == "resolved",
            AlertIncident.resolved_at >= since,
        )
        .order_by(AlertIncident.resolved_at.desc(), AlertIncident.id.desc())
        .limit(1)
    )


async def unresolved_incidents(session: AsyncSession) -> list[AlertIncident]:
    """Open and acknowledged incidents, oldest first."""
    rows = await session.scalars(
        select(AlertIncident)
        .where(AlertIncident.open_key.is_not(None))
        .order_by(AlertIncident.opened_at, AlertIncident.id)
    )
    return list(rows)


async def changes_since(session: AsyncSession, instance_id: str, *, since: datetime) -> int:
    """Status changes of one instance after ``since`` that a user did not cause (flapping)."""
    count = await session.scalar(
        select(func.count(StatusChange.id)).where(
            StatusChange.instance_id == instance_id,
            StatusChange.at > since,
            StatusChange.cause != "user",
        )
    )
    return int(count or 0)


async def instance_row(session: AsyncSession, instance_id: str) -> InstanceRow | None:
    """What the store knows of one instance (name, last status), if anything."""
    return await session.get(InstanceRow, instance_id)


async def instance_names(session: AsyncSession, instance_ids: Sequence[str]) -> dict[str, str]:
    """Names of the given instances (unnamed ones are left out)."""
    names: dict[str, str] = {}
    for start in range(0, len(instance_ids), _IN_CHUNK):
        chunk = list(instance_ids[start : start + _IN_CHUNK])
        rows = await session.execute(
            select(InstanceRow.id, InstanceRow.name).where(InstanceRow.id.in_(chunk))
        )
        names.update({row.id: row.name for row in rows if row.name})
    return names


async def active_mute(
    session: AsyncSession, instance_id: str, *, now: datetime
) -> AlertMute | None:
    """The mute in force for one instance at ``now``, if any."""
    return await session.scalar(
        select(AlertMute)
        .where(
            AlertMute.instance_id == instance_id,
            AlertMute.ended_at.is_(None),
            AlertMute.until > now,
        )
        .order_by(AlertMute.id.desc())
        .limit(1)
    )


async def mutes_in_force(session: AsyncSession, *, now: datetime, limit: int) -> list[AlertMute]:
    """Mutes in force at ``now``, the soonest to end first (at most ``limit``)."""
    rows = await session.scalars(
        select(AlertMute)
        .where(AlertMute.ended_at.is_(None), AlertMute.until > now)
        .order_by(AlertMute.until, AlertMute.id)
        .limit(limit)
    )
    return list(rows)


async def unended_mutes(session: AsyncSession, instance_id: str) -> list[AlertMute]:
    """Every mute of one instance not yet ended (in force, or expired and not yet noticed)."""
    rows = await session.scalars(
        select(AlertMute).where(AlertMute.instance_id == instance_id, AlertMute.ended_at.is_(None))
    )
    return list(rows)


async def no_restart_mutes(session: AsyncSession, *, now: datetime) -> dict[str, datetime]:
    """Instance id → until, for mutes in force at ``now`` that also stop auto-restarts."""
    rows = await session.execute(
        select(AlertMute.instance_id, AlertMute.until).where(
            AlertMute.ended_at.is_(None), AlertMute.until > now, AlertMute.no_restart.is_(True)
        )
    )
    found: dict[str, datetime] = {}
    for row in rows:
        found[row.instance_id] = max(row.until, found.get(row.instance_id, row.until))
    return found


async def expired_mutes(session: AsyncSession, *, now: datetime) -> list[AlertMute]:
    """Mutes whose time is up but that nobody has ended yet (the expiry job ends them)."""
    rows = await session.scalars(
        select(AlertMute)
        .where(AlertMute.ended_at.is_(None), AlertMute.until <= now)
        .order_by(AlertMute.until, AlertMute.id)
        # PostgreSQL: a second runner waits, then sees them ended (no double notice).
        .with_for_update()
    )
    return list(rows)


async def due_for_escalation(
    session: AsyncSession, *, opened_before: datetime
) -> list[AlertIncident]:
    """Announced incidents still open (not acknowledged) since before ``opened_before`` and
    never re-mentioned."""
    rows = await session.scalars(
        select(AlertIncident)
        .where(
            AlertIncident.state == "open",
            AlertIncident.announced.is_(True),
            AlertIncident.escalated_at.is_(None),
            AlertIncident.opened_at <= opened_before,
        )
        .order_by(AlertIncident.opened_at, AlertIncident.id)
        .with_for_update()
    )
    return list(rows)


async def auto_restarted_after(session: AsyncSession, instance_id: str, after: datetime) -> bool:
    """Whether the monitor restarted the instance after ``after`` (people's restarts do not
    count): a new restart-budget episode needs one."""
    found = await session.scalar(
        select(RestartAttempt.id)
        .where(
            RestartAttempt.instance_id == instance_id,
            RestartAttempt.cause == "monitor",
            RestartAttempt.at > after,
        )
        .limit(1)
    )
    return found is not None


async def flapping_incidents(session: AsyncSession) -> list[AlertIncident]:
    """Unresolved incidents marked flapping."""
    rows = await session.scalars(
        select(AlertIncident).where(
            AlertIncident.open_key.is_not(None), AlertIncident.flapping.is_(True)
        )
    )
    return list(rows)
