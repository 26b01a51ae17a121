"""The store as the monitor sees it: one interface, a SQL and an in-memory implementation.

A sweep writes in short transactions (one per slice of instances, one for the restart
decisions, one for the restarts; never across an HTTP call); each is a function
of a :class:`MonitorTransaction` that :meth:`MonitorStore.run` commits. The
implementations:

- :class:`~bot.monitor.sql_store.SqlMonitorStore` over :class:`~bot.store.database.Database`
  (SQLite or PostgreSQL): history survives restarts and is shared by replicas;
- :class:`~bot.monitor.memory_store.MemoryMonitorStore`: the seed's ``HealthMonitor(client)``
  with no database; it keeps only what the next sweep needs.

Event handlers receive :attr:`MonitorTransaction.session`, the SQLAlchemy session to write
in the same transaction (None in memory).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.monitor.tracking import Change
    from bot.store.database import Database
    from bot.store.records import HeartbeatSampleIn, InstanceSnapshot

T = TypeVar("T")


class MonitorTransaction(Protocol):
    """Reads and writes of one sweep transaction; nothing is visible to others until commit."""

    @property
    def session(self) -> AsyncSession | None:
        """The session event handlers write through (None for a store without one)."""

    async def last_statuses(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """The last recorded effective status of each given instance the store knows."""

    async def latest_recorded_statuses(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """The ``to_status`` of the newest recorded change of each given instance."""

    async def upsert_instances(
        self, instances: Sequence[InstanceSnapshot], *, seen_at: datetime
    ) -> None:
        """Record what the listing said about these instances (all of them, or the changed)."""

    async def record_heartbeats(self, samples: Sequence[HeartbeatSampleIn]) -> None:
        """Append health samples."""

    async def record_changes(self, changes: Sequence[Change], *, at: datetime) -> None:
        """Append status changes (their instances were upserted first)."""

    async def auto_restart_times(self, instance_id: str, *, since: datetime) -> list[datetime]:
        """When the monitor restarted this instance at or after ``since``."""

    async def budget_reset_at(self, instance_id: str) -> datetime | None:
        """When someone last gave this instance its restart budget back (None: never);
        auto-restarts before it do not count against the budget."""

    async def record_restart(
        self, *, instance_id: str, at: datetime, ok: bool, error: str | None
    ) -> None:
        """Append one auto-restart attempt."""

    def savepoint(self) -> AbstractAsyncContextManager[object]:
        """A nested transaction for one event handler: what it writes rolls back alone."""


class MonitorStore(Protocol):
    """Where the monitor keeps its history."""

    @property
    def row_refresh(self) -> timedelta:
        """How long an unchanged instance may go without being rewritten (0: every sweep)."""

    async def run(self, fn: Callable[[MonitorTransaction], Awaitable[T]]) -> T:
        """Run ``fn`` in one transaction and commit; ``fn`` may be run again on a retry."""

    def forget_unlisted(self, listed: Collection[str]) -> None:
        """After a sweep recorded in slices: drop what is kept about instances no longer
        listed (a store that keeps history keeps their rows)."""


def monitor_store(store: Database | MonitorStore | None) -> MonitorStore:
    """The store for a :class:`~bot.monitor.HealthMonitor`: memory when None, SQL for a Database."""
    from bot.store.database import Database

    if store is None:
        from bot.monitor.memory_store import MemoryMonitorStore

        return MemoryMonitorStore()
    if isinstance(store, Database):
        from bot.monitor.sql_store import SqlMonitorStore

        return SqlMonitorStore(store)
    return store
