"""A sweep in slices (fetch, decide, record per slice) and health inlined in the list.

Real parts only: the simulator over HTTP, a SQLite file (a trigger makes the database
itself refuse one slice's rows), the in-memory store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text

from bot.monitor import EventKind, HealthMonitor
from bot.sim.backend import BackendSimulator
from bot.store.database import Database

if TYPE_CHECKING:
    from tests.conftest import FakeClock
    from tests.monitor.conftest import Recorder

MakeMonitor = Callable[..., HealthMonitor]


async def refuse_instance_rows(db: Database, instance_ids: list[str]) -> None:
    """Make the database refuse to insert these instances' rows (a real failed write)."""
    quoted = ", ".join(f"'{i}'" for i in instance_ids)
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE TRIGGER refuse_slice BEFORE INSERT ON instances "
                f"WHEN NEW.id IN ({quoted}) BEGIN SELECT RAISE(ABORT, 'slice refused'); END"
            )
        )


async def stored_ids(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return {row[0] for row in await conn.execute(text("SELECT id FROM instances"))}


async def test_a_slice_the_database_refuses_loses_only_its_own_results(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    sqlite_store: Database,
) -> None:
    order = sim.seed_instances(9)  # listed in this order: the order of the slices
    # Slices of 3: the middle one holds the two that are stale in the first sweep.
    sim.stop_heartbeat(order[3])
    sim.stop_heartbeat(order[4])
    sim.stop_heartbeat(order[7])
    fake_clock.advance(100)
    # The database refuses a healthy instance's row: the slice's transaction fails whole.
    await refuse_instance_rows(sqlite_store, [order[5]])
    monitor = make_monitor(sqlite_store).with_slice_size(3).with_storm(100, 1.0)

    with pytest.raises(Exception, match="slice refused"):
        await monitor.sweep_once()

    # The first and last slices are recorded, the middle one not at all (one transaction).
    assert await stored_ids(sqlite_store) == set(order[:3] + order[6:])
    # Callbacks and restarts: the stale instance of the last slice only, once each.
    assert [(c[0], c[1]) for c in recorder.calls] == [(order[7], "error")]
    assert sim.calls[("restart", order[7])] == 1
    assert sim.calls[("restart", order[3])] == sim.calls[("restart", order[4])] == 0
    # Memory: the instances of the refused slice were not remembered as recorded.
    assert monitor.status().instances_tracked == 6

    # Once the database takes the rows, the next sweep records the middle slice; the
    # first sighting of a stale instance is then announced (and restarted) once.
    async with sqlite_store.engine.begin() as conn:
        await conn.execute(text("DROP TRIGGER refuse_slice"))
    fake_clock.advance(30)
    report = await monitor.sweep_once()
    assert await stored_ids(sqlite_store) == set(order)
    # The restart of the first sweep revived the last slice's instance: it recovered.
    assert [(c[0], c[1]) for c in recorder.calls[1:]] == [
        (order[3], "error"),
        (order[4], "error"),
        (order[7], "running"),
    ]
    assert sorted(report.restarted) == sorted([order[3], order[4]])
    assert monitor.status().instances_tracked == 9


async def test_callbacks_fire_once_per_change_in_list_order_across_slices(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    store: Database | None,
) -> None:
    order = sim.seed_instances(10)  # listed in this order: the order of the slices
    monitor = make_monitor(store).with_slice_size(3).with_storm(100, 1.0)
    await monitor.sweep_once()
    stalled = [order[8], order[0], order[5]]
    for instance_id in stalled:
        sim.stop_heartbeat(instance_id, sticky=True)
    fake_clock.advance(100)

    report = await monitor.sweep_once()
    in_list_order = [order[0], order[5], order[8]]
    assert [(c[0], c[1]) for c in recorder.calls] == [(i, "error") for i in in_list_order]
    assert [e.instance_id for e in recorder.kinds(EventKind.STALE)] == in_list_order
    assert report.stale_ids == in_list_order and report.instances == 10
    assert [c[0] for c in report.changes] == in_list_order

    # Still stale next sweep: no second announcement from any slice.
    fake_clock.advance(30)
    await monitor.sweep_once()
    assert len(recorder.calls) == 3 and len(recorder.kinds(EventKind.STALE)) == 3


async def test_the_restart_budget_holds_across_slices(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    store: Database | None,
) -> None:
    order = sim.seed_instances(7)  # listed in this order: the order of the slices
    # One stale instance in the first slice, one in the last: each has its own budget.
    first, last = order[0], order[6]
    monitor = (
        make_monitor(store)
        .with_slice_size(2)
        .with_storm(100, 1.0)
        .with_restart_budget(2, timedelta(hours=1), delays=(0, 0))
    )
    await monitor.sweep_once()
    for instance_id in (first, last):
        sim.stop_heartbeat(instance_id, sticky=True)  # restarts do not revive them
    for _ in range(5):
        fake_clock.advance(100)
        await monitor.sweep_once()

    assert sim.calls[("restart", first)] == 2 and sim.calls[("restart", last)] == 2
    exhausted = recorder.kinds(EventKind.RESTART_BUDGET_EXHAUSTED)
    assert sorted(e.instance_id or "" for e in exhausted) == sorted([first, last])


async def test_a_storm_is_judged_over_every_slice(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    store: Database | None,
) -> None:
    order = sim.seed_instances(8)  # listed in this order: the order of the slices
    monitor = make_monitor(store).with_slice_size(2).with_storm(4, 0.5)
    await monitor.sweep_once()
    # One stale instance in each slice: no slice alone is a storm, the sweep is.
    stalled = [order[0], order[2], order[4], order[6]]
    for instance_id in stalled:
        sim.stop_heartbeat(instance_id)
    fake_clock.advance(100)

    report = await monitor.sweep_once()
    assert report.storm and report.restarted == []
    storms = recorder.kinds(EventKind.STORM)
    assert len(storms) == 1 and list(storms[0].stale_ids) == stalled
    assert all(sim.calls[("restart", i)] == 0 for i in stalled)


async def test_health_inlined_in_the_list_needs_no_health_call(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    store: Database | None,
) -> None:
    sim.inline_health = True
    ids = sim.seed_instances(5)
    monitor = make_monitor(store).with_slice_size(2)
    await monitor.sweep_once()
    sim.stop_heartbeat(ids[2])
    fake_clock.advance(100)

    report = await monitor.sweep_once()
    assert report.stale_ids == [ids[2]] and report.restarted == [ids[2]]
    assert [(c[0], c[1]) for c in recorder.calls] == [(ids[2], "error")]
    assert all(sim.calls[("health", i)] == 0 for i in ids)
    assert sim.calls[("list", "")] == 2
