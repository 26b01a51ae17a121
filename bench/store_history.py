"""Store: heartbeat history reads and heartbeat batch writes, each beside its alternative.

Fills a table with ~2 million 30-second samples (700 instances x 2,880 = 24 h each,
by default), then times ``heartbeat_history`` for one instance's 24 h against the same
query with the ``(instance_id, sampled_at)`` index disabled, and ``record_heartbeats``
of 10,000 rows against adding 10,000 ORM objects one by one. Target: history < 20 ms.

    python bench/store_history.py                                  # SQLite in a temp dir
    python bench/store_history.py --url postgresql://postgres@127.0.0.1:5432/bench
    python bench/store_history.py --instances 100 --json          # smaller, machine-readable

The PostgreSQL database named by ``--url`` is emptied first: point it at a scratch one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.database import Database
from bot.store.models import HeartbeatSample
from bot.store.queries import heartbeat_history, record_heartbeats, upsert_instances
from bot.store.records import HeartbeatSampleIn, InstanceSnapshot

SAMPLES_PER_DAY = 2880
NOW = datetime(2026, 3, 15, tzinfo=UTC)


def _samples(instance_id: str, count: int, *, start: datetime) -> list[HeartbeatSampleIn]:
    return [
        HeartbeatSampleIn(
            instance_id,
            start + timedelta(seconds=30 * n),
            float(n % 100),
            512 + n % 64,
            10_000,
            start + timedelta(seconds=30 * n),
            n * 30,
        )
        for n in range(count)
    ]


async def _fill(db: Database, instances: int) -> None:
    ids = [f"i-{n:05d}" for n in range(instances)]
    await db.run(
        lambda s: upsert_instances(
            s, instances=[InstanceSnapshot(i, i, None, "running") for i in ids], seen_at=NOW
        )
    )
    start = NOW - timedelta(days=1)
    # Interleave instances in time, as a live monitor writes them.
    for chunk_start in range(0, SAMPLES_PER_DAY, 20):
        batch = [
            HeartbeatSampleIn(
                i,
                start + timedelta(seconds=30 * n),
                float(n % 100),
                512 + n % 64,
                10_000,
                start + timedelta(seconds=30 * n),
                n * 30,
            )
            for n in range(chunk_start, chunk_start + 20)
            for i in ids
        ]
        await db.run(lambda s, b=batch: record_heartbeats(s, samples=b))
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql("ANALYZE")


async def _time(fn: Callable[[], Awaitable[object]], rounds: int) -> list[float]:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        await fn()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def _history_without_index(db: Database, instance_id: str, since: datetime) -> list[object]:
    async with db.session() as session:
        if db.dialect == "sqlite":
            rows = await session.execute(
                text(
                    "SELECT * FROM heartbeat_samples NOT INDEXED "
                    "WHERE instance_id = :i AND sampled_at >= :s ORDER BY sampled_at"
                ),
                {"i": instance_id, "s": since.replace(tzinfo=None).isoformat(sep=" ")},
            )
        else:
            await session.execute(text("SET LOCAL enable_indexscan = off"))
            await session.execute(text("SET LOCAL enable_bitmapscan = off"))
            rows = await session.execute(
                select(HeartbeatSample)
                .where(HeartbeatSample.instance_id == instance_id)
                .where(HeartbeatSample.sampled_at >= since)
                .order_by(HeartbeatSample.sampled_at)
            )
        return list(rows)


async def run(url: str, instances: int, rounds: int) -> dict[str, object]:
    async with Database(url) as db:
        if db.dialect == "postgresql":
            await db.downgrade("base")
        await db.upgrade()
        started = time.perf_counter()
        await _fill(db, instances)
        fill_s = time.perf_counter() - started
        target = f"i-{instances // 2:05d}"
        since = NOW - timedelta(days=1)

        async def indexed() -> None:
            async with db.session() as session:
                rows = await heartbeat_history(session, target, since=since)
                assert len(rows) == SAMPLES_PER_DAY, len(rows)

        history = await _time(indexed, rounds)
        scan = await _time(lambda: _history_without_index(db, target, since), max(1, rounds // 10))

        fresh = "i-bench-write"
        await db.run(
            lambda s: upsert_instances(
                s, instances=[InstanceSnapshot(fresh, None, None, "running")], seen_at=NOW
            )
        )
        batch = _samples(fresh, 10_000, start=NOW)

        async def batched() -> None:
            await db.run(lambda s: record_heartbeats(s, samples=batch))

        async def one_by_one() -> None:
            async def add(session: AsyncSession) -> None:
                for sample in batch:
                    session.add(
                        HeartbeatSample(
                            instance_id=sample.instance_id,
                            sampled_at=sample.sampled_at,
                            cpu_percent=sample.cpu_percent,
                            memory_mb=sample.memory_mb,
                            disk_mb=sample.disk_mb,
                            last_heartbeat=sample.last_heartbeat,
                            uptime_secs=sample.uptime_secs,
                        )
                    )
                await session.flush()

            await db.run(add)

        writes = await _time(batched, 3)
        orm_writes = await _time(one_by_one, 3)
        return {
            "dialect": db.dialect,
            "rows": instances * SAMPLES_PER_DAY,
            "fill_seconds": round(fill_s, 1),
            "history_ms_median": round(statistics.median(history), 2),
            "history_ms_p95": round(sorted(history)[int(len(history) * 0.95) - 1], 2),
            "history_without_index_ms_median": round(statistics.median(scan), 2),
            "write_10k_batched_ms_median": round(statistics.median(writes), 1),
            "write_10k_orm_objects_ms_median": round(statistics.median(orm_writes), 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("--instances", type=int, default=700, help="instances, 2,880 samples each")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a few seconds: 10 instances")
    args = parser.parse_args()
    if args.quick:
        args.instances, args.rounds = 10, 5
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        result = asyncio.run(run(url, args.instances, args.rounds))
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['dialect']}: {result['rows']:,} samples (filled in {result['fill_seconds']} s)")
    print(
        f"  heartbeat_history, 24 h of one instance: {result['history_ms_median']} ms median, "
        f"{result['history_ms_p95']} ms p95 (target < 20 ms)"
    )
    print(
        f"  same query without the index:            {result['history_without_index_ms_median']} ms"
    )
    print(f"  record_heartbeats, 10,000 rows:          {result['write_10k_batched_ms_median']} ms")
    print(
        f"  10,000 ORM objects added one by one:     {result['write_10k_orm_objects_ms_median']} ms"
    )


if __name__ == "__main__":
    main()
