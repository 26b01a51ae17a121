"""Retention runs right after the first sweep, not an hour after start.

A bot restarted more often than hourly used to never prune. Here a real Runtime sweeps
once (writing heartbeat samples), stops; the samples are aged past ``raw_days``; a new
Runtime on the same SQLite file rolls them up right after its first sweep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.runtime import Runtime
from bot.sim.backend import BackendSimulator
from bot.store.database import Database
from bot.store.models import HeartbeatHourly, HeartbeatSample

MakeSettings = Callable[..., Settings]


async def _count(db: Database, model: type, *where: object) -> int:
    async with db.session() as session:
        query = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
        return int(await session.scalar(query) or 0)


async def test_a_restarted_bot_prunes_old_samples_right_after_its_first_sweep(
    make_settings: MakeSettings, backend_sim: BackendSimulator
) -> None:
    backend_sim.seed_instances(3)
    settings = make_settings()
    async with Runtime(settings) as first:
        monitor = first.monitor
        assert monitor is not None
        async with asyncio.timeout(10):
            while monitor.status().last_sweep_at is None:  # noqa: ASYNC110 - another task's state
                await asyncio.sleep(0.01)
    async with Database(settings.database.url) as db:
        written = await _count(db, HeartbeatSample)
        assert written == 3
        aged = datetime.now(UTC) - timedelta(days=settings.monitor.retention_raw_days + 2)

        async def age(session: AsyncSession) -> None:
            await session.execute(update(HeartbeatSample).values(sampled_at=aged))

        await db.run(age)
        async with Runtime(settings):
            # The interval is an hour and retention's hourly run is far off: only the run
            # right after the first sweep can roll these up.
            old = HeartbeatSample.sampled_at <= aged
            async with asyncio.timeout(20):
                while await _count(db, HeartbeatSample, old) > 0:  # noqa: ASYNC110 - DB state
                    await asyncio.sleep(0.05)
        assert await _count(db, HeartbeatHourly) >= 1
