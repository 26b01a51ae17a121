"""A database that refuses writes: one error naming it, one log line per episode, reads go on.

Every refusal here is the real thing from the real driver: a SQLite file whose
connections may not grow it past its current size (``PRAGMA max_page_count``: what a
full disk says, "database or disk is full") or may not write at all (``PRAGMA
query_only``: "attempt to write a readonly database"); a PostgreSQL database switched to
``default_transaction_read_only``, and a PostgreSQL error raised with SQLSTATE 53100
(disk_full) by the server itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.audit import AuditDraft, AuditLog
from bot.store.database import Database
from bot.store.deliveries import DeliveryLog
from bot.store.errors import StoreUnwritable
from bot.store.models import LeaderLease
from bot.store.writability import FULL, READ_ONLY, unwritable
from bot.store.write_probe import write_refusal
from tests.support.databases import pg_execute

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WRITABILITY_LOG = "bot.store.writability"


def _limit_connections(db: Database, *pragmas: str) -> None:
    """Every new connection of ``db``'s engine runs ``pragmas`` (the pool is emptied first)."""

    @event.listens_for(db.engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()


async def _add_lease(db: Database, name: str) -> None:
    async def add(session: AsyncSession) -> None:
        session.add(
            LeaderLease(name=name, holder="h", acquired_at=T0, renewed_at=T0, expires_at=T0)
        )

    await db.run(add)


async def _lease_count(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(LeaderLease)) or 0)


async def _page_count(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(text("PRAGMA page_count"))).scalar_one())


async def test_a_full_sqlite_file_refuses_with_one_error_naming_it_logged_once(
    sqlite_store: Database, sqlite_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await _add_lease(sqlite_store, "before-the-disk-filled")
    # The file may not grow by one more page: the next pages it needs are refused.
    pages = await _page_count(sqlite_store)
    await sqlite_store.dispose()
    _limit_connections(sqlite_store, f"PRAGMA max_page_count = {pages}")
    caplog.set_level(logging.DEBUG, logger=WRITABILITY_LOG)
    refusals: list[StoreUnwritable] = []
    for n in range(200):
        try:
            await _add_lease(sqlite_store, f"filler-{n:03d}-" + "x" * 400)
        except StoreUnwritable as exc:
            refusals.append(exc)
            if len(refusals) == 3:
                break
    assert len(refusals) == 3, "the file never filled"
    error = refusals[0]
    assert error.kind == FULL and error.database == str(sqlite_path)
    assert str(error) == (
        f"database is full: {sqlite_path} refuses writes (database or disk is full)"
    )
    assert isinstance(error.__cause__, Exception) and unwritable(error.__cause__) == FULL
    assert not sqlite_store.writes.writable and sqlite_store.writes.episodes == 1
    errors = [r for r in caplog.records if r.name == WRITABILITY_LOG and r.levelno >= logging.ERROR]
    assert len(errors) == 1 and str(sqlite_path) in errors[0].getMessage()
    # Reads still answer, and what was committed before is there.
    async with sqlite_store.session() as session:
        assert await session.get(LeaderLease, "before-the-disk-filled") is not None
    # A write that lands does not end the episode on its own (it may have fitted a free
    # page): only the write probe does. Its connection has no page limit: space is back.
    assert await write_refusal(sqlite_store) is None
    assert sqlite_store.writes.writable
    assert [r for r in caplog.records if "takes writes again" in r.getMessage()]


async def test_a_read_only_sqlite_connection_is_read_only_not_busy(
    sqlite_store: Database, sqlite_path: Path
) -> None:
    await sqlite_store.dispose()
    _limit_connections(sqlite_store, "PRAGMA query_only = ON")
    with pytest.raises(StoreUnwritable) as caught:
        await _add_lease(sqlite_store, "refused")
    assert caught.value.kind == READ_ONLY
    assert str(caught.value) == (
        f"database is read-only: {sqlite_path} refuses writes"
        " (attempt to write a readonly database)"
    )
    assert await _lease_count(sqlite_store) == 0  # reads answer


async def test_delivery_keys_and_audit_rows_degrade_while_writes_are_refused(
    sqlite_store: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await sqlite_store.dispose()
    _limit_connections(sqlite_store, "PRAGMA query_only = ON")
    deliveries = DeliveryLog(sqlite_store, lambda: T0)
    # A command still runs once: the key is kept in memory instead.
    assert await deliveries.first_time("key-1") is True
    assert await deliveries.first_time("key-1") is False
    assert await deliveries.first_time("key-2") is True
    caplog.set_level(logging.WARNING)
    audit = AuditLog(sqlite_store, lambda: T0)
    draft = AuditDraft(user_id="U1", channel_id="C1", source="slack", action="list")
    await audit.write(draft)  # never raises
    warned = [r for r in caplog.records if r.name == "bot.store.audit"]
    assert (
        len(warned) == 1
        and "audit row not written (database is read-only" in warned[0].getMessage()
    )
    assert warned[0].exc_info is None  # one line, no traceback


@pytest.fixture
async def read_only_pg(
    pg_store: Database, pg_module_url: str, postgres_url: str
) -> AsyncIterator[Database]:
    """``pg_store``'s database, refusing writes from new connections on (reset afterwards)."""
    name = make_url(pg_module_url).database
    await _add_lease(pg_store, "before-read-only")
    await pg_store.dispose()
    await pg_execute(
        postgres_url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'
    )
    try:
        async with Database(pg_module_url) as db:
            yield db
    finally:
        await pg_execute(
            postgres_url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = off'
        )


async def test_a_read_only_postgresql_refuses_naming_its_url_without_the_password(
    read_only_pg: Database,
) -> None:
    with pytest.raises(StoreUnwritable) as caught:
        await _add_lease(read_only_pg, "refused")
    error = caught.value
    assert error.kind == READ_ONLY and error.database == read_only_pg.safe_url
    assert str(error).startswith(f"database is read-only: {read_only_pg.safe_url} refuses writes")
    assert "read-only transaction" in error.reason
    assert await _lease_count(read_only_pg) == 1  # reads answer; the row from before is there
    assert await write_refusal(read_only_pg) == str(read_only_pg.writes.refusal)
    assert not read_only_pg.writes.writable


def test_the_name_of_a_postgresql_database_masks_its_password() -> None:
    db = Database("postgresql://bot:s3cret@db.example:5432/starpod")
    assert db.name == "postgresql+asyncpg://bot:***@db.example:5432/starpod"
    assert "s3cret" not in str(db.writes.error(RuntimeError("x")))


async def test_a_postgresql_disk_full_error_is_full(pg_store: Database) -> None:
    async def disk_full(session: AsyncSession) -> None:
        # The server's own error, with the SQLSTATE a full volume gives (53100).
        await session.execute(
            text(
                "DO $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'"
                " USING ERRCODE = 'disk_full'; END $$"
            )
        )

    with pytest.raises(StoreUnwritable) as caught:
        await pg_store.run(disk_full)
    assert caught.value.kind == FULL
    assert str(caught.value) == (
        f"database is full: {pg_store.safe_url} refuses writes "
        "(could not extend file: No space left on device)"
    )
