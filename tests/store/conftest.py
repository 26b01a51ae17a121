"""Fixtures for the store tests: a real SQLite file, and real PostgreSQL when available.

PostgreSQL tests read ``STARPOD_TEST_POSTGRES_URL`` (CI:
``postgresql://postgres@127.0.0.1:5432/test``) and are skipped, saying so,
when it is unset. They run in a database created for this test session
(``starpod_test_<random>``, dropped at the end); each test starts from an
empty ``public`` schema.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store.database import Database
from tests.support.databases import migrated


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in a folder of this test's tmp dir (the store never creates folders)."""
    (tmp_path / "data").mkdir()
    return f"sqlite:///{tmp_path / 'data' / 'store.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each dialect in turn; PostgreSQL skips when STARPOD_TEST_POSTGRES_URL is unset."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_empty_url")


@pytest.fixture
async def empty_db(db_url: str) -> AsyncIterator[Database]:
    """A Database on an empty database (no migrations applied)."""
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def db(empty_db: Database) -> Database:
    """A Database migrated to head."""
    await empty_db.upgrade()
    return empty_db


@pytest.fixture
async def sqlite_db(sqlite_url: str) -> AsyncIterator[Database]:
    """A migrated SQLite Database, for tests about SQLite only."""
    async with migrated(sqlite_url) as database:
        yield database


@pytest.fixture
async def pg_db(pg_empty_url: str) -> AsyncIterator[Database]:
    """A migrated PostgreSQL Database, for tests about PostgreSQL only."""
    async with migrated(pg_empty_url) as database:
        yield database


@pytest.fixture
def advisory_key() -> int:
    """A random advisory-lock key, so parallel runs on one server never collide."""
    return int.from_bytes(os.urandom(8), "big", signed=True)
