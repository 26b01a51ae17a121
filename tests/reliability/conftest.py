"""Fixtures for the chaos tests: the simulator and the monitor on one fake clock, real stores.

Sizes: CI runs every chaos test scaled down; ``STARPOD_LONG_TESTS=1`` (set by
``bench/reliability.py``) runs the full-size versions the issue names (60 sweeps over a
larger fleet, 10,000 instances, 60 s of load). :data:`LONG` and :func:`size` say which.

Copied in small from ``tests/monitor/conftest.py`` (test folders cannot import each other):
the fake-clock simulator, the UTC view of the clock, migrated SQLite and PostgreSQL stores.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.engine import make_url

from bot.monitor import MonitorEvent
from bot.sim.backend import BackendSimulator
from bot.store.database import Database

if TYPE_CHECKING:
    from tests.conftest import FakeClock

LONG = os.environ.get("STARPOD_LONG_TESTS") == "1"
PG_ENV = "STARPOD_TEST_POSTGRES_URL"


def size(ci: int, long: int) -> int:
    """The CI size, or the full size when ``STARPOD_LONG_TESTS=1``."""
    return long if LONG else ci


def _plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_plain_dsn(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def pg_module_url() -> Iterator[str]:
    """A PostgreSQL database for this test module (dropped afterwards), or a skip."""
    admin = os.environ.get(PG_ENV)
    if not admin:
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL reliability tests skipped")
    name = f"starpod_reliability_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def pg_store(pg_module_url: str) -> AsyncIterator[Database]:
    """A migrated PostgreSQL Database, emptied for each test."""
    await _admin(pg_module_url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public")
    db = Database(pg_module_url)
    await db.upgrade()
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "reliability.db"


@pytest.fixture
async def sqlite_store(sqlite_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite file in this test's tmp dir."""
    db = Database(f"sqlite:///{sqlite_path}")
    await db.upgrade()
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def utc_clock(fake_clock: FakeClock) -> Callable[[], datetime]:
    """The monitor's view of the shared fake clock."""
    return lambda: datetime.fromtimestamp(fake_clock(), UTC)


@pytest.fixture
async def sim(fake_clock: FakeClock) -> AsyncIterator[BackendSimulator]:
    """A simulator on the shared fake clock; transitions settle at once."""
    async with BackendSimulator(clock=fake_clock, seed=7, transition_secs=0) as s:
        yield s


class EventLog:
    """Collects the monitor's events (handler) and the seed's callbacks."""

    def __init__(self) -> None:
        self.events: list[MonitorEvent] = []
        self.callbacks: list[tuple[str, str]] = []

    async def handler(self, _session: Any, event: MonitorEvent) -> None:
        self.events.append(event)

    def callback(self, instance_id: str, status: str, _health: object) -> None:
        self.callbacks.append((instance_id, status))

    def of(self, kind: str) -> list[MonitorEvent]:
        return [e for e in self.events if e.kind == kind]


@pytest.fixture
def event_log() -> EventLog:
    return EventLog()
