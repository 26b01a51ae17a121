"""The lease across replicas: two service objects, two engines, one database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select

from bot.instances import (
    ActionResult,
    Actor,
    Busy,
    Done,
    Failed,
    Holder,
    Hooks,
    InstanceActions,
    InstanceLocks,
    Lease,
    Verb,
)
from bot.sim.backend import BackendSimulator
from bot.store.database import Database
from bot.store.models import InstanceLease, RestartAttempt
from tests.instances.conftest import MovableClock

MakeActions = Callable[..., InstanceActions]


async def test_two_replicas_restarting_at_once_restart_once(
    sim: BackendSimulator, db: Database, replica_db: Database, make_actions: MakeActions
) -> None:
    instance_id = sim.add_instance(name="shared", status="running")
    replicas = [make_actions(db, holder="replica-a"), make_actions(replica_db, holder="replica-b")]
    users = ["U0ANA", "U0BOB"]
    tasks: list[asyncio.Task[ActionResult]] = []

    def restart(index: int) -> asyncio.Task[ActionResult]:
        async def hold_until_the_other_answers(_instance: object) -> None:
            # Whoever took the lease keeps it until the other replica has its answer, so
            # the two really overlap; both getting the lease would hang here (and time out).
            await tasks[1 - index]

        return asyncio.create_task(
            replicas[index].restart(
                instance_id, Actor.slack(users[index]), hooks=Hooks(hold_until_the_other_answers)
            )
        )

    tasks.extend([restart(0), restart(1)])
    async with asyncio.timeout(20):
        results = await asyncio.gather(*tasks)

    done = [r for r in results if isinstance(r, Done)]
    busy = [r for r in results if isinstance(r, Busy)]
    assert len(done) == 1 and len(busy) == 1
    assert not any(isinstance(r, Failed) for r in results)
    assert sim.calls[("restart", instance_id)] == 1
    winner = users[results.index(done[0])]
    assert busy[0].running.actor == winner and busy[0].running.verb == "restart"
    assert busy[0].running.holder == ("replica-a" if winner == "U0ANA" else "replica-b")
    async with db.session() as session:
        attempts = list(await session.scalars(select(RestartAttempt)))
        leases = await session.scalar(select(func.count()).select_from(InstanceLease))
    assert [(a.actor, a.ok) for a in attempts] == [(winner, True)]
    assert leases == 0


async def test_an_expired_lease_is_taken_over(
    sim: BackendSimulator, db: Database, replica_db: Database, make_actions: MakeActions
) -> None:
    instance_id = sim.add_instance(status="running")
    # Replica A takes the lease and dies mid-action: nobody ever releases it.
    crashed = InstanceLocks(db, holder="replica-a", ttl=timedelta(seconds=60))
    assert isinstance(await crashed.acquire(instance_id, Verb.RESTART, Actor.slack("U0ANA")), Lease)

    clock = MovableClock()
    survivor = make_actions(replica_db, holder="replica-b", clock=clock)
    refused = await survivor.restart(instance_id, Actor.slack("U0BOB"))
    assert isinstance(refused, Busy) and refused.running.holder == "replica-a"
    assert sim.calls[("restart", instance_id)] == 0

    clock.offset = timedelta(seconds=61)
    result = await survivor.restart(instance_id, Actor.slack("U0BOB"))
    assert isinstance(result, Done)
    assert sim.calls[("restart", instance_id)] == 1
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(InstanceLease)) == 0


async def test_a_taken_over_lease_is_not_released_by_its_old_holder(db: Database) -> None:
    clock = MovableClock()
    old = InstanceLocks(db, holder="replica-a", ttl=timedelta(seconds=10), clock=clock)
    new = InstanceLocks(db, holder="replica-b", ttl=timedelta(seconds=10), clock=clock)
    stale = await old.acquire("i-1", Verb.PAUSE, Actor.slack("U0ANA"))
    assert isinstance(stale, Lease)
    clock.offset = timedelta(seconds=11)
    fresh = await new.acquire("i-1", Verb.KILL, Actor.gateway("gateway:ops"))
    assert isinstance(fresh, Lease)

    await old.release(stale)  # the old holder comes back late: not its lease any more
    holder = await old.acquire("i-1", Verb.RESTART, Actor.monitor())
    assert isinstance(holder, Holder)
    assert (holder.holder, holder.verb, holder.actor, holder.source) == (
        "replica-b",
        "kill",
        "gateway:ops",
        "gateway",
    )


async def test_a_lease_says_who_holds_it_and_since_when(db: Database) -> None:
    clock = MovableClock()
    locks = InstanceLocks(db, holder="replica-a", clock=clock)
    lease = await locks.acquire("i", Verb.RESTART, Actor.slack("U1"))
    assert isinstance(lease, Lease)
    busy = await locks.acquire("i", Verb.PAUSE, Actor.slack("U2"))
    assert isinstance(busy, Holder) and busy.actor == "U1" and busy.verb == "restart"
    clock.offset = timedelta(seconds=3)
    assert 3.0 <= locks.age(busy) < 4.0
    await locks.release(lease)
    assert isinstance(await locks.acquire("i", Verb.PAUSE, Actor.slack("U2")), Lease)
