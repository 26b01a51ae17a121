"""Compaction: the head's finished hours become chunks; reads see the same samples throughout."""

from __future__ import annotations

import asyncio
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from bot.store.database import Database
from bot.store.heartbeats.compaction import compact, compact_off_loop, compact_slice
from bot.store.heartbeats.keys import EPOCH, to_us
from bot.store.heartbeats.offloop import run_off_loop
from bot.store.heartbeats.reads import count_samples, latest_heartbeat
from bot.store.heartbeats.stats import history_stats, render
from bot.store.models import HeartbeatBatch, HeartbeatChunk
from bot.store.queries import heartbeat_history, record_heartbeats, upsert_instances
from bot.store.records import HeartbeatSampleIn, InstanceSnapshot, StoredHeartbeat

T0 = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


def _sample(instance_id: str, at: datetime, rng: random.Random) -> HeartbeatSampleIn:
    return HeartbeatSampleIn(
        instance_id,
        at,
        round(rng.uniform(0, 100), 1),
        rng.randrange(256, 4096),
        rng.randrange(1, 10**6),
        at - timedelta(microseconds=rng.randrange(0, 10**7)),
        rng.randrange(0, 10**6),
    )


def _sweeps(
    ids: list[str], start: datetime, count: int, seed: int = 3
) -> list[list[HeartbeatSampleIn]]:
    rng = random.Random(seed)
    return [
        [
            _sample(i, start + timedelta(seconds=30 * n, microseconds=rng.randrange(10**5)), rng)
            for i in ids
        ]
        for n in range(count)
    ]


async def _setup(db: Database, ids: list[str]) -> None:
    snapshots = [InstanceSnapshot(i, None, None, "running") for i in ids]
    await db.run(lambda s: upsert_instances(s, instances=snapshots, seen_at=T0))


async def _record(db: Database, sweeps: list[list[HeartbeatSampleIn]]) -> None:
    for batch in sweeps:
        await db.run(lambda s, b=batch: record_heartbeats(s, samples=b))


async def _history(db: Database, ids: list[str]) -> dict[str, list[StoredHeartbeat]]:
    async with db.session() as session:
        return {i: await heartbeat_history(session, i, since=EPOCH) for i in ids}


def _expected(
    sweeps: list[list[HeartbeatSampleIn]], ids: list[str]
) -> dict[str, list[StoredHeartbeat]]:
    return {
        i: [StoredHeartbeat.of(s) for batch in sweeps for s in batch if s.instance_id == i]
        for i in ids
    }


async def test_finished_hours_move_to_chunks_and_reads_do_not_change(db: Database) -> None:
    ids = [f"i-{n}" for n in range(7)]
    await _setup(db, ids)
    sweeps = _sweeps(ids, T0, 250)  # two full hours and a bit of the third
    await _record(db, sweeps)
    expected = _expected(sweeps, ids)
    assert await _history(db, ids) == expected

    result = await compact(db, before=T0 + timedelta(hours=2), series_per_slice=3)

    assert result.samples == 7 * 240
    assert (result.chunks_written, result.chunks_merged, result.batches) == (14, 0, 240)
    assert await _history(db, ids) == expected
    async with db.session() as session:
        assert await count_samples(session) == (7 * 10, 7 * 240)
        assert await session.scalar(select(func.count()).select_from(HeartbeatBatch)) == 10
        newest = await latest_heartbeat(session, "i-3")
    assert newest == expected["i-3"][-1]
    # Nothing left to do for the same hour: a second run is a no-op.
    again = await compact(db, before=T0 + timedelta(hours=2))
    assert (again.samples, again.batches) == (0, 0)


async def test_a_late_sample_merges_into_its_hours_chunk(db: Database) -> None:
    ids = ["i-1", "i-2"]
    await _setup(db, ids)
    sweeps = _sweeps(ids, T0, 120)
    await _record(db, sweeps)
    await compact(db, before=T0 + timedelta(hours=1))
    rng = random.Random(9)
    late = [_sample("i-1", T0 + timedelta(minutes=17, seconds=1), rng)]
    await _record(db, [late])
    async with db.session() as session:
        assert (
            await heartbeat_history(session, "i-1", since=T0, until=T0 + timedelta(minutes=18))
        )[-2] == StoredHeartbeat.of(late[0])

    result = await compact(db, before=T0 + timedelta(hours=1))

    assert (result.samples, result.chunks_written, result.chunks_merged) == (1, 0, 1)
    expected = _expected(sweeps, ids)
    expected["i-1"] = sorted(
        [*expected["i-1"], StoredHeartbeat.of(late[0])], key=lambda s: s.sampled_at
    )
    assert await _history(db, ids) == expected
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(HeartbeatChunk)) == 2


