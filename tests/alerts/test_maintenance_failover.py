"""Maintenance windows live in the database: a restarted bot or a new leader keeps them and
says each start and end once, even when two replicas announce at the same moment.

On SQLite and on PostgreSQL (where the claim is a conditional UPDATE racing for real).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from bot.store.database import Database
from tests.alerts.conftest import Harness, build_service


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Database:
    """The harness's store: a migrated SQLite file, or the test PostgreSQL database."""
    name = "sqlite_store" if request.param == "sqlite" else "pg_store"
    database: Database = request.getfixturevalue(name)
    return database


async def test_a_new_leader_keeps_the_window_and_nobody_says_it_twice(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    ids = h.sim.seed_instances(2, name_prefix="edge")
    await h.sweep()
    old = h.service
    added = await old.maintenance.add(
        "edge-*",
        h.utc() + timedelta(minutes=10),
        timedelta(hours=1),
        no_restart=True,
        reason="switch swap",
        actor="U0OPERATOR",
    )
    # A new process (the next leader) knows nothing but the database.
    new = build_service(h.db, h.slack, h.utc, holder="replica-b")
    assert [w.id for w in await new.maintenance.listing()] == [added.window.id]

    h.advance(10 * 60)
    assert not await new.restart_guard(ids[0]), "the new leader holds the restarts"
    first, second = await asyncio.gather(
        old.announce_maintenance(now=h.utc()), new.announce_maintenance(now=h.utc())
    )
    assert sorted(first.started + second.started) == [added.window.id]

    h.advance(3600)
    first, second = await asyncio.gather(
        old.announce_maintenance(now=h.utc()), new.announce_maintenance(now=h.utc())
    )
    assert [e.window.id for e in first.ended + second.ended] == [added.window.id]
    assert (await new.run_housekeeping()).maintenance_ended == []
    assert new.delivery is not None
    await new.delivery.run_once()
    assert [m.text for m in h.channel()] == [
        f"Maintenance #{added.window.id} started",
        f"Maintenance #{added.window.id} ended",
    ]
    assert await new.restart_guard(ids[0])
