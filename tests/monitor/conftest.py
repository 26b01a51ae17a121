"""Fixtures for the monitor tests: the simulator and the monitor on one fake clock, real stores.

The simulator's clock gives unix seconds, the monitor's an aware datetime: both read the
same :class:`~tests.conftest.FakeClock`, so advancing it moves backend and monitor together
and no test waits for a real interval.

PostgreSQL tests read ``STARPOD_TEST_POSTGRES_URL`` and skip (saying so) when it is unset;
each test module gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import TYPE_CHECKING

import pytest

from bot.backend.client import InstanceClient
from bot.monitor import HealthMonitor, MonitorEvent
from bot.sim.backend import BackendSimulator
from bot.store.database import Database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from tests.conftest import FakeClock


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest) -> Database | None:
    """No store (the seed's in-memory monitor), then a SQLite file."""
    if request.param == "memory":
        return None
    db: Database = request.getfixturevalue("sqlite_store")
    return db


@pytest.fixture
async def sim(fake_clock: FakeClock) -> AsyncIterator[BackendSimulator]:
    """A simulator on the shared fake clock; transitions settle at once."""
    async with BackendSimulator(clock=fake_clock, seed=11, transition_secs=0) as s:
        yield s


@pytest.fixture
async def client(sim: BackendSimulator) -> AsyncIterator[InstanceClient]:
    """The real client pointed at the simulator (no back-off between retries)."""
    async with InstanceClient(sim.url, timeout=5.0, retry_backoff=0) as c:
        yield c


class Recorder:
    """Collects the seed callbacks and the events a monitor fires."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, object]] = []
        self.events: list[MonitorEvent] = []

    def callback(self, instance_id: str, status: str, health: object) -> None:
        self.calls.append((instance_id, status, health))

    async def handler(self, _session: AsyncSession | None, event: MonitorEvent) -> None:
        self.events.append(event)

    def kinds(self, kind: str | None = None) -> list[MonitorEvent]:
        return [e for e in self.events if kind is None or e.kind == kind]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_monitor(
    client: InstanceClient, utc_clock: Callable[[], datetime], recorder: Recorder
) -> Callable[..., HealthMonitor]:
    """Build a monitor on the fake clock that reports to ``recorder``."""

    def build(store: Database | None = None, **kwargs: object) -> HealthMonitor:
        return (
            HealthMonitor(client, store=store, **kwargs)  # type: ignore[arg-type]
            .with_clock(utc_clock)
            .on_status_change(recorder.callback)
            .on_event(recorder.handler)
        )

    return build


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Database:
    """A migrated real database: a SQLite file, then PostgreSQL (skipped when unset)."""
    name = "sqlite_store" if request.param == "sqlite" else "pg_store"
    database: Database = request.getfixturevalue(name)
    return database
