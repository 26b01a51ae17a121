"""Database: URL normalisation, SQLite settings, aware datetimes, and the retrying write path."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.database import Database, normalise_url
from bot.store.errors import DatabaseBusyError, StoreError, UnsupportedDatabaseError
from bot.store.models import InstanceRow
from bot.store.queries import last_statuses, upsert_instances
from bot.store.records import InstanceSnapshot

T0 = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///./starpod-bot.db", "sqlite+aiosqlite:///./starpod-bot.db"),
        ("sqlite:////var/lib/bot.db", "sqlite+aiosqlite:////var/lib/bot.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+psycopg2://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql://u@h/d?sslmode=require", "postgresql+asyncpg://u@h/d?ssl=require"),
    ],
)
def test_normalise_url(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


@pytest.mark.parametrize("url", ["mysql://u@h/d", "not a url", "redis://h"])
def test_normalise_url_refuses_other_databases(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseError) as info:
        normalise_url(url)
    assert isinstance(info.value, StoreError)


def test_safe_url_masks_the_password() -> None:
    db = Database("postgresql://bot:s3cret@127.0.0.1:5432/bot")
    assert "s3cret" not in db.safe_url
    assert "s3cret" not in repr(db)
    assert db.dialect == "postgresql"


async def test_sqlite_file_settings(sqlite_url: str) -> None:
    async with Database(sqlite_url) as db:
        assert db.dialect == "sqlite"
        async with db.session() as session:
            mode = await session.scalar(text("PRAGMA journal_mode"))
            fks = await session.scalar(text("PRAGMA foreign_keys"))
            busy = await session.scalar(text("PRAGMA busy_timeout"))
        assert mode == "wal"
        assert fks == 1
        assert busy == 5000
        # The fixture's URL points into a folder that did not exist.
        assert db.sqlite_path is not None and db.sqlite_path.parent.is_dir()


async def test_sqlite_foreign_keys_are_enforced(sqlite_db: Database) -> None:
    from bot.store.queries import record_heartbeats
    from bot.store.records import HeartbeatSampleIn

    sample = HeartbeatSampleIn("nobody", T0, 1.0, 1, 1, T0, 1)
    with pytest.raises(IntegrityError):
        await sqlite_db.run(lambda s: record_heartbeats(s, samples=[sample]))


async def test_datetimes_come_back_aware_utc(db: Database) -> None:
    paris = timezone(timedelta(hours=2))
    local = datetime(2026, 3, 14, 12, 30, tzinfo=paris)  # 10:30 UTC
    await db.run(
        lambda s: upsert_instances(
            s, instances=[InstanceSnapshot("i-1", "one", "eu", "running")], seen_at=local
        )
    )
    async with db.session() as session:
        row = await session.get(InstanceRow, "i-1")
        # Comparing in SQL with an aware bound value in another zone.
        hit = await session.scalar(
            select(InstanceRow.id).where(InstanceRow.first_seen == T0 + timedelta(minutes=30))
        )
    assert row is not None
    assert row.first_seen == local
    assert row.first_seen.tzinfo is not None
    assert row.first_seen.utcoffset() == timedelta(0)
    assert row.first_seen.hour == 10
    assert hit == "i-1"


async def test_naive_datetimes_are_refused(db: Database) -> None:
    naive = datetime(2026, 3, 14, 10, 0)
    with pytest.raises(StatementError, match="naive datetime"):
        await db.run(
            lambda s: upsert_instances(
                s, instances=[InstanceSnapshot("i-1", None, None, "running")], seen_at=naive
            )
        )


async def test_ping(db: Database) -> None:
    assert await db.ping() is True


async def test_ping_false_when_unreachable() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    async with Database("postgresql://postgres@127.0.0.1:1/none") as db:
        assert await db.ping() is False


async def test_run_commits_and_returns(db: Database) -> None:
    async def write(session: AsyncSession) -> str:
        await upsert_instances(
            session, instances=[InstanceSnapshot("i-1", "a", None, "running")], seen_at=T0
        )
        return "done"

    assert await db.run(write) == "done"
    async with db.session() as session:
        assert await last_statuses(session) == {"i-1": "running"}


async def test_run_does_not_retry_other_errors(db: Database) -> None:
    calls = 0

    async def write(session: AsyncSession) -> None:
        nonlocal calls
        calls += 1
        session.add(InstanceRow(id="dup", status="running", first_seen=T0, last_seen=T0))
        await session.flush()
        session.add(InstanceRow(id="dup", status="running", first_seen=T0, last_seen=T0))
        await session.flush()

    with pytest.raises(IntegrityError):
        await db.run(write)
    assert calls == 1
    async with db.session() as session:
        # Rolled back: not even the first row was kept.
        assert await last_statuses(session) == {}


def _hold_exclusive_lock(path: str, locked: threading.Event, seconds: float) -> None:
    """Another connection takes the write lock, keeps it ``seconds``, then commits."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute(
            "INSERT INTO instances (id, status, first_seen, last_seen) "
            "VALUES ('from-locker', 'running', '2026-03-14 09:00:00.000000', "
            "'2026-03-14 09:00:00.000000')"
        )
        locked.set()
        threading.Event().wait(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


async def _write_while_locked(db: Database, *, seconds: float, attempts: int = 8) -> int:
    locked = threading.Event()
    locker = threading.Thread(
        target=_hold_exclusive_lock, args=(str(db.sqlite_path), locked, seconds)
    )
    locker.start()
    try:
        assert await asyncio.to_thread(locked.wait, 10)
        calls = 0

        async def write(session: AsyncSession) -> None:
            nonlocal calls
            calls += 1
            await upsert_instances(
                session, instances=[InstanceSnapshot("i-1", "a", None, "running")], seen_at=T0
            )

        await db.run(write, attempts=attempts)
        return calls
    finally:
        await asyncio.to_thread(locker.join)


async def test_locked_sqlite_write_waits_and_lands(sqlite_url: str) -> None:
    async with Database(sqlite_url) as db:
        await db.upgrade()
        await _write_while_locked(db, seconds=1.5)
        async with db.session() as session:
            statuses = await last_statuses(session)
    # Both writes are there: ours waited for the lock instead of failing.
    assert statuses == {"from-locker": "running", "i-1": "running"}


async def test_locked_sqlite_write_is_retried_past_a_short_busy_timeout(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A 50 ms busy timeout cannot cover a 1 s lock: only the retry loop can.
    async with Database(sqlite_url, busy_timeout_ms=50) as db:
        await db.upgrade()
        with caplog.at_level(logging.INFO, logger="bot.store.database"):
            await _write_while_locked(db, seconds=1.0)
        async with db.session() as session:
            statuses = await last_statuses(session)
    retries = [r for r in caplog.records if "database busy" in r.getMessage()]
    assert retries, "the write should have been retried at least once"
    assert statuses == {"from-locker": "running", "i-1": "running"}


async def test_locked_sqlite_gives_up_with_a_store_error(sqlite_url: str) -> None:
    async with Database(sqlite_url, busy_timeout_ms=50) as db:
        await db.upgrade()
        with pytest.raises(DatabaseBusyError) as info:
            await _write_while_locked(db, seconds=1.0, attempts=2)
        assert info.value.attempts == 2
        async with db.session() as session:
            statuses = await last_statuses(session)
    # The failed write was not half-applied; the caller still owns it.
    assert statuses == {"from-locker": "running"}


@pytest.mark.parametrize("sqlstate", ["serialization_failure", "deadlock_detected"])
async def test_postgres_transient_errors_are_retried(pg_db: Database, sqlstate: str) -> None:
    calls = 0

    async def write(session: AsyncSession) -> None:
        nonlocal calls
        calls += 1
        await upsert_instances(
            session, instances=[InstanceSnapshot(f"i-{calls}", None, None, "running")], seen_at=T0
        )
        if calls == 1:
            # The real server raising the real SQLSTATE, as a conflicting transaction would.
            await session.execute(
                text(f"DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '{sqlstate}'; END $$")
            )

    await pg_db.run(write)
    assert calls == 2
    async with pg_db.session() as session:
        # The first attempt was rolled back whole.
        assert await last_statuses(session) == {"i-2": "running"}


async def test_postgres_other_errors_are_not_retried(pg_db: Database) -> None:
    calls = 0

    async def write(session: AsyncSession) -> None:
        nonlocal calls
        calls += 1
        await session.execute(
            text("DO $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = 'raise_exception'; END $$")
        )

    with pytest.raises(Exception, match="boom"):
        await pg_db.run(write)
    assert calls == 1


async def test_each_engine_sets_its_own_sqlite_page_cache(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cache.db'}"
    async with Database(url) as default, Database(url, cache_kib=2048) as small:
        for db, kib in ((default, 32 * 1024), (small, 2048)):
            async with db.session() as session:
                assert (await session.execute(text("PRAGMA cache_size"))).scalar() == -kib
