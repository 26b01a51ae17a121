"""The monitor's store in memory, for the seed's ``HealthMonitor(client)``: no database.

It keeps what the next sweep needs and no history: the instances of the last sweep (one
that the backend stops listing is forgotten, as the seed's monitor forgot it), each with
its status, its newest recorded change and its recent auto-restarts. Heartbeat samples are
not kept. Writes are buffered and applied when the transaction commits, so a transaction
that fails half way changes nothing, as with a database.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from bot.monitor.store import MonitorTransaction

if TYPE_CHECKING:
    from bot.monitor.tracking import Change
    from bot.store.records import HeartbeatSampleIn, InstanceSnapshot

T = TypeVar("T")


@dataclass(slots=True)
class _Remembered:
    status: str
    last_change: str | None = None
    restarts: list[datetime] = field(default_factory=list)


class MemoryTransaction:
    """Reads the committed state; writes wait in a buffer until the commit."""

    def __init__(self, store: MemoryMonitorStore) -> None:
        self._store = store
        self.listed: list[InstanceSnapshot] | None = None
        self.changes: list[Change] = []
        self.restarts: list[tuple[str, datetime]] = []

    @property
    def session(self) -> None:
        """No session: handlers are called with None."""
        return None

    async def last_statuses(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """The statuses of the given instances, as the last sweep listed them."""
        known = self._store.instances
        return {i: r.status for i in instance_ids if (r := known.get(i)) is not None}

    async def latest_recorded_statuses(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """The newest recorded ``to_status`` of each given instance that has one."""
        found = {}
        for instance_id in instance_ids:
            remembered = self._store.instances.get(instance_id)
            if remembered is not None and remembered.last_change is not None:
                found[instance_id] = remembered.last_change
        return found

    async def upsert_instances(
        self, instances: Sequence[InstanceSnapshot], *, seen_at: datetime
    ) -> None:
        """This slice's listing (``row_refresh`` is zero: every instance, every sweep)."""
        self.listed = [*(self.listed or ()), *instances]

    async def record_heartbeats(self, samples: Sequence[HeartbeatSampleIn]) -> None:
        """Samples are not kept in memory."""

    async def record_changes(self, changes: Sequence[Change], *, at: datetime) -> None:
        """Remember each instance's newest change."""
        self.changes.extend(changes)

    async def auto_restart_times(self, instance_id: str, *, since: datetime) -> list[datetime]:
        """This instance's auto-restarts at or after ``since``."""
        remembered = self._store.instances.get(instance_id)
        return [t for t in remembered.restarts if t >= since] if remembered is not None else []

    async def budget_reset_at(self, instance_id: str) -> datetime | None:
        """Never: a reset is written to the database (the alerts feature needs one)."""
        return None

    async def record_restart(
        self, *, instance_id: str, at: datetime, ok: bool, error: str | None
    ) -> None:
        """Remember the restart's time (failed attempts count against the budget too)."""
        self.restarts.append((instance_id, at))

    def savepoint(self) -> AbstractAsyncContextManager[object]:
        """Nothing to roll back: handlers get no session to write through."""
        return contextlib.nullcontext()


class MemoryMonitorStore:
    """State of the last sweep in a dict; see the module docstring."""

    row_refresh = timedelta(0)

    def __init__(self, *, keep_restarts: timedelta = timedelta(days=1)) -> None:
        self.instances: dict[str, _Remembered] = {}
        # Older restarts never count against a budget; dropped so memory stays bounded.
        self._keep_restarts = keep_restarts

    def __repr__(self) -> str:
        return f"MemoryMonitorStore(instances={len(self.instances)})"

    async def run(self, fn: Callable[[MonitorTransaction], Awaitable[T]]) -> T:
        """Run ``fn``; apply its writes only when it returns."""
        tx = MemoryTransaction(self)
        result = await fn(tx)
        self._commit(tx)
        return result

    def forget_unlisted(self, listed: Collection[str]) -> None:
        """Forget the instances the last sweep's listing no longer had, as the seed did."""
        keep = listed if isinstance(listed, set | frozenset | dict) else set(listed)
        self.instances = {i: r for i, r in self.instances.items() if i in keep}

    def _commit(self, tx: MemoryTransaction) -> None:
        if tx.listed is not None:
            for snapshot in tx.listed:
                remembered = self.instances.get(snapshot.id)
                if remembered is None:
                    self.instances[snapshot.id] = _Remembered(snapshot.status)
                else:
                    remembered.status = snapshot.status
        for change in tx.changes:
            if (changed := self.instances.get(change.instance.id)) is not None:
                changed.last_change = change.to_status
        for instance_id, at in tx.restarts:
            if (restarted := self.instances.get(instance_id)) is not None:
                horizon = at - self._keep_restarts
                restarted.restarts = [t for t in restarted.restarts if t > horizon]
                restarted.restarts.append(at)
