"""Heartbeat history: the chunked layout (issue 15) beside the old one, measured in one run.

Three phases, each on both layouts, each in a fresh SQLite file (the default store):

1. **Sweeps.** ``--instances`` samples per sweep (10,000), ``--hours`` of 30 s sweeps written
   through the store: the new layout through ``record_heartbeats`` (the head) with
   compaction at each hour's end (``compact_off_loop``, timed, and the event loop's worst
   stall measured while it runs); the old layout (revision 0007's ``heartbeat_samples`` and
   its two indexes) by the old code path, a Core ``INSERT`` of the rows. Measured:
   ``/proc/self/io`` ``write_bytes`` over the sweeps (WAL and checkpoints included) per
   sample, as a multiple of a sample's 56 logical bytes (7 fields x 8 bytes); the
   file's bytes per sample (database + WAL, indexes included).
2. **Reads.** ``--read-instances`` instances with 24 h of samples each (23 h in chunks and
   the last hour in the head, or 2,880 rows each in the old table): one instance's 24 h,
   through ``heartbeat_history`` (the old layout: its indexed query), p50 and p95.
3. **A simulated week.** ``--week-instances`` instances, ``--days`` days of 30 s samples
   with hourly compaction and retention (7 raw days): the file size at each day's end.
4. **PostgreSQL bytes** (with ``--pg-url``, default env ``STARPOD_TEST_POSTGRES_URL``): the
   sweeps of phase 1 into a scratch database per layout (created and dropped here),
   compacted hourly; ``pg_total_relation_size`` (TOAST and indexes included) of the
   heartbeat tables over the samples they hold, after a ``VACUUM``.

    python bench/heartbeat_store.py                 # full: ~10 minutes on a quiet 2-core box
    python bench/heartbeat_store.py --quick         # seconds: small sizes, same code paths
    python bench/heartbeat_store.py --json
    python bench/heartbeat_store.py --pg-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    Table,
    delete,
    insert,
    select,
)
from sweep import ScratchPostgres  # bench/sweep.py: the scratch database both benches use

from bot.store.database import Database
from bot.store.heartbeats.codec import Sample, encode
from bot.store.heartbeats.compaction import compact, compact_off_loop
from bot.store.heartbeats.keys import HOUR_US, chunk_key, to_us
from bot.store.heartbeats.legacy import LEGACY_SAMPLES
from bot.store.heartbeats.stats import history_stats
from bot.store.heartbeats.writes import series_ids
from bot.store.models import HeartbeatChunk
from bot.store.queries import heartbeat_history, record_heartbeats, upsert_instances
from bot.store.records import HeartbeatSampleIn, InstanceSnapshot
from bot.store.retention import apply_retention

START = datetime(2026, 3, 1, tzinfo=UTC)
INTERVAL = timedelta(seconds=30)
LOGICAL_BYTES = 56  # instance key, sampled_at, cpu, memory, disk, heartbeat, uptime: 8 each

# Revision 0007's heartbeat_samples, written as the old record_heartbeats wrote it.
OLD = LEGACY_SAMPLES
_OLD_CHUNK = 2000
CHUNKS = cast(Table, HeartbeatChunk.__table__)


def write_bytes() -> int:
    """Bytes this process has caused to be written to storage (Linux /proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no write_bytes")


def file_bytes(db: Database) -> int:
    path = db.sqlite_path
    assert path is not None
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


class Fleet:
    """Deterministic, monitor-like readings: a sweep's samples share one jittered time."""

    def __init__(self, instances: int, seed: int = 15) -> None:
        self.ids = [f"i-{n:05d}" for n in range(instances)]
        rng = random.Random(seed)
        self.cpu = [rng.uniform(5, 60) for _ in self.ids]
        self.memory = [rng.randrange(512, 8192) for _ in self.ids]
        self.disk = [rng.randrange(10_000, 100_000) for _ in self.ids]
        self.rng = rng

    def sweep(self, n: int) -> list[HeartbeatSampleIn]:
        rng = self.rng
        at = START + n * INTERVAL + timedelta(microseconds=rng.randrange(0, 200_000))
        out = []
        for k, instance_id in enumerate(self.ids):
            cpu = self.cpu[k] = min(100.0, max(0.0, self.cpu[k] + rng.gauss(0, 3)))
            if rng.random() < 0.02:
                self.memory[k] += rng.randrange(-64, 65)
            if rng.random() < 0.005:
                self.disk[k] += 1
            beat = at - timedelta(microseconds=rng.randrange(0, 10_000_000))
            out.append(
                HeartbeatSampleIn(
                    instance_id,
                    at,
                    round(cpu, 1),
                    self.memory[k],
                    self.disk[k],
                    beat,
                    86_400 + 30 * n,
                )
            )
        return out


async def _register(db: Database, ids: list[str]) -> None:
    snapshots = [InstanceSnapshot(i, i, None, "running") for i in ids]
    await db.run(lambda s: upsert_instances(s, instances=snapshots, seen_at=START))


async def _old_write(db: Database, samples: list[HeartbeatSampleIn]) -> None:
    rows = [
        {
            "instance_id": s.instance_id,
            "sampled_at": s.sampled_at,
            "cpu_percent": s.cpu_percent,
            "memory_mb": s.memory_mb,
            "disk_mb": s.disk_mb,
            "last_heartbeat": s.last_heartbeat,
            "uptime_secs": s.uptime_secs,
        }
        for s in samples
    ]

    async def write(session: Any) -> None:
        for start in range(0, len(rows), _OLD_CHUNK):
            await session.execute(insert(OLD), rows[start : start + _OLD_CHUNK])

    await db.run(write)


async def _bytes_per_sample(db: Database, table: str) -> float:
    """Pages of ``table`` (``dbstat``) over the samples it holds."""
    count = "SUM(samples)" if table == "heartbeat_chunks" else "COUNT(*)"
    async with db.engine.connect() as conn:
        pages = (
            await conn.exec_driver_sql(f"SELECT SUM(pgsize) FROM dbstat WHERE name = '{table}'")
        ).scalar()
        samples = (await conn.exec_driver_sql(f"SELECT {count} FROM {table}")).scalar()
    return round(pages / samples, 2)


async def _max_stall_during(work: Awaitable[Any]) -> tuple[Any, float]:
    """Run ``work`` and measure the event loop's longest stall meanwhile (ms)."""
    worst = 0.0
    done = asyncio.Event()

    async def tick() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            worst = max(worst, (now - last - 0.005) * 1000)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        result = await work
    finally:
        done.set()
        await ticker
    return result, worst


async def sweeps_phase(folder: Path, layout: str, instances: int, hours: int) -> dict[str, Any]:
    fleet = Fleet(instances)
    per_hour = int(timedelta(hours=1) / INTERVAL)
    async with Database(f"sqlite:///{folder / f'sweeps-{layout}.db'}") as db:
        await db.upgrade("0007" if layout == "old" else "head")
        await _register(db, fleet.ids)
        compactions: list[float] = []
        stalls: list[float] = []
        idle_stalls: list[float] = []
        sweep_ms: list[float] = []
        written = compaction_written = 0
        head_bytes_per_sample: float | None = None
        for n in range(hours * per_hour):
            samples = fleet.sweep(n)
            before = write_bytes()
            started = time.perf_counter()
            if layout == "old":
                await _old_write(db, samples)
            else:
                await db.run(lambda s, b=samples: record_heartbeats(s, samples=b))
            sweep_ms.append((time.perf_counter() - started) * 1000)
            written += write_bytes() - before
            if layout == "new" and (n + 1) % per_hour == 0:
                head_bytes_per_sample = await _bytes_per_sample(db, "heartbeat_head")
                # The hour just ended: compact it, as the scheduled job does, off the loop.
                before = write_bytes()
                hour_end = START + timedelta(hours=(n + 1) // per_hour)
                result, stall = await _max_stall_during(compact_off_loop(db, before=hour_end))
                compaction_written += write_bytes() - before
                compactions.append(result.seconds)
                stalls.append(stall)
                # The same wait with nothing running: the machine's own stalls, for scale.
                _, idle = await _max_stall_during(asyncio.sleep(result.seconds))
                idle_stalls.append(idle)
        samples_total = instances * hours * per_hour
        size = file_bytes(db)
        chunk_bytes_per_sample = steady = None
        if layout == "new":
            chunk_bytes_per_sample = await _bytes_per_sample(db, "heartbeat_chunks")
            # Seven days kept: 168 h of chunks, the live head's hour and the pages of the
            # previous head, free and about to be reused (WAL: ~4 MB, 0.02 B a sample).
            steady = round((168 * chunk_bytes_per_sample + 2 * head_bytes_per_sample) / 169, 1)
    logical = samples_total * LOGICAL_BYTES
    return {
        "samples": samples_total,
        "sweep_ms_median": round(statistics.median(sweep_ms), 1),
        "written_bytes_per_sample": round(written / samples_total, 1),
        "write_amplification": round(written / logical, 2),
        "write_amplification_with_compaction": round((written + compaction_written) / logical, 2),
        "file_bytes": size,
        "file_bytes_per_sample": round(size / samples_total, 1),
        "chunk_bytes_per_sample": chunk_bytes_per_sample,
        "head_bytes_per_sample": head_bytes_per_sample,
        "steady_7d_bytes_per_sample": steady,
        "compaction_s": [round(s, 2) for s in compactions],
        "compaction_max_loop_stall_ms": round(max(stalls), 1) if stalls else None,
        "idle_max_loop_stall_ms": round(max(idle_stalls), 1) if idle_stalls else None,
    }


def _chunk_samples(hour: int, seed: int) -> list[Sample]:
    rng = random.Random(seed)
    base = hour * HOUR_US
    cpu, memory = rng.uniform(5, 60), rng.randrange(512, 8192)
    out = []
    for k in range(120):
        at = base + k * 30_000_000 + rng.randrange(0, 200_000)
        cpu = min(100.0, max(0.0, cpu + rng.gauss(0, 3)))
        out.append(Sample(at, round(cpu, 1), memory, 50_000, at - rng.randrange(10**7), 30 * k))
    return out


async def reads_phase(folder: Path, layout: str, instances: int, rounds: int) -> dict[str, Any]:
    fleet = Fleet(instances)
    first_hour = to_us(START) // HOUR_US
    async with Database(f"sqlite:///{folder / f'reads-{layout}.db'}") as db:
        await db.upgrade("0007" if layout == "old" else "head")
        await _register(db, fleet.ids)
        if layout == "new":
            ids = await db.run(lambda s: series_ids(s, fleet.ids))
            for hour in range(23):
                rows = [
                    {
                        "key": chunk_key(first_hour + hour, ids[i]),
                        "samples": 120,
                        "data": encode(_chunk_samples(first_hour + hour, hash((i, hour)))),
                    }
                    for i in fleet.ids
                ]
                await db.run(lambda s, r=rows: s.execute(insert(CHUNKS), r))
            for n in range(23 * 120, 24 * 120):
                await db.run(lambda s, b=fleet.sweep(n): record_heartbeats(s, samples=b))
        else:
            # Twenty sweeps a transaction: this fills, the sweeps phase measures writing.
            for first in range(0, 24 * 120, 20):
                await _old_write(db, [s for n in range(first, first + 20) for s in fleet.sweep(n)])
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
        since = START
        rng = random.Random(7)
        timings = []
        for _ in range(rounds):
            target = rng.choice(fleet.ids)
            started = time.perf_counter()
            async with db.session() as session:
                if layout == "new":
                    rows = await heartbeat_history(session, target, since=since)
                else:
                    result = await session.execute(
                        select(OLD)
                        .where(OLD.c.instance_id == target, OLD.c.sampled_at >= since)
                        .order_by(OLD.c.sampled_at)
                    )
                    rows = result.all()
            timings.append((time.perf_counter() - started) * 1000)
            assert len(rows) == 2880, len(rows)
    timings.sort()
    return {
        "history_ms_p50": round(statistics.median(timings), 2),
        "history_ms_p95": round(timings[max(0, int(len(timings) * 0.95) - 1)], 2),
    }


async def week_phase(folder: Path, layout: str, instances: int, days: int) -> dict[str, Any]:
    fleet = Fleet(instances)
    per_hour = int(timedelta(hours=1) / INTERVAL)
    sizes = []
    async with Database(f"sqlite:///{folder / f'week-{layout}.db'}") as db:
        await db.upgrade("0007" if layout == "old" else "head")
        await _register(db, fleet.ids)
        for hour in range(days * 24):
            # One transaction per hour of sweeps: the file's size, not the write pattern, is
            # what this phase measures.
            samples = [
                s for n in range(hour * per_hour, (hour + 1) * per_hour) for s in fleet.sweep(n)
            ]
            now = START + timedelta(hours=hour + 1)
            if layout == "new":
                await db.run(lambda s, b=samples: record_heartbeats(s, samples=b))
                await compact(db, before=now)
                while (await apply_retention(db, now=now, raw_days=7)).more:
                    pass
            else:
                await _old_write(db, samples)
                cutoff = now - timedelta(days=7)
                await db.run(lambda s, c=cutoff: s.execute(delete(OLD).where(OLD.c.sampled_at < c)))
            if (hour + 1) % 24 == 0:
                sizes.append(file_bytes(db))
        held = min(days, 7) * 24 * per_hour * instances  # raw samples kept at the end
    return {"file_bytes_by_day": sizes, "week_file_bytes_per_sample": round(sizes[-1] / held, 1)}


async def _pg_relation_bytes(db: Database, table: str) -> int:
    async with db.engine.connect() as conn:
        size = await conn.exec_driver_sql(f"SELECT pg_total_relation_size('{table}')")
        return int(size.scalar() or 0)


async def _pg_vacuum(db: Database) -> None:
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("VACUUM ANALYZE")


async def pg_phase(admin_url: str, layout: str, instances: int, hours: int) -> dict[str, Any]:
    """Phase 1's sweeps on PostgreSQL: bytes per sample of each layout's tables."""
    fleet = Fleet(instances)
    per_hour = int(timedelta(hours=1) / INTERVAL)
    head_bytes_per_sample: float | None = None
    async with ScratchPostgres(admin_url) as url, Database(url) as db:
        await db.upgrade("0007" if layout == "old" else "head")
        await _register(db, fleet.ids)
        for n in range(hours * per_hour):
            samples = fleet.sweep(n)
            if layout == "old":
                await _old_write(db, samples)
                continue
            await db.run(lambda s, b=samples: record_heartbeats(s, samples=b))
            if (n + 1) % per_hour == 0:
                await _pg_vacuum(db)
                stats = await history_stats(db)
                head = await _pg_relation_bytes(db, "heartbeat_head")
                head_bytes_per_sample = round(head / stats.head_samples, 1)
                await compact_off_loop(db, before=START + timedelta(hours=(n + 1) // per_hour))
        await _pg_vacuum(db)
        samples_total = instances * hours * per_hour
        if layout == "old":
            raw = await _pg_relation_bytes(db, "heartbeat_samples")
            return {"pg_bytes_per_sample": round(raw / samples_total, 1)}
        stats = await history_stats(db)
        assert stats.samples == samples_total, stats
        chunks = await _pg_relation_bytes(db, "heartbeat_chunks")
    chunk_bytes = round(chunks / stats.chunk_samples, 2)
    assert head_bytes_per_sample is not None
    return {
        "pg_bytes_per_sample": round(stats.raw_bytes / samples_total, 1),
        "pg_chunk_bytes_per_sample": chunk_bytes,
        "pg_head_bytes_per_sample": head_bytes_per_sample,
        # As on SQLite: 168 h of chunks, the live head's hour and the previous one's space.
        "pg_steady_7d_bytes_per_sample": round(
            (168 * chunk_bytes + 2 * head_bytes_per_sample) / 169, 1
        ),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"instances": args.instances, "hours": args.hours}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        for layout in ("old", "new"):
            result[layout] = {
                **await sweeps_phase(folder, layout, args.instances, args.hours),
                **await reads_phase(folder, layout, args.read_instances, args.rounds),
                **await week_phase(folder, layout, args.week_instances, args.days),
            }
    if args.pg_url:
        for layout in ("old", "new"):
            result[layout].update(await pg_phase(args.pg_url, layout, args.instances, args.hours))
    return result


def _print(result: dict[str, Any]) -> None:
    old, new = result["old"], result["new"]
    rows = [
        ("bytes per sample on disk (file + WAL)", "file_bytes_per_sample"),
        ("  chunks: bytes per chunked sample", "chunk_bytes_per_sample"),
        ("  head: bytes per head sample", "head_bytes_per_sample"),
        ("  steady state, 7 days kept (projected)", "steady_7d_bytes_per_sample"),
        ("bytes written per sample (sweeps)", "written_bytes_per_sample"),
        ("write amplification (sweeps)", "write_amplification"),
        ("write amplification (with compaction)", "write_amplification_with_compaction"),
        ("sweep write, median ms", "sweep_ms_median"),
        ("24 h history p50 ms", "history_ms_p50"),
        ("24 h history p95 ms", "history_ms_p95"),
        ("compaction of an hour, s", "compaction_s"),
        ("loop's worst stall during compaction, ms", "compaction_max_loop_stall_ms"),
        ("  the same wait, idle (baseline), ms", "idle_max_loop_stall_ms"),
        ("file bytes at each day's end (week)", "file_bytes_by_day"),
        ("week's end: file bytes per raw sample kept", "week_file_bytes_per_sample"),
        ("PostgreSQL: bytes per sample (tables)", "pg_bytes_per_sample"),
        ("  chunks: bytes per chunked sample", "pg_chunk_bytes_per_sample"),
        ("  head: bytes per head sample", "pg_head_bytes_per_sample"),
        ("  steady state, 7 days kept (projected)", "pg_steady_7d_bytes_per_sample"),
    ]
    print(f"{result['instances']:,} instances x {result['hours']} h of 30 s sweeps")
    for label, key in rows:
        print(f"  {label:42} old {old.get(key)!s:>14}   new {new.get(key)!s:>14}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--hours", type=int, default=2, help="hours of sweeps in phase 1")
    parser.add_argument("--read-instances", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--week-instances", type=int, default=100)
    parser.add_argument("--days", type=int, default=9)
    parser.add_argument("--dir", help="where the temporary databases go (a real disk)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("STARPOD_TEST_POSTGRES_URL"),
        help="PostgreSQL server for phase 4's scratch databases (default: env; none: skipped)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a few seconds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.instances, args.hours, args.read_instances = 100, 1, 10
        args.rounds, args.week_instances, args.days = 20, 2, 8
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        _print(result)


if __name__ == "__main__":
    main()
