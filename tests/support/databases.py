"""Real databases for the tests: migrated ``Database`` objects and throw-away PostgreSQL ones.

Every name is random and every SQLite file lives under the test's ``tmp_path``, so test
processes running side by side (pytest-xdist workers, a second pytest) never share one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.store.database import Database


def sqlite_url(path: Path) -> str:
    """The database URL of the SQLite file at ``path``."""
    return f"sqlite:///{path}"


@asynccontextmanager
async def migrated(url: str) -> AsyncIterator[Database]:
    """A ``Database`` on ``url`` migrated to head; its connections are closed on exit."""
    async with Database(url) as database:
        await database.upgrade()
        yield database


def database_name(prefix: str = "starpod_test") -> str:
    """A fresh PostgreSQL database name (``starpod_test_<12 hex>``)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def pg_execute(url: str, *statements: str) -> None:
    """Run SQL statements on ``url`` outside any transaction (CREATE DATABASE needs that)."""
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def create_pg_database(admin_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``admin_url``; return its URL."""
    await pg_execute(admin_url, f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` (and end its sessions) if it exists."""
    await pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
