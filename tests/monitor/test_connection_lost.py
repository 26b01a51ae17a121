"""The sweep's transaction on PostgreSQL when the server ends its session mid-way.

A restore or failover ends every session (``pg_terminate_backend``); a sweep whose
transaction was open then must not lose what it observed, nor log a traceback: the
transaction runs again on a new connection. Real PostgreSQL, the real monitor and the
backend simulator on the fake clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import text

from bot.monitor import EventKind, HealthMonitor, MonitorEvent
from bot.sim.backend import BackendSimulator
from bot.store.database import Database
from bot.store.queries import status_history
from tests.support.databases import pg_execute

if TYPE_CHECKING:
    import pytest
    from sqlalchemy.ext.asyncio import AsyncSession

    from tests.conftest import FakeClock


async def test_a_session_ended_under_an_event_handler_runs_the_transaction_again(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: Callable[..., HealthMonitor],
    pg_store: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = sim.seed_instances(2)
    ended: list[int] = []

    async def ends_its_session_once(session: AsyncSession | None, event: MonitorEvent) -> None:
        assert session is not None
        if event.kind != EventKind.STALE or ended:
            return
        ended.append(int(await session.scalar(text("SELECT pg_backend_pid()")) or 0))
        # Returns once the backend has exited: the transaction is gone with it.
        await pg_execute(pg_store.url, f"SELECT pg_terminate_backend({ended[0]}, 10000)")
        await session.execute(text("SELECT 1"))

    monitor = make_monitor(pg_store).on_event(ends_its_session_once)
    await monitor.sweep_once()
    sim.stop_heartbeat(ids[0])
    fake_clock.advance(100)
    with caplog.at_level(logging.INFO):
        report = await monitor.sweep_once()  # does not raise

    assert ended and report.restarted == [ids[0]]
    async with pg_store.session() as session:
        changes = await status_history(session, ids[0])
    # The stale change, recorded once (the first attempt's transaction was rolled back).
    assert [c.to_status for c in changes].count("error") == 1, changes
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    lost = [r for r in caplog.records if "database connection lost" in r.getMessage()]
    assert len(lost) == 1 and lost[0].levelno == logging.WARNING
