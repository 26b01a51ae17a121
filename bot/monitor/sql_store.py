"""The monitor's store on SQLAlchemy (SQLite or PostgreSQL): see :mod:`bot.monitor.store`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot.monitor import persist
from bot.monitor.store import MonitorTransaction
from bot.monitor.tracking import Change
from bot.store import queries
from bot.store.database import Database
from bot.store.records import HeartbeatSampleIn, InstanceSnapshot

T = TypeVar("T")

# Instance rows whose name, region and status did not change are rewritten only this often
# (refreshing last_seen): rewriting 10,000 identical rows every sweep was half the sweep.
ROW_REFRESH = timedelta(minutes=5)


class SqlTransaction:
    """One database transaction of a sweep."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @property
    def session(self) -> AsyncSession:
        """The transaction's session (event handlers write through it)."""
        return self._session

    async def last_statuses(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """See :meth:`MonitorTransaction.last_statuses`."""
        return await persist.statuses_of(self._session, instance_ids)

    async def latest_recorded_statuses(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """See :meth:`MonitorTransaction.latest_recorded_statuses`."""
        return await persist.latest_recorded_statuses(self._session, instance_ids)

    async def upsert_instances(
        self, instances: Sequence[InstanceSnapshot], *, seen_at: datetime
    ) -> None:
        """See :meth:`MonitorTransaction.upsert_instances`."""
        await queries.upsert_instances(self._session, instances=instances, seen_at=seen_at)

    async def record_heartbeats(self, samples: Sequence[HeartbeatSampleIn]) -> None:
        """See :meth:`MonitorTransaction.record_heartbeats`."""
        await queries.record_heartbeats(self._session, samples=samples)

    async def record_changes(self, changes: Sequence[Change], *, at: datetime) -> None:
        """See :meth:`MonitorTransaction.record_changes`."""
        await persist.record_changes(self._session, changes=changes, at=at)

    async def auto_restart_times(self, instance_id: str, *, since: datetime) -> list[datetime]:
        """See :meth:`MonitorTransaction.auto_restart_times`."""
        return await persist.auto_restart_times(self._session, instance_id, since=since)

    async def budget_reset_at(self, instance_id: str) -> datetime | None:
        """See :meth:`MonitorTransaction.budget_reset_at`."""
        return await queries.latest_budget_reset(self._session, instance_id)

    async def record_restart(
        self, *, instance_id: str, at: datetime, ok: bool, error: str | None
    ) -> None:
        """See :meth:`MonitorTransaction.record_restart`."""
        await queries.record_restart(
            self._session,
            instance_id=instance_id,
            at=at,
            cause="monitor",
            ok=ok,
            error=error,
            source="monitor",
        )

    def savepoint(self) -> AbstractAsyncContextManager[object]:
        """A SAVEPOINT."""
        return self._session.begin_nested()


class SqlMonitorStore:
    """History in the database: shared by replicas, kept across process restarts."""

    row_refresh = ROW_REFRESH

    def __init__(self, db: Database) -> None:
        self.db = db

    def __repr__(self) -> str:
        return repr(self.db)

    async def run(self, fn: Callable[[MonitorTransaction], Awaitable[T]]) -> T:
        """One transaction through :meth:`Database.run` (retried when the database is busy)."""
        return await self.db.run(lambda session: fn(SqlTransaction(session)))

    def forget_unlisted(self, listed: Collection[str]) -> None:
        """Nothing to forget: the rows of instances no longer listed are history."""
