"""Chaos: another process holds the SQLite write lock for 5 s in the middle of the monitor's work.

The locker is a real second process (``BEGIN IMMEDIATE`` on the same file, then sleep), so
the bot meets exactly what a stray ``sqlite3`` shell or a backup tool would cause. Twice:
while the sweep records what it saw (transaction 1), and while it records a restart it just
made (transaction 2). Either way the sweep waits or retries, and nothing is lost: every
sample, the stale transition and the restart are in the database afterwards, and the next
sweep does not restart the instance again.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from bot.backend.client import InstanceClient
from bot.monitor import HealthMonitor
from bot.sim.backend import BackendSimulator
from bot.store.database import Database
from bot.store.heartbeats.reads import count_samples
from bot.store.models import RestartAttempt, StatusChange

if TYPE_CHECKING:
    from tests.conftest import FakeClock

pytestmark = pytest.mark.slow

LOCK_SECS = 5.0
_LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
conn.execute("CREATE TABLE IF NOT EXISTS chaos_lock (x INTEGER)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
print("released", flush=True)
"""


@asynccontextmanager
async def write_lock(path: Path, secs: float) -> AsyncIterator[asyncio.subprocess.Process]:
    """Hold the write lock of ``path`` from another process for ``secs`` seconds."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _LOCKER, str(path), str(secs), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 15)
        assert line.strip() == b"locked", line
        yield proc
    finally:
        if proc.returncode is None:
            await proc.wait()


async def _counts(db: Database, instance_id: str) -> tuple[int, int, int]:
    async with db.session() as session:
        samples = sum(await count_samples(session))
        stale = await session.scalar(
            select(func.count())
            .select_from(StatusChange)
            .where(StatusChange.instance_id == instance_id, StatusChange.to_status == "error")
        )
        restarts = await session.scalar(
            select(func.count())
            .select_from(RestartAttempt)
            .where(RestartAttempt.instance_id == instance_id, RestartAttempt.ok)
        )
    return int(samples or 0), int(stale or 0), int(restarts or 0)


def _monitor(client: InstanceClient, db: Database, clock: Callable[[], datetime]) -> HealthMonitor:
    return HealthMonitor(client, store=db).with_clock(clock)


async def test_a_sweep_waits_out_a_5_second_lock_on_its_first_transaction(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    utc_clock: Callable[[], datetime],
    sqlite_store: Database,
    sqlite_path: Path,
    reliability_figures: dict[str, object],
) -> None:
    ids = sim.seed_instances(12)
    stalled = ids[0]
    async with InstanceClient(sim.url, timeout=5.0, retry_backoff=0) as client:
        monitor = _monitor(client, sqlite_store, utc_clock)
        await monitor.sweep_once()
        before = await _counts(sqlite_store, stalled)
        sim.stop_heartbeat(stalled)
        fake_clock.advance(120)

        async with write_lock(sqlite_path, LOCK_SECS):
            started = time.monotonic()
            report = await monitor.sweep_once()
            waited = time.monotonic() - started
            # The lock was really in the way: the sweep had to wait for the other writer.
            assert waited >= LOCK_SECS - 1.0, waited
        assert report.backend_error is None
        assert report.restarted == [stalled]
        after = await _counts(sqlite_store, stalled)
        # Every sample of the locked sweep, the stale transition and the restart are stored.
        assert after == (before[0] + len(ids), 1, 1), (before, after)

        fake_clock.advance(30)
        again = await monitor.sweep_once()
        assert again.restarted == []
    assert sim.calls[("restart", stalled)] == 1
    assert all(sim.calls[("restart", i)] == 0 for i in ids[1:])
    reliability_figures.update(lock_secs=LOCK_SECS, waited_secs=round(waited, 1), lost_writes=0)


async def test_a_restart_record_waits_out_a_5_second_lock(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    utc_clock: Callable[[], datetime],
    sqlite_store: Database,
    sqlite_path: Path,
    reliability_figures: dict[str, object],
) -> None:
    ids = sim.seed_instances(6)
    stalled = ids[0]
    async with InstanceClient(sim.url, timeout=5.0, retry_backoff=0) as client:
        monitor = _monitor(client, sqlite_store, utc_clock)
        await monitor.sweep_once()
        # Sticky: the restart does not revive it, so only the stored record can stop another.
        sim.stop_heartbeat(stalled, sticky=True)
        fake_clock.advance(120)
        # The restart call takes a moment: the lock is taken while it is in flight, so the
        # restart record (transaction 2) is what meets it.
        sim.set_faults(latency_secs=0.5, endpoints=["restart"])
        sweep = asyncio.create_task(monitor.sweep_once())
        async with asyncio.timeout(60):  # until the restart call has reached the backend
            while not sim.calls[("restart", stalled)]:  # noqa: ASYNC110 - the sim's state
                await asyncio.sleep(0.01)
        async with write_lock(sqlite_path, LOCK_SECS):
            report = await sweep
        sim.set_faults()
        assert report.restarted == [stalled]
        assert (await _counts(sqlite_store, stalled))[2] == 1

        # A new process (a fresh monitor on the same file) reads the restart and holds off:
        # the budget's next restart is a minute after the first.
        fake_clock.advance(30)
        fresh = _monitor(client, sqlite_store, utc_clock)
        report = await fresh.sweep_once()
        assert report.restarted == []
    assert sim.calls[("restart", stalled)] == 1
    reliability_figures.update(lock_secs=LOCK_SECS, lost_writes=0, double_restarts=0)
