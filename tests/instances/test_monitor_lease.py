"""The monitor's auto-restart takes the same lease as a user's action."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.backend.client import InstanceClient
from bot.instances import Actor, InstanceLocks, Lease, Verb
from bot.monitor import HealthMonitor
from bot.sim.backend import BackendSimulator
from bot.store.database import Database
from bot.store.models import RestartAttempt
from tests.conftest import FakeClock


@pytest.fixture
async def clocked_sim(fake_clock: FakeClock) -> AsyncIterator[BackendSimulator]:
    async with BackendSimulator(clock=fake_clock, seed=5, transition_secs=0) as sim:
        yield sim


async def test_an_auto_restart_waits_for_a_users_action_to_end(
    clocked_sim: BackendSimulator,
    fake_clock: FakeClock,
    utc_clock: Callable[[], datetime],
    db: Database,
    replica_db: Database,
) -> None:
    sim = clocked_sim
    ids = sim.seed_instances(3)
    async with InstanceClient(sim.url, timeout=5.0, retry_backoff=0) as client:
        monitor = HealthMonitor(client, store=db).with_clock(utc_clock)
        await monitor.sweep_once()
        sim.stop_heartbeat(ids[0])
        fake_clock.advance(100)

        # A user on another replica is restarting it by hand right now.
        user = InstanceLocks(
            replica_db, holder="replica-b", ttl=timedelta(minutes=5), clock=utc_clock
        )
        lease = await user.acquire(ids[0], Verb.RESTART, Actor.slack("U0ANA"))
        assert isinstance(lease, Lease)
        report = await monitor.sweep_once()
        assert ids[0] in report.stale_ids
        assert report.restarted == [] and report.restart_failed == []
        assert sim.calls[("restart", ids[0])] == 0

        await user.release(lease)
        fake_clock.advance(30)
        report = await monitor.sweep_once()
        assert report.restarted == [ids[0]]
        assert sim.calls[("restart", ids[0])] == 1
    async with db.session() as session:
        rows = list(await session.scalars(select(RestartAttempt)))
    assert [(r.instance_id, r.cause, r.actor, r.ok) for r in rows] == [
        (ids[0], "monitor", None, True)
    ]
