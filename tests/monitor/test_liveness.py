"""Honest liveness: a stalled monitor, an undecidable election, a database refusing writes.

The database that refuses writes is a real PostgreSQL database switched to
``default_transaction_read_only`` (what a read-only server or a full volume looks like
to the bot: it answers reads, it refuses every write).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.monitor import HealthMonitor
from bot.monitor.liveness import STALL_INTERVALS, liveness_problem
from bot.probes import OK, database_check
from bot.sim.backend import BackendSimulator
from bot.store.database import Database
from bot.store.leader import SqliteLeadership
from bot.store.models import LeaderLease
from bot.store.write_probe import PROBE_NAME, write_refusal
from tests.support.databases import pg_execute

MakeMonitor = Callable[..., HealthMonitor]

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=10)


def _problem(now: datetime, **kwargs: object) -> str | None:
    given: dict[str, object] = {
        "now": now,
        "interval": INTERVAL,
        "started_at": T0,
        "is_leader": True,
        "last_sweep_at": None,
        "last_round_at": None,
        "election_error": None,
    }
    given.update(kwargs)
    return liveness_problem(**given)  # type: ignore[arg-type]


def test_a_leader_is_stalled_past_three_intervals_without_a_completed_sweep() -> None:
    limit = INTERVAL * STALL_INTERVALS
    assert _problem(T0 + limit) is None  # started, no sweep yet, still within 3 intervals
    late = _problem(T0 + limit + timedelta(seconds=1)) or ""
    assert "stalled: no completed sweep for 31 s" in late
    swept = T0 + timedelta(minutes=5)
    assert _problem(swept + limit, last_sweep_at=swept) is None
    later = _problem(swept + limit + timedelta(seconds=5), last_sweep_at=swept)
    assert later is not None and "35 s" in later and "3 intervals of 10 s" in later


def test_a_standby_is_live_while_its_election_rounds_decide() -> None:
    later = T0 + timedelta(minutes=10)
    assert _problem(later, is_leader=False, last_round_at=later - INTERVAL) is None
    stalled = _problem(later, is_leader=False, last_round_at=T0)
    assert stalled is not None and "no leader election" in stalled


def test_an_undecidable_election_and_a_monitor_never_started() -> None:
    assert _problem(T0, election_error="OperationalError: disk full") == (
        "leadership cannot be decided: OperationalError: disk full"
    )
    assert _problem(T0 + timedelta(days=1), started_at=None) is None


@pytest.fixture
async def read_only_pg(
    pg_store: Database, pg_module_url: str, postgres_url: str
) -> AsyncIterator[Database]:
    """``pg_store``'s database, refusing writes from new connections on (reset afterwards).

    Altered from the maintenance database: the read-only one would refuse the ALTER back.
    """
    name = make_url(pg_module_url).database
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


async def test_the_write_probe_passes_on_a_writable_database(sqlite_store: Database) -> None:
    assert await write_refusal(sqlite_store) is None
    assert await write_refusal(sqlite_store) is None  # the row exists now: rewritten
    assert await database_check(sqlite_store)() == OK


async def test_a_database_refusing_writes_is_not_ready_and_leadership_undecided(
    read_only_pg: Database, sim: BackendSimulator, make_monitor: MakeMonitor
) -> None:
    assert await read_only_pg.ping()  # it still answers reads
    answer = await database_check(read_only_pg)()
    assert answer != OK and "refuses writes" in answer and "read-only" in answer
    assert read_only_pg.safe_url in answer
    # A lease-based election on it cannot decide anything: the monitor says so.
    sim.seed_instances(2)
    lease = SqliteLeadership(read_only_pg, holder="h:1:t", ttl=timedelta(minutes=1))
    monitor = make_monitor(read_only_pg, leadership=lease)
    report = await monitor.sweep_once()
    assert not report.swept
    problem = monitor.status().problem
    assert problem is not None and problem.startswith("leadership cannot be decided")
    assert "read-only" in problem


async def test_a_sqlite_file_locked_by_another_writer_is_busy_not_refusing(
    sqlite_store: Database, sqlite_path: Path
) -> None:
    other = sqlite3.connect(sqlite_path, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process's long write transaction
        assert await write_refusal(sqlite_store) is None
    finally:
        other.rollback()
        other.close()
    assert await write_refusal(sqlite_store) is None
    async with sqlite_store.session() as session:
        assert await session.get(LeaderLease, PROBE_NAME) is None  # the probe leaves no row
