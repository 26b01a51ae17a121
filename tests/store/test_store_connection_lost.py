"""A PostgreSQL session the server ends under the bot (a restart, a failover, an operator's
``pg_terminate_backend``): a write not yet committed runs again on a new connection.

Real PostgreSQL: the test ends the write's own session from a second connection, with
``pg_terminate_backend(pid, timeout)``, which returns once the backend has exited.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.database import Database, session_ended
from bot.store.queries import last_statuses, upsert_instances
from bot.store.records import InstanceSnapshot
from bot.store.write_probe import write_refusal
from tests.support.databases import pg_execute

SEEN_AT = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


def _row(instance_id: str) -> list[InstanceSnapshot]:
    return [InstanceSnapshot(instance_id, None, None, "running")]


async def _pid(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)


async def _end_session(db: Database, pid: int) -> None:
    """End backend ``pid`` from another connection; returns once it has exited."""
    await pg_execute(db.url, f"SELECT pg_terminate_backend({pid}, 10000)")


async def _stored(db: Database) -> dict[str, str]:
    async with db.session() as session:
        return await last_statuses(session)


async def test_a_session_ended_before_the_commit_runs_the_write_again(
    pg_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def write(session: AsyncSession) -> int:
        nonlocal calls
        calls += 1
        await upsert_instances(session, instances=_row(f"i-{calls}"), seen_at=SEEN_AT)
        if calls == 1:
            await _end_session(pg_db, await _pid(session))
            # The session is gone, and the first row's transaction with it.
            await upsert_instances(session, instances=_row("i-1b"), seen_at=SEEN_AT)
        return calls

    with caplog.at_level(logging.INFO, logger="bot.store.database"):
        assert await pg_db.run(write) == 2
    assert await _stored(pg_db) == {"i-2": "running"}
    lost = [r for r in caplog.records if "database connection lost" in r.getMessage()]
    assert len(lost) == 1, [r.getMessage() for r in caplog.records]
    assert lost[0].levelno == logging.WARNING and lost[0].exc_info is None
    assert "\n" not in lost[0].getMessage()


async def test_a_pooled_connection_whose_session_ended_is_replaced(pg_db: Database) -> None:

    async def pid_of_a_write(session: AsyncSession) -> int:
        await upsert_instances(session, instances=_row("i-1"), seen_at=SEEN_AT)
        return await _pid(session)

    # The write's connection goes back to the pool, idle; then the server ends its session
    # (it sends that connection an unrequested FATAL error, then closes it).
    pid = await pg_db.run(pid_of_a_write)
    await _end_session(pg_db, pid)

    async def next_write(session: AsyncSession) -> int:
        await upsert_instances(session, instances=_row("i-2"), seen_at=SEEN_AT)
        return await _pid(session)

    assert await pg_db.run(next_write) != pid
    assert await _stored(pg_db) == {"i-1": "running", "i-2": "running"}


async def test_a_session_ended_at_the_commit_is_not_run_twice(pg_db: Database) -> None:
    # At the commit the outcome is unknown to the client (the server may have committed
    # before the connection broke): running the write again could apply it twice.
    calls = 0

    async def write(session: AsyncSession) -> None:
        nonlocal calls
        calls += 1
        await upsert_instances(session, instances=_row("i-1"), seen_at=SEEN_AT)
        await _end_session(pg_db, await _pid(session))

    with pytest.raises(DBAPIError) as info:
        await pg_db.run(write)
    assert info.value.connection_invalidated
    assert calls == 1
    # (Here the server ended the session before the COMMIT reached it.)
    assert await _stored(pg_db) == {}


@pytest.mark.parametrize(
    "sqlstate", ["admin_shutdown", "crash_shutdown", "cannot_connect_now", "connection_failure"]
)
async def test_every_way_the_server_says_a_session_ended_counts(
    pg_db: Database, sqlstate: str
) -> None:
    # The real server raising the real SQLSTATE, as it does when it ends the session (here
    # the socket stays open: only the error says so, as while its end is still in flight).
    pids: list[int] = []

    async def write(session: AsyncSession) -> None:
        pids.append(await _pid(session))
        await upsert_instances(session, instances=_row(f"i-{len(pids)}"), seen_at=SEEN_AT)
        if len(pids) == 1:
            await session.execute(
                text(f"DO $$ BEGIN RAISE EXCEPTION 'ended' USING ERRCODE = '{sqlstate}'; END $$")
            )

    await pg_db.run(write)
    assert len(pids) == 2 and pids[1] != pids[0], pids  # run again, on a new connection
    assert await _stored(pg_db) == {"i-2": "running"}


async def test_a_write_probe_whose_session_ended_is_not_a_refusal(pg_store: Database) -> None:
    # The server ends the probe's first session (a trigger raising admin_shutdown once: a
    # sequence, unlike a row, keeps its count when the transaction rolls back). That says
    # nothing about writes: no episode, no "degraded" message.
    await pg_execute(
        pg_store.url,
        "CREATE SEQUENCE end_once",
        "CREATE FUNCTION end_session_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF nextval('end_once') = 1 THEN"
        " RAISE EXCEPTION 'terminating connection' USING ERRCODE = 'admin_shutdown'; END IF;"
        " RETURN NEW; END $$",
        "CREATE TRIGGER end_session_once BEFORE INSERT OR UPDATE ON leader_lease"
        " FOR EACH ROW EXECUTE FUNCTION end_session_once()",
    )
    assert await write_refusal(pg_store) is None
    assert pg_store.writes.writable and pg_store.writes.episodes == 0


@pytest.mark.parametrize(
    ("error", "ended"),
    [
        # An idle connection that got the server's FATAL before its socket's end was read.
        (asyncpg.exceptions.InternalClientError("cannot switch to state 12; another …"), True),
        (asyncpg.exceptions.AdminShutdownError("terminating connection due to admin…"), True),
        (asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the…"), True),
        (asyncpg.exceptions.SerializationError("could not serialize access"), False),
        (asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute INSERT in a…"), False),
        (asyncpg.exceptions.UniqueViolationError("duplicate key value"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_which_driver_errors_say_the_session_ended(error: Exception, ended: bool) -> None:
    assert session_ended(error) is ended
