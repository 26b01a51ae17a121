"""Revision 0008 converts a database of the old layout without losing or changing a sample.

The database is filled through the old schema exactly as the old code wrote it (a Core
INSERT of ``heartbeat_samples`` rows through ``UtcDateTime``), read the old way, upgraded,
and read again through the new layout: before compaction (head) and after (chunks).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from bot.blockkit.sparkline import bucketize, sparkline
from bot.store.database import Database
from bot.store.heartbeats.compaction import compact
from bot.store.heartbeats.legacy import LEGACY_SAMPLES
from bot.store.heartbeats.reads import count_samples
from bot.store.queries import (
    heartbeat_history,
    record_status_change,
    upsert_instances,
    uptime_ratio,
)
from bot.store.records import InstanceSnapshot

T0 = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)
IDS = ["i-alpha", "i-beta", "i-3 'quoted' <&>"]

# The old layout's table, as revision 0001 created it and the old record_heartbeats wrote it.
OLD = LEGACY_SAMPLES


def _old_rows() -> list[dict[str, object]]:
    rng = random.Random(15)
    rows: list[dict[str, object]] = []
    for n in range(3 * 120 + 17):  # three whole hours and part of a fourth
        at = T0 + timedelta(seconds=30 * n, microseconds=0 if n % 7 == 0 else rng.randrange(10**6))
        for k, instance_id in enumerate(IDS):
            cpu = rng.uniform(0, 100) if k == 1 else round(rng.uniform(0, 100), 1)
            rows.append(
                {
                    "instance_id": instance_id,
                    "sampled_at": at,
                    "cpu_percent": cpu,
                    "memory_mb": 1024 + rng.randrange(-3, 4) * (n % 5 == 0),
                    "disk_mb": 50_000 + n // 100,
                    "last_heartbeat": at - timedelta(microseconds=rng.randrange(10**7)),
                    "uptime_secs": 7200 + 30 * n,
                }
            )
    # Two samples of one instance at the very same moment, and one from the far past.
    rows.append({**rows[5], "cpu_percent": 99.5})
    rows.append(
        {**rows[0], "sampled_at": T0 - timedelta(days=2), "last_heartbeat": T0 - timedelta(days=3)}
    )
    return rows


async def _fill_old(db: Database) -> None:
    await db.upgrade("0007")
    snapshots = [InstanceSnapshot(i, None, None, "running") for i in IDS]
    await db.run(lambda s: upsert_instances(s, instances=snapshots, seen_at=T0))
    for i in IDS:
        await db.run(
            lambda s, i=i: record_status_change(
                s, instance_id=i, from_status=None, to_status="running", at=T0, cause="backend"
            )
        )
    await db.run(
        lambda s: record_status_change(
            s,
            instance_id="i-beta",
            from_status="running",
            to_status="error",
            at=T0 + timedelta(hours=1, minutes=3),
            cause="monitor",
        )
    )
    rows = _old_rows()
    await db.run(lambda s: s.execute(insert(OLD), rows))


async def _old_reads(db: Database) -> dict[str, list[tuple[object, ...]]]:
    """Each instance's samples as the old heartbeat_history returned them (ties by id)."""
    async with db.session() as session:
        result = await session.execute(select(OLD).order_by(OLD.c.sampled_at, OLD.c.id))
        found: dict[str, list[tuple[object, ...]]] = {i: [] for i in IDS}
        for row in result:
            found[row.instance_id].append(tuple(row)[1:])
    return found


async def _new_reads(db: Database) -> dict[str, list[tuple[object, ...]]]:
    async with db.session() as session:
        return {
            i: [tuple(s) for s in await heartbeat_history(session, i, since=T0 - timedelta(days=7))]
            for i in IDS
        }


async def _views(db: Database, now: datetime) -> dict[str, tuple[object, ...]]:
    """What /starpod health shows from the store: the last hour's sparklines, 24 h uptime."""
    views = {}
    async with db.session() as session:
        for i in IDS:
            start = now - timedelta(hours=1)
            history = await heartbeat_history(session, i, since=start, until=now)
            cpu = bucketize(
                [(s.sampled_at, s.cpu_percent) for s in history], start=start, end=now, buckets=20
            )
            memory = bucketize(
                [(s.sampled_at, float(s.memory_mb)) for s in history],
                start=start,
                end=now,
                buckets=20,
            )
            ratio = await uptime_ratio(session, i, since=now - timedelta(hours=24), until=now)
            views[i] = (sparkline(cpu, lo=0, hi=100), sparkline(memory), len(history), ratio)
    return views


async def _old_views(db: Database, now: datetime) -> dict[str, tuple[object, ...]]:
    old = await _old_reads(db)
    views = {}
    async with db.session() as session:
        for i in IDS:
            start = now - timedelta(hours=1)
            # Rows are (instance_id, sampled_at, cpu_percent, memory_mb, ...).
            history = [r for r in old[i] if start <= r[1] < now]  # type: ignore[operator]
            points = [(r[1], r[2]) for r in history]
            cpu = bucketize(points, start=start, end=now, buckets=20)  # type: ignore[arg-type]
            points = [(r[1], float(r[3])) for r in history]  # type: ignore[arg-type]
            memory = bucketize(points, start=start, end=now, buckets=20)  # type: ignore[arg-type]
            ratio = await uptime_ratio(session, i, since=now - timedelta(hours=24), until=now)
            views[i] = (sparkline(cpu, lo=0, hi=100), sparkline(memory), len(history), ratio)
    return views


async def test_upgrade_converts_every_old_sample_exactly(empty_db: Database) -> None:
    db = empty_db
    await _fill_old(db)
    before = await _old_reads(db)
    now = T0 + timedelta(hours=3, minutes=5)
    views_before = await _old_views(db, now)
    assert sum(map(len, before.values())) == len(_old_rows())

    await db.upgrade()

    # In the head: same samples, same order, same values to the microsecond and the bit.
    assert await _new_reads(db) == before
    assert await _views(db, now) == views_before

    result = await compact(db, before=T0 + timedelta(hours=3))
    async with db.session() as session:
        head, chunked = await count_samples(session)
    assert result.samples == chunked == len(_old_rows()) - 17 * 3
    assert head == 17 * 3
    assert await _new_reads(db) == before
    assert await _views(db, now) == views_before


async def test_downgrade_restores_the_old_rows_and_refuses_to_drop_chunks(
    empty_db: Database,
) -> None:
    db = empty_db
    await _fill_old(db)
    before = await _old_reads(db)
    await db.upgrade()

    await db.downgrade("0007")
    assert await _old_reads(db) == before

    await db.upgrade()
    await compact(db, before=T0 + timedelta(hours=1))
    with pytest.raises(RuntimeError, match="refusing to drop it"):
        await db.downgrade("0007")
    assert await _new_reads(db) == before