async def test_a_batch_spanning_the_cut_off_keeps_its_newer_samples_in_the_head(
    db: Database,
) -> None:
    ids = ["i-1"]
    await _setup(db, ids)
    rng = random.Random(4)
    batch = [_sample("i-1", T0 + timedelta(minutes=m), rng) for m in (10, 50, 70, 130)]
    await _record(db, [batch])

    result = await compact(db, before=T0 + timedelta(hours=1))

    assert (result.samples, result.batches) == (2, 0)
    async with db.session() as session:
        assert await count_samples(session) == (2, 2)
        row = await session.get(HeartbeatBatch, 1)
    assert row is not None and row.samples == 2
    assert await _history(db, ids) == _expected([batch], ids)


async def test_a_compaction_stopped_half_way_loses_nothing_and_resumes(db: Database) -> None:
    ids = [f"i-{n}" for n in range(5)]
    await _setup(db, ids)
    sweeps = _sweeps(ids, T0, 130)
    await _record(db, sweeps)
    slices = 0

    def stop_after_two() -> bool:
        nonlocal slices
        slices += 1
        return slices > 2

    first = await compact(
        db, before=T0 + timedelta(hours=1), series_per_slice=1, should_stop=stop_after_two
    )
    assert (first.samples, first.batches) == (2 * 120, 0)
    assert await _history(db, ids) == _expected(sweeps, ids)

    rest = await compact(db, before=T0 + timedelta(hours=1), series_per_slice=1)
    assert (rest.samples, rest.batches) == (3 * 120, 120)
    assert await _history(db, ids) == _expected(sweeps, ids)


@pytest.mark.parametrize("setting", [0, 1])
async def test_compaction_leaves_the_connections_secure_delete_as_it_found_it(
    sqlite_db: Database, setting: int
) -> None:
    # The head delete runs with secure_delete = FAST (its samples live on in the chunks);
    # every other delete on that connection must keep the setting the connection had.
    ids = ["i-1", "i-2"]
    await _setup(sqlite_db, ids)
    sweeps = _sweeps(ids, T0, 121)
    await _record(sqlite_db, sweeps)
    async with sqlite_db.session() as session, session.begin():
        await session.execute(text(f"PRAGMA secure_delete = {setting}"))
        batches = list(await session.scalars(select(HeartbeatBatch.id)))
        moved = await compact_slice(session, batches, 1, 3, before=to_us(T0 + timedelta(hours=1)))
        assert moved == (2 * 120, 2, 0)
        assert (await session.execute(text("PRAGMA secure_delete"))).scalar_one() == setting
    assert await _history(sqlite_db, ids) == _expected(sweeps, ids)


async def test_off_loop_work_runs_on_another_thread_and_loop(db: Database) -> None:
    ids = ["i-1", "i-2"]
    await _setup(db, ids)
    sweeps = _sweeps(ids, T0, 121)
    await _record(db, sweeps)
    seen: list[tuple[int, asyncio.AbstractEventLoop]] = []

    async def probe(own: Database, stop: object) -> int:
        seen.append((threading.get_ident(), asyncio.get_running_loop()))
        async with own.session() as session:
            return sum(await count_samples(session))

    assert await run_off_loop(db, probe) == 2 * 121
    assert seen[0][0] != threading.get_ident()
    assert seen[0][1] is not asyncio.get_running_loop()

    result = await compact_off_loop(db, before=T0 + timedelta(hours=1))
    assert result.samples == 2 * 120
    assert await _history(db, ids) == _expected(sweeps, ids)


async def test_stats_count_rows_and_bytes(db: Database) -> None:
    ids = [f"i-{n}" for n in range(3)]
    await _setup(db, ids)
    await _record(db, _sweeps(ids, T0, 125))
    await compact(db, before=T0 + timedelta(hours=1))

    stats = await history_stats(db)

    assert (stats.head_samples, stats.chunk_samples, stats.chunks) == (15, 360, 3)
    assert (stats.batches, stats.series) == (5, 3)
    assert stats.bytes_per_sample is not None and stats.raw_bytes > 0
    assert stats.file_bytes >= stats.raw_bytes
    lines = render(stats)
    assert lines[0] == "samples          375 (15 in the head, 360 in chunks)"
    assert any(line.startswith("bytes per sample ") for line in lines)


@pytest.mark.parametrize("naive", [datetime(2026, 3, 14, 10, 0)])
async def test_a_naive_time_is_refused_and_nothing_is_written(
    db: Database, naive: datetime
) -> None:
    await _setup(db, ["i-1"])
    bad = HeartbeatSampleIn("i-1", naive, 1.0, 1, 1, naive, 1)
    with pytest.raises(ValueError, match="naive datetime"):
        await db.run(lambda s: record_heartbeats(s, samples=[bad]))
    async with db.session() as session:
        assert await count_samples(session) == (0, 0)
