"""Retention: old samples become correct hourly aggregates, in bounded batches."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.store.database import Database
from bot.store.models import HeartbeatHourly
from bot.store.queries import record_heartbeats, upsert_instances
from bot.store.records import HeartbeatSampleIn, InstanceSnapshot
from bot.store.retention import apply_retention, hour_of
from tests.support.heartbeats import stored_samples

NOW = datetime(2026, 3, 30, 12, 0, tzinfo=UTC)
OLD_HOUR = datetime(2026, 3, 20, 10, 0, tzinfo=UTC)  # 10 days before NOW: past raw_days=7


def _sample(
    instance_id: str, at: datetime, cpu: float, memory: int, disk: int
) -> HeartbeatSampleIn:
    return HeartbeatSampleIn(instance_id, at, cpu, memory, disk, at, 100)


async def _setup(db: Database, samples: list[HeartbeatSampleIn]) -> None:
    ids = sorted({s.instance_id for s in samples})
    snapshots = [InstanceSnapshot(i, None, None, "running") for i in ids]
    await db.run(lambda s: upsert_instances(s, instances=snapshots, seen_at=OLD_HOUR))
    await db.run(lambda s: record_heartbeats(s, samples=samples))


async def _hourly(db: Database) -> dict[tuple[str, datetime], HeartbeatHourly]:
    async with db.session() as session:
        rows = await session.scalars(select(HeartbeatHourly))
        return {(r.instance_id, r.hour): r for r in rows}


async def _raw_count(db: Database) -> int:
    return await stored_samples(db)


async def test_rolls_up_one_hour(db: Database) -> None:
    at = OLD_HOUR
    await _setup(
        db,
        [
            _sample("i-1", at + timedelta(minutes=50), 30.0, 300, 3),  # latest: disk_last
            _sample("i-1", at + timedelta(minutes=10), 10.0, 100, 1),
            _sample("i-1", at + timedelta(minutes=20), 20.0, 250, 2),
            _sample("i-1", at + timedelta(hours=1), 99.0, 999, 9),  # the next hour
            _sample("i-1", NOW - timedelta(days=1), 50.0, 500, 5),  # recent: stays raw
        ],
    )
    result = await apply_retention(db, now=NOW)

    assert (result.samples_rolled_up, result.hours_written, result.hourly_deleted) == (4, 2, 0)
    assert result.more is False
    hourly = await _hourly(db)
    row = hourly[("i-1", at)]
    assert row.samples == 3
    assert (row.cpu_min, row.cpu_max) == (10.0, 30.0)
    assert row.cpu_avg == pytest.approx(20.0)
    assert (row.memory_min, row.memory_max) == (100, 300)
    assert row.memory_avg == pytest.approx(650 / 3)
    assert row.disk_last == 3
    assert row.hour.tzinfo is not None
    assert hourly[("i-1", at + timedelta(hours=1))].samples == 1
    assert await _raw_count(db) == 1


async def test_nothing_to_do(db: Database) -> None:
    await _setup(db, [_sample("i-1", NOW - timedelta(days=6, hours=23), 1.0, 1, 1)])
    result = await apply_retention(db, now=NOW)
    assert not result.did_work and not result.more
    assert await _raw_count(db) == 1


async def test_batches_are_bounded_and_merge_partial_hours(db: Database) -> None:
    rng = random.Random(7)
    samples = [
        _sample(
            f"i-{n % 3}",
            OLD_HOUR + timedelta(seconds=rng.randrange(0, 3 * 3600)),
            round(rng.uniform(0, 100), 2),
            rng.randrange(100, 4000),
            rng.randrange(1, 100_000),
        )
        for n in range(300)
    ]
    await _setup(db, samples)

    calls = rolled = 0
    while True:
        result = await apply_retention(db, now=NOW, batch=2)
        calls += 1
        rolled += result.samples_rolled_up
        # A batch is whole chunks: at most two instance-hours each call.
        assert result.hours_written <= 2
        if not result.more:
            break
    # 3 instances x 3 hours = 9 chunks in batches of 2: five calls, the last one partial.
    assert calls == 5
    assert rolled == 300
    assert await _raw_count(db) == 0

    hourly = await _hourly(db)
    # Compare with the aggregates computed in one go from what was written.
    expected: dict[tuple[str, datetime], list[HeartbeatSampleIn]] = {}
    for s in samples:
        expected.setdefault((s.instance_id, hour_of(s.sampled_at)), []).append(s)
    assert set(hourly) == set(expected)
    for key, group in expected.items():
        row = hourly[key]
        cpu = [s.cpu_percent for s in group]
        memory = [s.memory_mb for s in group]
        last = max(group, key=lambda s: s.sampled_at)
        assert row.samples == len(group)
        assert (row.cpu_min, row.cpu_max) == (min(cpu), max(cpu))
        assert row.cpu_avg == pytest.approx(sum(cpu) / len(cpu))
        assert (row.memory_min, row.memory_max) == (min(memory), max(memory))
        assert row.memory_avg == pytest.approx(sum(memory) / len(memory))
        assert (row.disk_last, row.disk_last_at) == (last.disk_mb, last.sampled_at)


async def test_a_late_sample_does_not_override_a_later_disk_reading(db: Database) -> None:
    at = OLD_HOUR
    await _setup(db, [_sample("i-1", at + timedelta(minutes=40), 5.0, 50, 400)])
    await apply_retention(db, now=NOW)
    # A sample from earlier in the same hour arrives after the hour was rolled up.
    await db.run(
        lambda s: record_heartbeats(
            s, samples=[_sample("i-1", at + timedelta(minutes=5), 15.0, 150, 100)]
        )
    )
    await apply_retention(db, now=NOW)
    row = (await _hourly(db))[("i-1", at)]
    assert (row.samples, row.cpu_avg, row.disk_last) == (2, pytest.approx(10.0), 400)


async def test_old_hourly_rows_expire_in_bounded_batches(db: Database) -> None:
    # One sample in each of five hours, rolled up, then looked at 90+ days later.
    await _setup(db, [_sample("i-1", OLD_HOUR + timedelta(hours=h), 1.0, 1, 1) for h in range(5)])
    await apply_retention(db, now=NOW)
    assert len(await _hourly(db)) == 5

    later = OLD_HOUR + timedelta(days=90, hours=3)  # the first three hours are now too old
    first = await apply_retention(db, now=later, batch=2)
    assert (first.hourly_deleted, first.more) == (2, True)
    second = await apply_retention(db, now=later, batch=2)
    assert (second.hourly_deleted, second.more) == (1, False)
    remaining = sorted(hour for _, hour in await _hourly(db))
    assert remaining == [OLD_HOUR + timedelta(hours=3), OLD_HOUR + timedelta(hours=4)]


async def test_retention_arguments_are_checked(db: Database) -> None:
    with pytest.raises(ValueError):
        await apply_retention(db, now=NOW, batch=0)
    with pytest.raises(ValueError):
        await apply_retention(db, now=NOW, raw_days=-1)
