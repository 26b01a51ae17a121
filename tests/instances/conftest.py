"""Fixtures for the instance actions: the simulator, a real database, and two replicas."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from bot.backend.client import InstanceClient
from bot.instances import InstanceActions
from bot.sim.backend import BackendSimulator
from bot.store.database import Database


@pytest.fixture
async def sim() -> AsyncIterator[BackendSimulator]:
    """A simulator whose transitions take 0.1 s, so the wait polls a few times."""
    async with BackendSimulator(transition_secs=0.1, seed=3) as simulator:
        yield simulator


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Database:
    """A migrated real database: a SQLite file, then PostgreSQL (skipped when unset)."""
    name = "sqlite_store" if request.param == "sqlite" else "pg_store"
    database: Database = request.getfixturevalue(name)
    return database


@pytest.fixture
async def replica_db(db: Database) -> AsyncIterator[Database]:
    """The same database through a second engine, as another replica opens it."""
    other = Database(db.url)
    try:
        yield other
    finally:
        await other.dispose()


@pytest.fixture
async def backend(sim: BackendSimulator) -> AsyncIterator[InstanceClient]:
    async with InstanceClient(sim.url, timeout=5.0, retry_backoff=0) as client:
        yield client


class MovableClock:
    """Real UTC time plus an offset a test moves forward (to pass a lease's expiry)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def make_actions(backend: InstanceClient) -> Callable[..., InstanceActions]:
    """``make_actions(db, holder=…, clock=…, poll_timeout=…)``: one replica's service."""

    def build(
        database: Database,
        *,
        holder: str = "replica-a",
        clock: Callable[[], datetime] | None = None,
        poll_timeout: float = 5.0,
    ) -> InstanceActions:
        return InstanceActions(
            backend,
            database,
            clock=clock or MovableClock(),
            poll_interval=0.02,
            poll_timeout=poll_timeout,
            holder=holder,
        )

    return build
