"""Retention runs right after the first sweep, not an hour after start.

A bot restarted more often than hourly used to never prune. Here a real Runtime sweeps
once (writing heartbeat samples), stops; the samples are aged past ``raw_days``; a new
Runtime on the same SQLite file rolls them up right after its first sweep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.runtime import Runtime
from bot.sim.backend import BackendSimulator
from bot.store.database import Database
from bot.store.heartbeats.keys import EPOCH, HOUR_US, chunk_key, to_us
from bot.store.models import HeartbeatBatch, HeartbeatChunk, HeartbeatHead, HeartbeatHourly
from bot.store.queries import heartbeat_history, known_instances, record_heartbeats
from bot.store.records import HeartbeatSampleIn
from tests.support.heartbeats import stored_samples

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
        written = await stored_samples(db)
        assert written == 3
        aged = datetime.now(UTC) - timedelta(days=settings.monitor.retention_raw_days + 2)

        async def age(session: AsyncSession) -> None:
            # Move the samples back in time through the store's own reads and writes,
            # wherever they sit (head or, past an hour's end, a chunk).
            ids = [i.id for i in await known_instances(session)]
            samples = [
                replace(HeartbeatSampleIn(*sample), sampled_at=aged)  # type: ignore[arg-type]
                for i in ids
                for sample in await heartbeat_history(session, i, since=EPOCH)
            ]
            for table in (HeartbeatHead, HeartbeatBatch, HeartbeatChunk):
                await session.execute(delete(table))
            await record_heartbeats(session, samples=samples)

        await db.run(age)
        async with Runtime(settings):
            # The interval is an hour and retention's hourly run is far off: only the run
            # right after the first sweep can roll these up.
            # The new runtime's own first sweep adds 3 fresh samples; the aged 3 must go.
            async with asyncio.timeout(20):
                while await _count(db, HeartbeatHourly) == 0:  # noqa: ASYNC110 - DB state
                    await asyncio.sleep(0.05)
        async with db.session() as session:
            old = await session.scalar(
                select(func.count())
                .select_from(HeartbeatHead)
                .where(HeartbeatHead.sampled_at <= to_us(aged))
            )
            old_chunks = await session.scalar(
                select(func.count())
                .select_from(HeartbeatChunk)
                .where(HeartbeatChunk.key < chunk_key(to_us(aged) // HOUR_US + 1, 1))
            )
        assert (old, old_chunks) == (0, 0)
        assert await _count(db, HeartbeatHourly) >= 1
