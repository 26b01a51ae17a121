"""Leader election: one leader among replicas on PostgreSQL, one process per SQLite file."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from bot.store.database import Database, lock_key
from bot.store.errors import LeadershipRefused, StoreError
from bot.store.leader import (
    MONITOR_LOCK_KEY,
    Leadership,
    PostgresAdvisoryLeadership,
    SqliteLeadership,
    default_holder,
    leadership_for,
)

T0 = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)
TTL = timedelta(seconds=90)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _eventually(predicate: Callable[[], Awaitable[bool]], *, within: float = 15.0) -> bool:
    """Poll an async predicate every 0.1 s until it is true or ``within`` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.1)
    return False


@asynccontextmanager
async def _child(script: str, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run ``script`` in another Python process that prints one line once it is ready."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def _ready_line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None and proc.stderr is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
    if not line:
        raise AssertionError((await proc.stderr.read()).decode())
    return line.decode().strip()


def test_monitor_key_is_derived_from_its_name() -> None:
    assert lock_key("starpod-bot-monitor") == MONITOR_LOCK_KEY


# --- PostgreSQL -----------------------------------------------------------------------------


async def test_postgres_exactly_one_of_two_leads(pg_empty_url: str, advisory_key: int) -> None:
    first = PostgresAdvisoryLeadership(pg_empty_url, key=advisory_key, holder="a")
    second = PostgresAdvisoryLeadership(pg_empty_url, key=advisory_key, holder="b")
    try:
        results = await asyncio.gather(first.acquire(), second.acquire())
        assert sorted(results) == [False, True]
        leader, standby = (first, second) if results[0] else (second, first)
        assert leader.is_leader and not standby.is_leader
        assert await leader.check() is True
        assert await standby.check() is False
        # Trying again changes nothing while the leader lives.
        assert await standby.acquire() is False
        assert await leader.acquire() is True

        await leader.release()
        assert leader.is_leader is False
        assert await standby.acquire() is True
        assert await leader.acquire() is False
    finally:
        await first.release()
        await second.release()


async def test_postgres_lock_dies_with_its_connection(pg_empty_url: str, advisory_key: int) -> None:
    leader = PostgresAdvisoryLeadership(pg_empty_url, key=advisory_key, holder="leader")
    standby = PostgresAdvisoryLeadership(pg_empty_url, key=advisory_key, holder="standby")
    try:
        assert await leader.acquire() is True
        async with Database(pg_empty_url) as db, db.engine.connect() as admin:
            # The server kills the leader's dedicated connection (as a failover would).
            killed = await admin.scalar(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'starpod-bot leader leader'"
                )
            )
        assert killed is True
        assert await _eventually(standby.acquire)
        # The old leader notices before its next sweep.
        assert await leader.check() is False
        assert leader.is_leader is False
        assert await leader.acquire() is False
    finally:
        await leader.release()
        await standby.release()


