"""Fixtures for the store tests: a real SQLite file, and real PostgreSQL when available.

PostgreSQL tests read ``STARPOD_TEST_POSTGRES_URL`` (CI:
``postgresql://postgres@127.0.0.1:5432/test``) and are skipped, saying so,
when it is unset. They run in a database created for this test session
(``starpod_test_<random>``, dropped at the end); each test starts from an
empty ``public`` schema.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.store.database import Database

PG_ENV = "STARPOD_TEST_POSTGRES_URL"
PG_SKIP_REASON = f"{PG_ENV} is not set: PostgreSQL store tests skipped"


def _plain_dsn(url: str) -> str:
    """A libpq-style DSN for asyncpg used directly (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_plain_dsn(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The URL of the maintenance database we may create databases from."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(PG_SKIP_REASON)
    return url


@pytest.fixture(scope="session")
def pg_session_url(pg_admin_url: str) -> Iterator[str]:
    """A database of our own for this test session, dropped afterwards."""
    name = f"starpod_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(pg_admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def pg_url(pg_session_url: str) -> str:
    """The session database with an empty public schema."""
    await _admin(pg_session_url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public")
    return pg_session_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in this test's tmp dir (inside a folder that does not exist yet)."""
    return f"sqlite:///{tmp_path / 'data' / 'store.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each dialect in turn; PostgreSQL skips when STARPOD_TEST_POSTGRES_URL is unset."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


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
    database = Database(sqlite_url)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def pg_db(pg_url: str) -> AsyncIterator[Database]:
    """A migrated PostgreSQL Database, for tests about PostgreSQL only."""
    database = Database(pg_url)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def advisory_key() -> int:
    """A random advisory-lock key, so parallel runs on one server never collide."""
    return int.from_bytes(os.urandom(8), "big", signed=True)
