"""Query functions: the session first, everything else keyword-only.

Writers are meant to run inside :meth:`bot.store.database.Database.run`::

    await db.run(lambda s: record_heartbeats(s, samples=batch))

Readers take any session (``async with db.session() as s:``). None of these
functions commits: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.dialects import dialect_insert
from bot.store.heartbeats.reads import heartbeat_history as read_history
from bot.store.heartbeats.writes import append_samples
from bot.store.models import (
    ACTION_SOURCES,
    RESTART_CAUSES,
    STATUS_CAUSES,
    InstanceRow,
    RestartAttempt,
    RestartBudgetReset,
    StatusChange,
)
from bot.store.records import HeartbeatSampleIn, InstanceSnapshot, StoredHeartbeat

# Rows per INSERT statement: stays under SQLite's and asyncpg's bound-parameter
# limits (32766 / 32767) for the widest table.
_CHUNK = 2000


async def upsert_instances(
    session: AsyncSession, *, instances: Sequence[InstanceSnapshot], seen_at: datetime
) -> None:
    """Insert new instances and refresh known ones (name, region, status, last_seen).

    ``first_seen`` is set once, on insert. Call :func:`last_statuses` *before*
    this if you want to detect status changes: this overwrites them.
    """
    if not instances:
        return
    stmt = dialect_insert(session, InstanceRow)
    stmt = stmt.on_conflict_do_update(
        index_elements=[InstanceRow.id],
        set_={
            "name": stmt.excluded.name,
            "region": stmt.excluded.region,
            "status": stmt.excluded.status,
            "last_seen": stmt.excluded.last_seen,
        },
    )
    # The same id twice in one statement is an error on PostgreSQL; the last one wins.
    unique = {snapshot.id: snapshot for snapshot in instances}
    rows = [
        {
            "id": s.id,
            "name": s.name,
            "region": s.region,
            "status": s.status,
            "first_seen": seen_at,
            "last_seen": seen_at,
        }
        for s in unique.values()
    ]
    for start in range(0, len(rows), _CHUNK):
        await session.execute(stmt, rows[start : start + _CHUNK])


async def _ensure_instance(
    session: AsyncSession, instance_id: str, *, at: datetime, status: str
) -> None:
    """Create a placeholder row for an instance the monitor has not listed yet.

    A user may pause an instance before the first sweep; its history must not
    be lost to the foreign key. The next :func:`upsert_instances` fills it in.
    """
    stmt = dialect_insert(session, InstanceRow).values(
        id=instance_id, name=None, region=None, status=status, first_seen=at, last_seen=at
    )
    await session.execute(stmt.on_conflict_do_nothing(index_elements=[InstanceRow.id]))


async def record_heartbeats(session: AsyncSession, *, samples: Sequence[HeartbeatSampleIn]) -> None:
    """Append health samples to the head as one batch (instances must already be known).

    See :mod:`bot.store.heartbeats` for the layout (head, then per instance-hour chunks).
    """
    await append_samples(session, samples)


async def last_statuses(session: AsyncSession) -> dict[str, str]:
    """The last known raw status of every known instance, by id."""
    result = await session.execute(select(InstanceRow.id, InstanceRow.status))
    return {row.id: row.status for row in result}


async def known_instances(session: AsyncSession) -> list[InstanceRow]:
    """Every instance the bot has seen, by name then id."""
    result = await session.scalars(select(InstanceRow).order_by(InstanceRow.name, InstanceRow.id))
    return list(result)


async def record_status_change(
    session: AsyncSession,
    *,
    instance_id: str,
    from_status: str | None,
    to_status: str,
    at: datetime,
    cause: str,
    actor: str | None = None,
    reason: str | None = None,
    source: str | None = None,
) -> StatusChange:
    """Append one status transition; ``cause`` is ``monitor``, ``user`` or ``backend``.

    ``source`` says where an action was asked for (``slack``, ``gateway``, ``incident``,
    ``monitor``, ``cli``); None for a change the sweep discovered.

    An instance the store has never seen gets a placeholder row first (status
    ``to_status``); a known instance's ``status`` column is left alone: the
    sweep owns it, through :func:`upsert_instances`.
    """
    if cause not in STATUS_CAUSES:
        raise ValueError(f"cause must be one of {STATUS_CAUSES}, not {cause!r}")
    _check_source(source)
    await _ensure_instance(session, instance_id, at=at, status=to_status)
    change = StatusChange(
        instance_id=instance_id,
        from_status=from_status,
        to_status=to_status,
        at=at,
        cause=cause,
        actor=actor,
        reason=reason,
        source=source,
    )
    session.add(change)
    await session.flush()
    return change


async def status_history(
    session: AsyncSession, instance_id: str, *, limit: int = 20
) -> list[StatusChange]:
    """The latest ``limit`` status changes of one instance, newest first."""
    result = await session.scalars(
        select(StatusChange)
        .where(StatusChange.instance_id == instance_id)
        .order_by(StatusChange.at.desc(), StatusChange.id.desc())
        .limit(limit)
    )
    return list(result)


async def is_known_instance(session: AsyncSession, instance_id: str) -> bool:
    """Whether the bot has a row for this exact instance id (seen, or recorded about)."""
    return await session.get(InstanceRow, instance_id) is not None


async def restart_history(
    session: AsyncSession, instance_id: str, *, limit: int = 20
) -> list[RestartAttempt]:
    """The latest ``limit`` restart attempts of one instance, newest first."""
    result = await session.scalars(
        select(RestartAttempt)
        .where(RestartAttempt.instance_id == instance_id)
        .order_by(RestartAttempt.at.desc(), RestartAttempt.id.desc())
        .limit(limit)
    )
    return list(result)


async def heartbeat_history(
    session: AsyncSession, instance_id: str, *, since: datetime, until: datetime | None = None
) -> list[StoredHeartbeat]:
    """Raw samples of one instance with ``since <= sampled_at < until``, oldest first.

    Each carries ``instance_id``, ``sampled_at``, ``cpu_percent``, ``memory_mb``,
    ``disk_mb``, ``last_heartbeat``, ``uptime_secs``. Read from the chunks of the hours
    asked for plus the head (:mod:`bot.store.heartbeats.reads`); samples older than the raw
    retention live in ``heartbeat_hourly`` instead.
    """
    return await read_history(session, instance_id, since=since, until=until)


async def record_restart(
    session: AsyncSession,
    *,
    instance_id: str,
    at: datetime,
    cause: str,
    actor: str | None = None,
    ok: bool = True,
    error: str | None = None,
    source: str | None = None,
) -> RestartAttempt:
    """Append one restart attempt; ``cause`` is ``monitor`` or ``user``.

    ``source`` says where it was asked for (see :func:`record_status_change`).
    """
    if cause not in RESTART_CAUSES:
        raise ValueError(f"cause must be one of {RESTART_CAUSES}, not {cause!r}")
    _check_source(source)
    # Status unknown: a placeholder must not look like a real reading.
    await _ensure_instance(session, instance_id, at=at, status="unknown")
    attempt = RestartAttempt(
        instance_id=instance_id,
        at=at,
        cause=cause,
        actor=actor,
        ok=ok,
        error=error,
        source=source,
    )
    session.add(attempt)
    await session.flush()
    return attempt


async def restarts_since(
    session: AsyncSession, instance_id: str, since: datetime
) -> list[RestartAttempt]:
    """Restart attempts of one instance at or after ``since``, oldest first."""
    result = await session.scalars(
        select(RestartAttempt)
        .where(RestartAttempt.instance_id == instance_id, RestartAttempt.at >= since)
        .order_by(RestartAttempt.at, RestartAttempt.id)
    )
    return list(result)


async def record_budget_reset(
    session: AsyncSession, *, instance_id: str, at: datetime, actor: str | None, source: str
) -> RestartBudgetReset:
    """Give the instance its auto-restart budget back: restarts before ``at`` stop counting."""
    _check_source(source)
    row = RestartBudgetReset(instance_id=instance_id, at=at, actor=actor, source=source)
    session.add(row)
    await session.flush()
    return row


async def latest_budget_reset(session: AsyncSession, instance_id: str) -> datetime | None:
    """When the instance's restart budget was last reset (None: never)."""
    return cast(
        "datetime | None",
        await session.scalar(
            select(RestartBudgetReset.at)
            .where(RestartBudgetReset.instance_id == instance_id)
            .order_by(RestartBudgetReset.at.desc())
            .limit(1)
        ),
    )