LEADER_SCRIPT = """
import asyncio, sys
from bot.store.leader import PostgresAdvisoryLeadership

async def main():
    lead = PostgresAdvisoryLeadership(sys.argv[1], key=int(sys.argv[2]), holder="child")
    print("LEADER" if await lead.acquire() else "STANDBY", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_postgres_takeover_after_the_leader_process_is_killed(
    pg_empty_url: str, advisory_key: int
) -> None:
    standby = PostgresAdvisoryLeadership(pg_empty_url, key=advisory_key, holder="parent")
    try:
        async with _child(LEADER_SCRIPT, pg_empty_url, str(advisory_key)) as proc:
            assert await _ready_line(proc) == "LEADER"
            assert await standby.acquire() is False
            proc.send_signal(signal.SIGKILL)  # no clean-up, no unlock: the socket just closes
            await proc.wait()
            assert await _eventually(standby.acquire)
        assert await standby.check() is True
    finally:
        await standby.release()


async def test_leadership_for_picks_by_dialect(db: Database) -> None:
    chosen = leadership_for(db, holder="me", ttl=TTL)
    assert isinstance(chosen, Leadership)
    expected = PostgresAdvisoryLeadership if db.dialect == "postgresql" else SqliteLeadership
    assert type(chosen) is expected
    try:
        assert await chosen.acquire() is True
        assert await chosen.check() is True
    finally:
        await chosen.release()
    assert chosen.is_leader is False


# --- SQLite ---------------------------------------------------------------------------------


async def test_sqlite_second_holder_refused_until_the_lease_expires(sqlite_db: Database) -> None:
    clock = Clock()
    first = SqliteLeadership(sqlite_db, holder="host-a:100:x", ttl=TTL, clock=clock)
    second = SqliteLeadership(sqlite_db, holder="host-b:200:y", ttl=TTL, clock=clock)

    assert await first.acquire() is True
    assert await second.acquire() is False
    assert second.current_holder == "host-a:100:x"

    # Renewing pushes the expiry on: 80 s later the lease is still live.
    clock.now += timedelta(seconds=60)
    assert await first.check() is True
    clock.now += timedelta(seconds=80)
    assert await second.acquire() is False

    # The first process stops renewing (hung or gone): after the ttl the other takes over.
    clock.now += timedelta(seconds=11)
    assert await second.acquire() is True
    assert await first.check() is False
    assert await first.acquire() is False


async def test_sqlite_release_frees_the_lease_at_once(sqlite_db: Database) -> None:
    first = SqliteLeadership(sqlite_db, holder="a", ttl=TTL)
    second = SqliteLeadership(sqlite_db, holder="b", ttl=TTL)
    assert await first.acquire() is True
    await first.release()
    assert await second.acquire() is True


async def test_sqlite_refusal_message(sqlite_db: Database) -> None:
    first = SqliteLeadership(sqlite_db, holder="elsewhere:4242:abc", ttl=TTL)
    second = SqliteLeadership(sqlite_db, holder=default_holder(), ttl=TTL)
    assert await first.acquire() is True
    assert await second.acquire() is False
    refusal = second.refusal()
    assert isinstance(refusal, StoreError)
    assert str(refusal) == (
        f"another starpod-bot process is already using {sqlite_db.sqlite_path} (pid 4242); "
        "SQLite supports one process — use PostgreSQL for replicas"
    )


SQLITE_HOLDER_SCRIPT = """
import asyncio, sys
from datetime import timedelta
from bot.store.database import Database
from bot.store.leader import SqliteLeadership, default_holder

async def main():
    async with Database(sys.argv[1]) as db:
        lead = SqliteLeadership(db, holder=default_holder(), ttl=timedelta(hours=1))
        print("LEADER" if await lead.acquire() else "REFUSED", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_sqlite_second_process_is_refused_then_takes_over_a_dead_one(
    sqlite_db: Database,
) -> None:
    ours = SqliteLeadership(sqlite_db, holder=default_holder(), ttl=TTL)
    async with _child(SQLITE_HOLDER_SCRIPT, sqlite_db.url) as proc:
        assert await _ready_line(proc) == "LEADER"
        assert await ours.acquire() is False
        with pytest.raises(LeadershipRefused, match=rf"\(pid {proc.pid}\)"):
            raise ours.refusal()
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    # The lease has an hour left, but its holder is a dead process on this host.
    assert await ours.acquire() is True


async def test_sqlite_lease_of_an_earlier_process_with_our_pid_is_taken_over(
    sqlite_db: Database,
) -> None:
    # A container restarted in place: the bot is pid 1 again, the old lease names pid 1.
    clock = Clock()
    earlier = f"{socket.gethostname()}:{os.getpid()}:before-restart"
    await sqlite_db.run(
        lambda s: s.execute(
            text(
                "INSERT INTO leader_lease (name, holder, acquired_at, renewed_at, expires_at) "
                "VALUES ('monitor', :holder, :t, :t, :later)"
            ),
            {
                "holder": earlier,
                "t": "2026-03-14 10:00:00.000000",
                "later": "2026-03-14 11:00:00.000000",
            },
        )
    )
    ours = SqliteLeadership(sqlite_db, holder=default_holder(), ttl=TTL, clock=clock)
    assert await ours.acquire() is True
    # But a live holder in this very process is respected.
    sibling = SqliteLeadership(sqlite_db, holder=default_holder(), ttl=TTL, clock=clock)
    assert await sibling.acquire() is False


def test_holder_names_this_process() -> None:
    host, pid, token = default_holder().split(":")
    assert (host, int(pid)) == (socket.gethostname(), os.getpid())
    assert token != default_holder().split(":")[2]
