"""What the monitor keeps per instance between sweeps is not re-made by every sweep.

An object a sweep allocates and the monitor keeps lands among that sweep's garbage and
holds Python's memory pools at the sweep's high-water mark; unchanged instances must keep
the objects of the sweep that first recorded them (BENCHMARKS.md, memory of the real bot).
"""

from __future__ import annotations

from collections.abc import Callable

from bot.monitor import HealthMonitor
from bot.sim.backend import BackendSimulator
from bot.store.database import Database
from tests.conftest import FakeClock

MakeMonitor = Callable[..., HealthMonitor]


async def test_unchanged_instances_keep_the_first_sweeps_objects(
    sim: BackendSimulator, fake_clock: FakeClock, make_monitor: MakeMonitor, store: Database | None
) -> None:
    ids = sim.seed_instances(3)
    monitor = make_monitor(store)
    await monitor.sweep_once()
    tracked = monitor._sweeper.tracked
    first = {key: (key, mem.stored, mem.status, mem.backend_status) for key, mem in tracked.items()}

    sim.set_status(ids[0], "paused")
    fake_clock.advance(30)
    await monitor.sweep_once()

    after = monitor._sweeper.tracked
    assert after is not tracked  # a sweep builds the mapping anew
    for key, mem in after.items():
        old_key, old_snapshot, old_status, old_backend = first[key]
        if key == ids[0]:
            assert mem.stored is not old_snapshot and mem.stored is not None
            assert mem.stored.status == "paused"
            continue
        assert mem.stored is old_snapshot
        assert next(k for k in after if k == key) is old_key
        # Statuses are interned: one string for every instance in that status.
        assert mem.status is old_status and mem.backend_status is old_backend
    assert after[ids[1]].status is after[ids[2]].status