async def uptime_ratio(
    session: AsyncSession, instance_id: str, *, since: datetime, until: datetime
) -> float | None:
    """Share of ``[since, until)`` the instance spent ``running``, from its status changes.

    Time before the first recorded change is unknown and left out of the
    denominator; None when no time in the window is known. Statuses compare
    case-insensitively (``Running`` counts).
    """
    if until <= since:
        raise ValueError("until must be after since")
    before = await session.scalar(
        select(StatusChange.to_status)
        .where(StatusChange.instance_id == instance_id, StatusChange.at <= since)
        .order_by(StatusChange.at.desc(), StatusChange.id.desc())
        .limit(1)
    )
    changes = (
        await session.execute(
            select(StatusChange.at, StatusChange.to_status)
            .where(
                StatusChange.instance_id == instance_id,
                StatusChange.at > since,
                StatusChange.at < until,
            )
            .order_by(StatusChange.at, StatusChange.id)
        )
    ).all()

    known = running = 0.0
    status, start = before, since
    for at, to_status in [*changes, (until, None)]:
        if status is not None:
            span = (at - start).total_seconds()
            known += span
            if status.lower() == "running":
                running += span
        status, start = to_status, at
    return running / known if known > 0 else None


def _check_source(source: str | None) -> None:
    if source is not None and source not in ACTION_SOURCES:
        raise ValueError(f"source must be one of {ACTION_SOURCES}, not {source!r}")
