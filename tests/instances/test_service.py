"""The instance actions against the simulator and a real database (SQLite file, PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

import pytest
from sqlalchemy import func, select

from bot.instances import Actor, Busy, Done, Failed, Hooks, InstanceActions, Pending, Source, Verb
from bot.sim.backend import BackendSimulator
from bot.store.database import Database
from bot.store.models import (
    ACTION_SOURCES,
    InstanceLease,
    InstanceRow,
    RestartAttempt,
    StatusChange,
)

MakeActions = Callable[..., InstanceActions]


async def _leases(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(InstanceLease)) or 0)


async def _changes(db: Database, instance_id: str) -> list[tuple[str | None, str, str, str | None]]:
    async with db.session() as session:
        rows = await session.scalars(
            select(StatusChange)
            .where(StatusChange.instance_id == instance_id)
            .order_by(StatusChange.id)
        )
        return [(c.from_status, c.to_status, c.cause, c.actor) for c in rows]


async def _restarts(db: Database, instance_id: str) -> list[RestartAttempt]:
    async with db.session() as session:
        rows = await session.scalars(
            select(RestartAttempt)
            .where(RestartAttempt.instance_id == instance_id)
            .order_by(RestartAttempt.id)
        )
        return list(rows)


async def test_a_restart_is_followed_to_running_and_recorded_in_one_go(
    sim: BackendSimulator, db: Database, make_actions: MakeActions
) -> None:
    instance_id = sim.add_instance(name="web-1", status="paused")
    actions = make_actions(db)

    result = await actions.restart("web-1", Actor.slack("U0ANA"))

    assert isinstance(result, Done) and result.status == "running"
    assert result.before is not None and result.before.status == "paused"
    assert sim.calls[("restart", instance_id)] == 1
    assert await _changes(db, instance_id) == [("paused", "running", "user", "U0ANA")]
    async with db.session() as session:
        [change] = await session.scalars(select(StatusChange))
        row = await session.get(InstanceRow, instance_id)
    assert change.reason == "restart from Slack"
    assert row is not None and row.status == "running" and row.name == "web-1"
    [attempt] = await _restarts(db, instance_id)
    assert (attempt.cause, attempt.actor, attempt.ok, attempt.error) == (
        "user",
        "U0ANA",
        True,
        None,
    )
    assert await _leases(db) == 0


async def test_a_refused_restart_records_a_failed_attempt_and_no_change(
    sim: BackendSimulator, db: Database, make_actions: MakeActions
) -> None:
    instance_id = sim.add_instance(status="stopped")

    result = await make_actions(db).restart(instance_id[:8], Actor.gateway("gateway:ops"))

    assert isinstance(result, Failed) and result.exc is not None
    assert "409" in result.error and "Cannot restart" in result.error
    [attempt] = await _restarts(db, instance_id)
    assert (attempt.cause, attempt.actor, attempt.ok) == ("user", "gateway:ops", False)
    assert attempt.error == result.error
    assert await _changes(db, instance_id) == []
    assert await _leases(db) == 0


async def test_an_instance_that_ends_in_error_is_a_failure_with_the_status_seen(
    sim: BackendSimulator, db: Database, make_actions: MakeActions
) -> None:
    sim.transition_secs = 60  # the pause is taken and does not settle by itself
    instance_id = sim.add_instance(status="running")

    @asynccontextmanager
    async def while_waiting() -> AsyncIterator[None]:
        sim.set_status(instance_id, "error")  # it breaks while we wait
        yield

    result = await make_actions(db).pause(
        instance_id, Actor.incident("U0BOB"), hooks=Hooks(while_waiting=while_waiting)
    )

    assert isinstance(result, Failed) and result.exc is None
    assert result.status == "error" and result.error == "the instance ended in status error"
    assert await _changes(db, instance_id) == [("running", "error", "user", "U0BOB")]
    assert await _restarts(db, instance_id) == []


async def test_a_create_is_locked_followed_and_recorded(
    sim: BackendSimulator, db: Database, make_actions: MakeActions
) -> None:
    started: list[object] = []

    async def on_started(instance: object) -> None:
        started.append(instance)

    result = await make_actions(db).create(
        Actor.slack("U0ANA"), name="new-1", region="eu-west-1", hooks=Hooks(on_started)
    )

    assert started == [None]  # announced before the backend was asked
    assert isinstance(result, Done) and result.instance is not None
    assert result.instance.name == "new-1" and result.status == "running"
    assert await _changes(db, result.instance.id) == [(None, "running", "user", "U0ANA")]
    assert await _leases(db) == 0


async def test_kill_is_done_when_the_instance_is_gone(
    sim: BackendSimulator, db: Database, make_actions: MakeActions
) -> None:
    instance_id = sim.add_instance(status="running")

    result = await make_actions(db).kill(instance_id, Actor.slack("U0ANA"))

    assert isinstance(result, Done) and result.verb is Verb.KILL
    assert result.status == "stopped"
    assert await _changes(db, instance_id) == [("running", "stopped", "user", "U0ANA")]


async def test_a_slow_backend_is_pending_and_the_pauses_go_through_the_hook(
    sim: BackendSimulator, db: Database, make_actions: MakeActions
) -> None:
    sim.transition_secs = 60
    instance_id = sim.add_instance(status="paused")
    entered = 0

    @asynccontextmanager
    async def while_waiting() -> AsyncIterator[None]:
        nonlocal entered
        entered += 1
        yield

    actions = make_actions(db, poll_timeout=0.1)
    result = await actions.restart(
        instance_id, Actor.slack("U0ANA"), hooks=Hooks(while_waiting=while_waiting)
    )

    assert isinstance(result, Pending) and result.status == "paused"
    assert entered >= 1
    # Accepted: the attempt counts; the status did not change yet, so no change row.
    [attempt] = await _restarts(db, instance_id)
    assert attempt.ok
    assert await _changes(db, instance_id) == []
    assert await _leases(db) == 0


async def test_without_waiting_the_backends_answer_is_the_outcome(
    sim: BackendSimulator, db: Database, make_actions: MakeActions
) -> None:
    sim.transition_secs = 0
    instance_id = sim.add_instance(status="running")

    result = await make_actions(db).pause(instance_id, Actor.gateway("gateway:ops"), wait=False)

    assert isinstance(result, Done) and result.status == "paused"
    assert sim.calls[("get", instance_id)] == 1  # the resolve; no polling
    async with db.session() as session:
        [change] = await session.scalars(select(StatusChange))
    assert (change.actor, change.reason) == ("gateway:ops", "pause through the gateway")


async def test_a_second_action_on_the_same_replica_is_busy_not_failed(
    sim: BackendSimulator, db: Database, make_actions: MakeActions
) -> None:
    instance_id = sim.add_instance(status="running")
    actions = make_actions(db)
    second: list[object] = []

    async def meanwhile(_instance: object) -> None:
        second.append(await actions.pause(instance_id, Actor.slack("U0BOB")))

    first = await actions.restart(instance_id, Actor.slack("U0ANA"), hooks=Hooks(meanwhile))

    assert isinstance(first, Done)
    [busy] = second
    assert isinstance(busy, Busy) and busy.verb is Verb.PAUSE
    assert (busy.running.verb, busy.running.actor, busy.running.source) == (
        "restart",
        "U0ANA",
        "slack",
    )
    assert busy.running.holder == "replica-a" and busy.age_secs >= 0
    assert sim.calls[("pause", instance_id)] == 0


async def test_a_lease_is_released_when_the_action_raises(
    sim: BackendSimulator, db: Database, make_actions: MakeActions
) -> None:
    instance_id = sim.add_instance(status="running")
    actions = make_actions(db)

    async def crash(_instance: object) -> None:
        raise RuntimeError("the announcement blew up")

    with pytest.raises(RuntimeError, match="blew up"):
        await actions.restart(instance_id, Actor.slack("U0ANA"), hooks=Hooks(crash))
    assert await _leases(db) == 0
    assert isinstance(await actions.restart(instance_id, Actor.slack("U0ANA")), Done)


async def test_cancelling_a_waiting_action_releases_its_lease(
    sim: BackendSimulator, db: Database, make_actions: MakeActions
) -> None:
    sim.transition_secs = 60
    instance_id = sim.add_instance(status="paused")
    waiting = asyncio.Event()

    @asynccontextmanager
    async def while_waiting() -> AsyncIterator[None]:
        waiting.set()
        yield

    actions = make_actions(db, poll_timeout=60)
    task = asyncio.create_task(
        actions.restart(instance_id, Actor.slack("U0ANA"), hooks=Hooks(while_waiting=while_waiting))
    )
    await waiting.wait()
    assert await _leases(db) == 1
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    assert await _leases(db) == 0


async def test_every_source_is_recorded_the_same_way(
    sim: BackendSimulator, db: Database, make_actions: MakeActions
) -> None:
    actions = make_actions(db)
    actors = [
        Actor.slack("U0ANA"),
        Actor.gateway("gateway:ops"),
        Actor.incident("U0BOB"),
        Actor.monitor(),
        Actor(Source.CLI, "cli:alice"),
    ]
    for actor in actors:
        instance_id = sim.add_instance(status="paused")
        assert isinstance(await actions.restart(instance_id, actor), Done)
    async with db.session() as session:
        changes = list(await session.scalars(select(StatusChange).order_by(StatusChange.id)))
        attempts = list(await session.scalars(select(RestartAttempt).order_by(RestartAttempt.id)))
    assert [(c.cause, c.source, c.actor, c.reason) for c in changes] == [
        ("user", "slack", "U0ANA", "restart from Slack"),
        ("user", "gateway", "gateway:ops", "restart through the gateway"),
        ("user", "incident", "U0BOB", "restart from the incident message"),
        ("monitor", "monitor", None, "restart by the health monitor"),
        ("user", "cli", "cli:alice", "restart from the command line"),
    ]
    assert [(a.cause, a.source, a.actor, a.ok) for a in attempts] == [
        (c.cause, c.source, c.actor, True) for c in changes
    ]


def test_the_sources_are_the_ones_the_store_accepts() -> None:
    assert tuple(s.value for s in Source) == ACTION_SOURCES
