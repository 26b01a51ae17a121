"""The seed's ``HealthMonitor(client)``: the same sweep over the in-memory store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from bot.backend.client import InstanceClient
from bot.backend.models import Instance
from bot.monitor import HealthMonitor, SweepReport
from bot.monitor.events import EventKind
from bot.monitor.memory_store import MemoryMonitorStore
from bot.monitor.sql_store import SqlMonitorStore
from bot.monitor.store import MonitorStore, MonitorTransaction
from bot.monitor.tracking import Change
from bot.sim.backend import BackendSimulator
from bot.store.database import Database
from bot.store.records import InstanceSnapshot

if TYPE_CHECKING:
    from tests.conftest import FakeClock

AT = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


async def test_the_seed_api_restarts_a_stale_instance_without_a_database(
    sim: BackendSimulator,
    client: InstanceClient,
    fake_clock: FakeClock,
    utc_clock: Callable[[], datetime],
) -> None:
    ids = sim.seed_instances(3)
    stalled = ids[0]
    sim.stop_heartbeat(stalled)
    fake_clock.advance(100)
    changes: list[tuple[str, str]] = []

    def on_change(instance_id: str, status: str, _health: object) -> None:
        changes.append((instance_id, status))

    swept: asyncio.Future[SweepReport] = asyncio.get_running_loop().create_future()

    def first_report(report: SweepReport) -> None:
        if not swept.done():
            swept.set_result(report)

    monitor = (
        HealthMonitor(client)
        .with_interval(timedelta(hours=1))
        .with_heartbeat_timeout(timedelta(seconds=90))
        .on_status_change(
            lambda instance_id, status, _health: changes.append((instance_id, status))
        )
        .with_clock(utc_clock)
        .on_sweep(first_report)
    )
    assert isinstance(monitor.store, MemoryMonitorStore)
    handle = monitor.start()  # not async, as in the seed
    report = await swept
    await handle.send()

    assert changes == [(stalled, "error")]
    assert report.restarted == [stalled] and sim.calls[("restart", stalled)] == 1
    assert not monitor.status().running
    store = monitor.store
    assert isinstance(store, MemoryMonitorStore)
    assert {i: r.status for i, r in store.instances.items()} == {
        stalled: "error",
        ids[1]: "running",
        ids[2]: "running",
    }
    assert store.instances[stalled].restarts == [report.at]


async def test_memory_and_sql_stores_are_one_interface(sqlite_store: Database) -> None:
    stores: list[MonitorStore] = [MemoryMonitorStore(), SqlMonitorStore(sqlite_store)]
    for store in stores:

        async def write(tx: MonitorTransaction) -> None:
            await tx.upsert_instances([InstanceSnapshot("a", "alpha", "eu", "running")], seen_at=AT)
            await tx.record_restart(instance_id="a", at=AT, ok=True, error=None)

        await store.run(write)

        async def read(tx: MonitorTransaction) -> tuple[dict[str, str], list[datetime]]:
            return await tx.last_statuses(["a", "z"]), await tx.auto_restart_times("a", since=AT)

        statuses, restarts = await store.run(read)
        assert statuses == {"a": "running"}, store
        assert [t.astimezone(UTC) for t in restarts] == [AT], store


def _change(instance_id: str, to_status: str) -> Change:
    instance = Instance.model_validate(
        {"id": instance_id, "name": instance_id, "status": to_status, "region": "eu"}
    )
    return Change(
        instance=instance,
        from_status="running",
        to_status=to_status,
        cause="monitor",
        reason=None,
        kind=EventKind.STATUS_CHANGED,
        health=None,
        announce=True,
    )


async def test_the_memory_store_keeps_the_last_listing_only() -> None:
    store = MemoryMonitorStore()

    async def sweep(tx: MonitorTransaction, listed: list[str], at: datetime) -> None:
        await tx.upsert_instances(
            [InstanceSnapshot(i, i, "eu", "running") for i in listed], seen_at=at
        )
        await tx.record_changes([_change(i, "running") for i in listed], at=at)

    await store.run(lambda tx: sweep(tx, ["a", "b"], AT))
    store.forget_unlisted({"a", "b"})
    # A sweep in slices: each slice's transaction adds to what the earlier ones listed.
    await store.run(lambda tx: sweep(tx, ["a"], AT + timedelta(seconds=30)))
    await store.run(lambda tx: sweep(tx, ["c"], AT + timedelta(seconds=30)))

    async def read(tx: MonitorTransaction) -> tuple[dict[str, str], dict[str, str]]:
        statuses = await tx.last_statuses(["a", "b", "c"])
        return statuses, await tx.latest_recorded_statuses(["a", "b", "c"])

    assert await store.run(read) == ({"a": "running", "b": "running", "c": "running"},) * 2
    store.forget_unlisted({"a", "c"})
    # "b" is no longer listed: forgotten, so a return is a first sighting again (the seed's way).
    assert await store.run(read) == ({"a": "running", "c": "running"},) * 2


async def test_a_failed_memory_transaction_changes_nothing() -> None:
    store = MemoryMonitorStore()

    async def half_way(tx: MonitorTransaction) -> None:
        await tx.upsert_instances([InstanceSnapshot("a", "a", "eu", "running")], seen_at=AT)
        raise RuntimeError("the sweep failed after its first write")

    with pytest.raises(RuntimeError):
        await store.run(half_way)
    assert store.instances == {}
