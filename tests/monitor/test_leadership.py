"""One leader among replicas: real monitor processes on PostgreSQL, a refused second on SQLite."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.backend.client import InstanceClient
from bot.monitor import HealthMonitor
from bot.sim.backend import BackendSimulator
from bot.store.database import Database
from bot.store.errors import LeadershipRefused
from bot.store.leader import PostgresAdvisoryLeadership, SqliteLeadership
from tests.support.processes import JsonLinesWorker

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("monitor_worker.py")
INTERVAL = 0.5


class Worker(JsonLinesWorker):
    """A monitor subprocess whose JSON lines are collected as they arrive."""

    WITHIN = 60.0

    def sweeps(self) -> list[float]:
        """Start times of this worker's sweeps (its rounds as the leader), each reported once
        the sweep is done."""
        return [line["at"] for line in self.lines if "round" in line and line["swept"]]

    def rounds_until_leading(self, since: float) -> int:
        """Which of the election rounds begun at or after ``since`` (epoch seconds) was the
        first this worker led (1: the first)."""
        after = [line for line in self.lines if "round" in line and line["at"] >= since]
        return next(n for n, line in enumerate(after, start=1) if line["swept"])

    def said(self, key: str) -> bool:
        return any(key in line for line in self.lines)


async def spawn(
    backend: str, db_url: str, *, key: int = 0, heartbeat_timeout: float = 30.0
) -> Worker:
    return await Worker.start(
        WORKER,
        "--backend",
        backend,
        "--db",
        db_url,
        "--interval",
        str(INTERVAL),
        "--timeout",
        str(heartbeat_timeout),
        "--key",
        str(key),
    )


@pytest.fixture
async def live_sim() -> AsyncIterator[tuple[BackendSimulator, list[float]]]:
    """A simulator on the real clock (other processes poll it) with a settable offset."""
    offset = [0.0]
    async with BackendSimulator(
        clock=lambda: time.time() + offset[0], seed=3, transition_secs=0
    ) as sim:
        yield sim, offset


async def test_two_processes_on_postgres_one_sweeps_and_the_other_takes_over(
    live_sim: tuple[BackendSimulator, list[float]], pg_store: Database, pg_module_url: str
) -> None:
    sim, offset = live_sim
    ids = sim.seed_instances(4)
    stalled = ids[0]
    # Freeze one heartbeat 200 s in the past, sticky: restarts will not heal it, so only
    # the restart budget (read from the shared store) stops a second restart.
    offset[0] = -200
    sim.stop_heartbeat(stalled, sticky=True)
    offset[0] = 0
    key = int.from_bytes(os.urandom(8), "big", signed=True)

    first = await spawn(sim.url, pg_module_url, key=key)
    second: Worker | None = None
    try:
        await first.wait_for(lambda: len(first.sweeps()) >= 1)
        second = await spawn(sim.url, pg_module_url, key=key)
        await second.wait_for(lambda: second.said("standby"))
        lists_before = sim.calls[("list", "")]
        sweeps_before = len(first.sweeps())
        await first.wait_for(lambda: len(first.sweeps()) >= sweeps_before + 4)
        # Exactly one sweeps: the second never did, and the backend saw one list per sweep.
        assert second.sweeps() == []
        lists = sim.calls[("list", "")] - lists_before
        assert abs(lists - (len(first.sweeps()) - sweeps_before)) <= 1
        assert sim.calls[("restart", stalled)] == 1

        killed_at = await first.kill()
        await second.wait_for(lambda: len(second.sweeps()) >= 3)
        # Standbys retry every interval; the dead leader's lock goes with its connection:
        # the first round begun after the kill leads, or the next (the first may have asked
        # before the database saw the connection go). Counted in rounds, not seconds: a
        # loaded machine delays the rounds, not the rule.
        assert second.rounds_until_leading(killed_at) <= 2, second.lines
        # Never two restarts of one instance: the new leader read the first restart and
        # defers the next one by the budget's minute.
        assert sim.calls[("restart", stalled)] == 1
        events = [(line["event"], line["id"]) for line in second.lines if "event" in line]
        assert ("restart_deferred", stalled) in events
        assert ("restart_attempted", stalled) not in events
        assert not any(line.get("event") == "stale" for line in second.lines)
        assert all(sim.calls[("restart", i)] == 0 for i in ids[1:])
    finally:
        await first.kill()
        if second is not None:
            await second.kill()


async def test_a_second_process_on_the_same_sqlite_file_is_refused(
    live_sim: tuple[BackendSimulator, list[float]], sqlite_store: Database, sqlite_path: Path
) -> None:
    sim, _ = live_sim
    sim.seed_instances(2)
    holder = f"{os.uname().nodename}:{os.getpid()}:test"
    leadership = SqliteLeadership(sqlite_store, holder=holder, ttl=timedelta(minutes=5))
    async with InstanceClient(sim.url, retry_backoff=0) as client:
        mine = HealthMonitor(client, store=sqlite_store, leadership=leadership)
        assert (await mine.sweep_once()).swept

        other = await spawn(sim.url, f"sqlite:///{sqlite_path}")
        try:
            await other.wait_for(lambda: other.said("refused"))
            assert await other.proc.wait() == 3
        finally:
            await other.kill()
        message = next(line["refused"] for line in other.lines if "refused" in line)
        assert str(sqlite_path) in message and f"pid {os.getpid()}" in message
        assert "use PostgreSQL for replicas" in message

        # The same refusal in-process: a second monitor never sweeps.
        rival = SqliteLeadership(sqlite_store, holder="elsewhere:1:x", ttl=timedelta(minutes=5))
        second = HealthMonitor(client, store=sqlite_store, leadership=rival)
        with pytest.raises(LeadershipRefused):
            await second.sweep_once()
        assert second.status().standing_by and not second.status().is_leader
        await mine.stop()
        assert (await second.sweep_once()).swept


async def test_a_standby_monitor_in_process_on_postgres(
    live_sim: tuple[BackendSimulator, list[float]], pg_store: Database
) -> None:
    sim, _ = live_sim
    sim.seed_instances(2)
    key = int.from_bytes(os.urandom(8), "big", signed=True)
    async with InstanceClient(sim.url, retry_backoff=0) as client:
        leader = HealthMonitor(
            client, store=pg_store, leadership=PostgresAdvisoryLeadership(pg_store.url, key=key)
        )
        standby = HealthMonitor(
            client, store=pg_store, leadership=PostgresAdvisoryLeadership(pg_store.url, key=key)
        )
        assert (await leader.sweep_once()).swept
        lists = sim.calls[("list", "")]
        assert not (await standby.sweep_once()).swept
        assert sim.calls[("list", "")] == lists
        assert standby.status().standing_by and leader.status().is_leader
        await leader.stop()  # releases the lock
        assert (await standby.sweep_once()).swept
        await standby.stop()
