"""SIGKILL at any moment loses no committed sample: while writing, and while compacting.

A real process writes (or compacts) the history of a real SQLite file or PostgreSQL
database and is killed with SIGKILL; the test then reads everything back.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from bot.store.database import Database
from bot.store.heartbeats.keys import EPOCH
from bot.store.heartbeats.reads import count_samples
from bot.store.queries import heartbeat_history, record_heartbeats, upsert_instances
from bot.store.records import InstanceSnapshot, StoredHeartbeat
from tests.store.heartbeat_worker import IDS, T0, batch

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("heartbeat_worker.py")


async def _spawn(db: Database, mode: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(WORKER), "--db", db.url, mode, stdout=asyncio.subprocess.PIPE
    )


async def _kill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def _history(db: Database) -> dict[str, list[StoredHeartbeat]]:
    async with db.session() as session:
        return {i: await heartbeat_history(session, i, since=EPOCH) for i in IDS}


def _expected(writes: int) -> dict[str, list[StoredHeartbeat]]:
    found: dict[str, list[StoredHeartbeat]] = {i: [] for i in IDS}
    for n in range(writes):
        for sample in batch(n):
            found[sample.instance_id].append(StoredHeartbeat.of(sample))
    return found


async def _register(db: Database) -> None:
    snapshots = [InstanceSnapshot(i, None, None, "running") for i in IDS]
    await db.run(lambda s: upsert_instances(s, instances=snapshots, seen_at=T0))


async def test_a_writer_killed_mid_write_keeps_every_committed_batch(db: Database) -> None:
    await _register(db)
    proc = await _spawn(db, "write")
    assert proc.stdout is not None
    committed = -1
    try:
        async with asyncio.timeout(60):
            while committed < 20:
                committed = int(await proc.stdout.readline())
    finally:
        await _kill(proc)
    history = await _history(db)
    # Everything it said was committed is there, exactly; at most one more write made it
    # (committed, killed before it could say so), and never half of one.
    writes = len(history[IDS[0]])
    assert writes in (committed + 1, committed + 2)
    assert history == _expected(writes)


async def test_a_compaction_killed_half_way_loses_nothing(db: Database) -> None:
    await _register(db)
    for n in range(130):
        await db.run(lambda s, b=batch(n): record_heartbeats(s, samples=b))
    expected = _expected(130)
    proc = await _spawn(db, "compact")
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(60):
            # Killed somewhere after its third transaction began: mid-transaction or between.
            for _ in range(3):
                assert await proc.stdout.readline() == b"slice\n"
    finally:
        await _kill(proc)
    assert await _history(db) == expected
    # And a later compaction finishes the job.
    proc = await _spawn(db, "compact")
    assert proc.stdout is not None
    async with asyncio.timeout(120):
        while (line := await proc.stdout.readline()) != b"done\n":
            assert line == b"slice\n"
    await proc.wait()
    assert await _history(db) == expected


async def test_a_compaction_killed_between_writing_chunks_and_deleting_the_head_loses_nothing(
    db: Database,
) -> None:
    await _register(db)
    for n in range(130):
        await db.run(lambda s, b=batch(n): record_heartbeats(s, samples=b))
    expected = _expected(130)
    proc = await _spawn(db, "compact-die-at-delete")
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        lines = await proc.stdout.read()  # to EOF: the worker killed itself
        assert await proc.wait() == -signal.SIGKILL
    # Two slices committed; the third had written its chunks when it died.
    assert lines == b"slice\n" * 3
    async with db.session() as session:
        head, chunked = await count_samples(session)
    assert (head, chunked) == (130 * 38, 130 * 2)
    assert await _history(db) == expected
    proc = await _spawn(db, "compact")
    assert proc.stdout is not None
    async with asyncio.timeout(120):
        while (line := await proc.stdout.readline()) != b"done\n":
            assert line == b"slice\n"
    await proc.wait()
    assert await _history(db) == expected
