"""Fixtures shared by every test folder. Folder-specific ones live in tests/<area>/conftest.py."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator
from bot.store.database import Database
from tests.support.databases import (
    create_pg_database,
    database_name,
    drop_pg_database,
    migrated,
    pg_execute,
    sqlite_url,
)

PG_ENV = "STARPOD_TEST_POSTGRES_URL"


class FakeClock:
    """A clock tests advance by hand: ``clock()`` gives unix seconds."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def backend_sim() -> AsyncIterator[BackendSimulator]:
    """A running backend simulator on 127.0.0.1 whose transitions settle at once."""
    async with BackendSimulator(transition_secs=0) as sim:
        yield sim


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server's maintenance URL, or a skip saying how to enable the tests.

    Tests never write to this database: they create their own (``pg_module_url``).
    """
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set; PostgreSQL tests skipped")
    return url


@pytest.fixture(scope="module")
def pg_module_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL database for this test module (dropped afterwards), or a skip."""
    admin = request.getfixturevalue("postgres_url")
    name = database_name()
    # Module scope outlives any test's event loop: each step gets a loop of its own.
    url = asyncio.run(create_pg_database(admin, name))
    try:
        yield url
    finally:
        asyncio.run(drop_pg_database(admin, name))


@pytest.fixture
async def pg_empty_url(pg_module_url: str) -> str:
    """The module's database with an empty ``public`` schema (no migrations)."""
    await pg_execute(pg_module_url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public")
    return pg_module_url


@pytest.fixture
async def pg_store(pg_empty_url: str) -> AsyncIterator[Database]:
    """A migrated PostgreSQL Database, emptied for each test."""
    async with migrated(pg_empty_url) as db:
        yield db


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """Where this test's SQLite file lives."""
    return tmp_path / "bot.db"


@pytest.fixture
async def sqlite_store(sqlite_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite file in this test's tmp dir."""
    async with migrated(sqlite_url(sqlite_path)) as db:
        yield db


@pytest.fixture
def utc_clock(fake_clock: FakeClock) -> Callable[[], datetime]:
    """The fake clock as the bot reads time: an aware UTC datetime."""
    return lambda: datetime.fromtimestamp(fake_clock(), UTC)


@pytest.fixture
async def slack_emulator() -> AsyncIterator[SlackEmulator]:
    """A running Slack emulator on 127.0.0.1 (real clock; channels C0ALERTS, C0OPS, C0GENERAL).

    Point the bot at ``slack_emulator.api_url`` with ``slack_emulator.bot_token`` and sign
    nothing yourself: ``send_slash_command``/``send_block_action`` sign with
    ``slack_emulator.signing_secret``. Assert ``slack_emulator.violations() == []`` at the end.
    """
    async with SlackEmulator() as emulator:
        yield emulator


@pytest.fixture
def reliability_figures(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """A dict a reliability/fuzz/security test fills with what it measured.

    When ``STARPOD_RELIABILITY_OUT`` names a file, the figures are appended to it as one JSON
    line (``bench/reliability.py`` builds RELIABILITY.md from them); otherwise they are dropped.
    """
    figures: dict[str, object] = {}
    yield figures
    out = os.environ.get("STARPOD_RELIABILITY_OUT")
    if out and figures:
        line = json.dumps({"test": request.node.nodeid, **figures}, default=str)
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
