"""Health sweep: the monitor's figures, each beside its baseline from the same run.

The backend simulator runs in its own process (``python -m bot.sim.backend``) with 10,000
running instances, so the two cores are split between backend and bot. Figures:

- one full sweep (fetch, compare, persist to SQLite) with health fetched per instance,
  beside a raw aiohttp client fetching the same list and 10,000 health endpoints at the
  same concurrency (goal: sweep <= 2x raw), and beside the sweep's fetch step alone
  (InstanceClient, nothing recorded); rounds alternate so machine noise hits all three;
- the same sweep with health inlined in the list, beside a raw fetch of that list;
- persisting 10,000 samples in one transaction on SQLite and on PostgreSQL, beside the raw
  driver's executemany of the same rows;
- one instance's last 24 h of history from 7 days of 30-second samples for 100 instances
  (~2 million rows), through ``heartbeat_history``, beside the raw driver (goal < 20 ms);
- SQLite bytes per instance-day, beside the health JSON the backend served for it;
- peak RSS of this process while tracking 10,000 instances (measured right after the
  sweeps, before anything else runs), beside its RSS before the monitor existed
  (goal <= 200 MB).

    python bench/sweep.py                      # human table
    python bench/sweep.py --json               # one JSON object with every figure
    python bench/sweep.py --pg-url postgresql://postgres@127.0.0.1:5432/test

PostgreSQL figures use a scratch database created from ``--pg-url`` (default: env
``STARPOD_TEST_POSTGRES_URL``) and dropped afterwards; without a URL they are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from bot.backend import InstanceClient
from bot.monitor import HealthMonitor
from bot.monitor.fetch import observe
from bot.monitor.settings import MonitorConfig
from bot.sim.process import start_simulator, stop_process
from bot.store.database import DEFAULT_CACHE_KIB, Database
from bot.store.heartbeats.compaction import compact
from bot.store.heartbeats.legacy import LEGACY_SAMPLES
from bot.store.heartbeats.stats import history_stats
from bot.store.queries import heartbeat_history, record_heartbeats, upsert_instances
from bot.store.records import HeartbeatSampleIn, InstanceSnapshot

CONCURRENCY = 50
SWEEP_VS_RAW_GOAL = 1.5
SLICE_SIZE = MonitorConfig().slice_size
HISTORY_INSTANCES = 100
HISTORY_DAYS = 7
SAMPLES_PER_DAY = 2880
NOW = datetime(2026, 3, 15, tzinfo=UTC)
MB = 1024 * 1024

Figures = dict[str, Any]


# -- the simulator process -------------------------------------------------------------------


def set_inline_health(url: str, enabled: bool) -> None:
    httpx.post(
        url + "/_sim/inline-health", json={"enabled": enabled}, timeout=10
    ).raise_for_status()


# -- baselines: a raw aiohttp client -----------------------------------------------------------


async def raw_sweep_fetch(session: aiohttp.ClientSession, url: str) -> float:
    """The list, then every running instance's health at CONCURRENCY, parsed; seconds."""
    started = time.perf_counter()
    async with session.get(url + "/instances") as response:
        instances = await response.json()
    ids = iter([i["id"] for i in instances if i["status"] == "running"])

    async def worker() -> None:
        for instance_id in ids:
            async with session.get(f"{url}/instances/{instance_id}/health") as response:
                response.raise_for_status()
                await response.json()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


async def client_fetch(client: InstanceClient, concurrency: int) -> float:
    """The sweep's fetch step alone (InstanceClient list + health), nothing recorded; s."""
    started = time.perf_counter()
    await observe(client, await client.list_instances(), concurrency=concurrency)
    return time.perf_counter() - started


async def raw_list_fetch(session: aiohttp.ClientSession, url: str) -> float:
    """The list with inline health, parsed; seconds."""
    started = time.perf_counter()
    async with session.get(url + "/instances") as response:
        response.raise_for_status()
        await response.json()
    return time.perf_counter() - started


# -- sweeps ----------------------------------------------------------------------------------


def bench_monitor(client: InstanceClient, db: Database, slice_size: int) -> HealthMonitor:
    """The monitor every sweep figure measures."""
    # Deadlines far past any sweep here: on a loaded machine the default ones (2/3 of the
    # 30 s interval) would cut health calls short, and a sweep that does less than the raw
    # baseline would look faster than it is.
    return (
        HealthMonitor(client, store=db)
        .with_health_concurrency(CONCURRENCY)
        .with_slice_size(slice_size)
        .with_sweep_deadlines(timedelta(seconds=600), timedelta(seconds=3600))
    )


async def sweep_figures(
    url: str,
    rounds: int,
    workdir: Path,
    cache_kib: int = DEFAULT_CACHE_KIB,
    slice_size: int = SLICE_SIZE,
) -> Figures:
    """Sweeps against raw fetches, alternating; then the same with health inlined."""
    process = psutil.Process()
    rss_before = process.memory_info().rss
    db = Database(f"sqlite:///{workdir / 'sweep.db'}", cache_kib=cache_kib)
    await db.upgrade()
    figures: Figures = {"sqlite_cache_kib": cache_kib, "slice_size": slice_size}
    rss_per_sweep: list[float] = []
    try:
        async with (
            InstanceClient(url) as client,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as raw,
        ):
            monitor = bench_monitor(client, db, slice_size)
            first = await monitor.sweep_once()  # records 10,000 instances for the first time
            figures["instances"] = first.instances
            figures["first_sweep_secs"] = round(first.secs, 3)
            sweeps: list[float] = []
            raws: list[float] = []
            fetches: list[float] = []
            # CPU seconds of this process (all its threads): what each costs, whatever the
            # other processes on the machine do to the wall clock.
            sweep_cpu: list[float] = []
            raw_cpu: list[float] = []
            for _ in range(rounds):
                cpu = time.process_time()
                raws.append(await raw_sweep_fetch(raw, url))
                raw_cpu.append(time.process_time() - cpu)
                fetches.append(await client_fetch(client, CONCURRENCY))
                cpu = time.process_time()
                report = await monitor.sweep_once()
                sweep_cpu.append(time.process_time() - cpu)
                rss_per_sweep.append(round(process.memory_info().rss / MB, 1))
                assert report.instances == first.instances and report.backend_error is None
                sweeps.append(report.secs)
            rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            figures["rss_mb_tracking"] = round(rss_peak / MB, 1)
            figures["rss_mb_between_sweeps"] = round(process.memory_info().rss / MB, 1)
            figures["rss_mb_before_monitor"] = round(rss_before / MB, 1)
            figures["rss_mb_per_sweep"] = rss_per_sweep
            figures["instances_tracked"] = monitor.status().instances_tracked

            set_inline_health(url, True)
            inline: list[float] = []
            raw_lists: list[float] = []
            for _ in range(rounds):
                raw_lists.append(await raw_list_fetch(raw, url))
                inline.append((await monitor.sweep_once()).secs)
            set_inline_health(url, False)
    finally:
        await db.dispose()
    sweep, raw_fetch = statistics.median(sweeps), statistics.median(raws)
    fetch = statistics.median(fetches)
    cpu_sweep, cpu_raw = statistics.median(sweep_cpu), statistics.median(raw_cpu)
    figures |= {
        "sweep_cpu_secs": round(cpu_sweep, 3),
        "raw_fetch_cpu_secs": round(cpu_raw, 3),
        "sweep_vs_raw_cpu": round(cpu_sweep / cpu_raw, 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "sweep_secs": round(sweep, 3),
        "raw_fetch_secs": round(raw_fetch, 3),
        "sweep_vs_raw": round(sweep / raw_fetch, 2),
        "sweep_vs_raw_goal": SWEEP_VS_RAW_GOAL,
        "client_fetch_secs": round(fetch, 3),
        "client_fetch_vs_raw": round(fetch / raw_fetch, 2),
        "sweep_secs_rounds": [round(s, 3) for s in sweeps],
        "raw_fetch_secs_rounds": [round(s, 3) for s in raws],
        "client_fetch_secs_rounds": [round(s, 3) for s in fetches],
        "inline_sweep_secs": round(statistics.median(inline), 3),
        "raw_list_secs": round(statistics.median(raw_lists), 3),
    }
    return figures


# -- persisting 10,000 samples -----------------------------------------------------------------


def _sample_batch(ids: list[str], at: datetime) -> list[HeartbeatSampleIn]:
    rng = random.Random(1)
    return [
        HeartbeatSampleIn(
            i, at, rng.uniform(0, 100), rng.randrange(256, 4096), 10_000, at, rng.randrange(10**6)
        )
        for i in ids
    ]


def _sqlite_time(at: datetime) -> str:
    # The text SQLAlchemy's SQLite DATETIME stores (naive UTC, fixed width).
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


# The raw baselines write the row-per-sample table the store used before issue 15
# (revision 0007's heartbeat_samples and its two indexes), recreated beside the new layout.
OLD_SAMPLES = LEGACY_SAMPLES


async def _create_old_samples(db: Database) -> None:
    key = "INTEGER PRIMARY KEY" if db.dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    stamp = "DATETIME" if db.dialect == "sqlite" else "TIMESTAMPTZ"
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS heartbeat_samples (id {key}, "
                f"instance_id VARCHAR(128) NOT NULL, sampled_at {stamp} NOT NULL, "
                "cpu_percent FLOAT NOT NULL, memory_mb INTEGER NOT NULL, "
                f"disk_mb INTEGER NOT NULL, last_heartbeat {stamp} NOT NULL, "
                "uptime_secs BIGINT NOT NULL)"
            )
        )
        await conn.execute(
            text(
                "CREATE INDEX IF NOT EXISTS ix_heartbeat_samples_instance_id_sampled_at "
                "ON heartbeat_samples (instance_id, sampled_at)"
            )
        )
        await conn.execute(
            text(
                "CREATE INDEX IF NOT EXISTS ix_heartbeat_samples_sampled_at "
                "ON heartbeat_samples (sampled_at)"
            )
        )


async def _timed(fn: Callable[[], Awaitable[object]], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def persist_figures(db: Database, repeats: int, count: int = 10_000) -> Figures:
    """``record_heartbeats`` of 10,000 samples in one transaction, beside the raw driver
    writing the old row-per-sample table."""
    await db.upgrade()
    await _create_old_samples(db)
    ids = [str(uuid.UUID(int=random.getrandbits(128))) for _ in range(count)]
    snapshots = [InstanceSnapshot(i, None, None, "running") for i in ids]
    await db.run(lambda s: upsert_instances(s, instances=snapshots, seen_at=NOW))
    stamps = iter(NOW + timedelta(seconds=30 * n) for n in range(1, 10_000))

    async def ours() -> None:
        batch = _sample_batch(ids, next(stamps))
        await db.run(lambda s: record_heartbeats(s, samples=batch))

    def rows(at: datetime) -> list[tuple[Any, ...]]:
        stamp: Any = _sqlite_time(at) if db.dialect == "sqlite" else at
        return [
            (s.instance_id, stamp, s.cpu_percent, s.memory_mb, s.disk_mb, stamp, s.uptime_secs)
            for s in _sample_batch(ids, at)
        ]

    sql = (
        "INSERT INTO heartbeat_samples (instance_id, sampled_at, cpu_percent, memory_mb,"
        " disk_mb, last_heartbeat, uptime_secs) VALUES "
    )
    if db.dialect == "sqlite":
        assert db.sqlite_path is not None
        conn = sqlite3.connect(db.sqlite_path, isolation_level=None)
        conn.execute("PRAGMA synchronous = NORMAL")

        async def raw() -> None:
            batch = rows(next(stamps))
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql + "(?, ?, ?, ?, ?, ?, ?)", batch)
            conn.execute("COMMIT")

        async def close() -> None:
            conn.close()
    else:
        import asyncpg

        pg = await asyncpg.connect(_plain_dsn(db.url))

        async def raw() -> None:
            batch = rows(next(stamps))
            async with pg.transaction():
                await pg.executemany(sql + "($1, $2, $3, $4, $5, $6, $7)", batch)

        close = pg.close
    try:
        ours_secs, raw_secs = [], []
        for _ in range(repeats):
            ours_secs.append(await _timed(ours, 1))
            raw_secs.append(await _timed(raw, 1))
    finally:
        await close()
    return {
        "samples": count,
        "persist_10k_secs": round(statistics.median(ours_secs), 3),
        "raw_driver_10k_secs": round(statistics.median(raw_secs), 3),
    }


# -- history ---------------------------------------------------------------------------------


def _history_rows(ids: list[str], days: int) -> Iterator[tuple[Any, ...]]:
    """``days`` of 30-second samples for each instance, time-major (as sweeps write them)."""
    rng = random.Random(2)
    start = NOW - timedelta(days=days)
    for n in range(days * SAMPLES_PER_DAY):
        at = start + timedelta(seconds=30 * n)
        for instance_id in ids:
            yield instance_id, at, round(rng.uniform(0, 100), 2), 1024, 10_000, at, n * 30


async def history_figures(db: Database, queries: int, days: int = HISTORY_DAYS) -> Figures:
    """Fill ~2M samples, then time one instance's last 24 h, ours beside the raw driver.

    Ours reads the chunked layout (filled through ``record_heartbeats``, then compacted);
    the raw driver and the Core select read the same rows from the old table.
    """
    await db.upgrade()
    await _create_old_samples(db)
    ids = [str(uuid.UUID(int=random.Random(3).getrandbits(128) + n)) for n in range(100)]
    snapshots = [
        InstanceSnapshot(i, f"pod-{n:03d}", "eu-west-1", "running") for n, i in enumerate(ids)
    ]
    await db.run(lambda s: upsert_instances(s, instances=snapshots, seen_at=NOW))
    columns = (
        "instance_id, sampled_at, cpu_percent, memory_mb, disk_mb, last_heartbeat, uptime_secs"
    )
    fill_started = time.perf_counter()
    since = NOW - timedelta(hours=24)
    select_sql = (
        "SELECT id, {c} FROM heartbeat_samples WHERE instance_id = {p1} AND sampled_at >= {p2}"
        " ORDER BY sampled_at"
    )
    if db.dialect == "sqlite":
        assert db.sqlite_path is not None
        conn = sqlite3.connect(db.sqlite_path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            f"INSERT INTO heartbeat_samples ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (i, _sqlite_time(at), cpu, mem, disk, _sqlite_time(hb), up)
                for i, at, cpu, mem, disk, hb, up in _history_rows(ids, days)
            ),
        )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        query = select_sql.format(c=columns, p1="?", p2="?")

        async def raw(instance_id: str) -> int:
            return len(conn.execute(query, (instance_id, _sqlite_time(since))).fetchall())

        async def close() -> None:
            conn.close()
    else:
        import asyncpg

        pg = await asyncpg.connect(_plain_dsn(db.url))
        await pg.copy_records_to_table(
            "heartbeat_samples", records=_history_rows(ids, days), columns=columns.split(", ")
        )
        await pg.execute("ANALYZE heartbeat_samples")
        query = select_sql.format(c=columns, p1="$1", p2="$2")

        async def raw(instance_id: str) -> int:
            return len(await pg.fetch(query, instance_id, since))

        close = pg.close
    fill_secs = time.perf_counter() - fill_started
    batch: list[HeartbeatSampleIn] = []
    for i, at, cpu, mem, disk, hb, up in _history_rows(ids, days):
        batch.append(HeartbeatSampleIn(i, at, cpu, mem, disk, hb, up))
        if len(batch) >= 20 * len(ids):  # twenty sweeps a transaction: the fill, not the test
            await db.run(lambda s, b=batch: record_heartbeats(s, samples=b))
            batch = []
    if batch:
        await db.run(lambda s, b=batch: record_heartbeats(s, samples=b))
    await compact(db, before=NOW)

    async def ours(instance_id: str) -> int:
        async with db.session() as session:
            return len(await heartbeat_history(session, instance_id, since=since))

    table = OLD_SAMPLES

    async def core(instance_id: str) -> int:
        # The same rows as plain tuples (no ORM objects): what the store could return.
        async with db.session() as session:
            result = await session.execute(
                select(table)
                .where(table.c.instance_id == instance_id, table.c.sampled_at >= since)
                .order_by(table.c.sampled_at)
            )
            return len(result.all())

    try:
        assert await ours(ids[0]) == SAMPLES_PER_DAY == await raw(ids[0]) == await core(ids[0])
        rng = random.Random(4)
        ours_ms, raw_ms, core_ms = [], [], []
        for _ in range(queries):
            instance_id = rng.choice(ids)
            ours_ms.append(await _timed(lambda i=instance_id: ours(i), 1) * 1000)
            raw_ms.append(await _timed(lambda i=instance_id: raw(i), 1) * 1000)
            core_ms.append(await _timed(lambda i=instance_id: core(i), 1) * 1000)
    finally:
        await close()
    figures: Figures = {
        "history_rows": HISTORY_INSTANCES * days * SAMPLES_PER_DAY,
        "history_fill_secs": round(fill_secs, 1),
        "history_24h_ms": round(statistics.median(ours_ms), 2),
        "history_24h_ms_p95": round(sorted(ours_ms)[int(0.95 * len(ours_ms))], 2),
        "raw_driver_24h_ms": round(statistics.median(raw_ms), 2),
        "core_select_24h_ms": round(statistics.median(core_ms), 2),
        "history_goal_ms": 20,
    }
    if db.sqlite_path is not None:
        # The chunked layout's own tables (the file also holds the baselines' old table).
        size = (await history_stats(db)).raw_bytes
        instance_days = HISTORY_INSTANCES * days
        figures["sqlite_bytes_per_instance_day"] = round(size / instance_days)
        figures["sqlite_file_mb"] = round(size / MB, 1)
    return figures


def health_json_bytes_per_day(url: str) -> int:
    """What the backend serves for one instance-day of 30-second health polls."""
    first = httpx.get(url + "/instances", timeout=30).json()[0]["id"]
    body = httpx.get(f"{url}/instances/{first}/health", timeout=10).content
    return len(body) * SAMPLES_PER_DAY


# -- PostgreSQL scratch database ---------------------------------------------------------------


def _plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_admin(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_plain_dsn(url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


class ScratchPostgres:
    """A database created for this run and dropped at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"starpod_bench_{uuid.uuid4().hex[:10]}"
        self.url = make_url(admin_url).set(database=self.name).render_as_string(hide_password=False)

    async def __aenter__(self) -> str:
        await _pg_admin(self.admin_url, f'CREATE DATABASE "{self.name}"')
        return self.url

    async def __aexit__(self, *exc: object) -> None:
        await _pg_admin(self.admin_url, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


async def with_db(url: str, fn: Callable[[Database], Awaitable[Figures]]) -> Figures:
    db = Database(url)
    try:
        return await fn(db)
    finally:
        await db.dispose()


# -- main ------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> Figures:
    result: Figures = {"cpus": os.cpu_count(), "concurrency": CONCURRENCY}
    proc, url = start_simulator(args.instances)
    try:
        with tempfile.TemporaryDirectory(prefix="starpod-bench-") as tmp:
            workdir = Path(tmp)
            result["sweep"] = await sweep_figures(
                url, args.rounds, workdir, args.cache_kib, args.slice_size
            )
            result["health_json_bytes_per_instance_day"] = health_json_bytes_per_day(url)
    finally:
        stop_process(proc)
    if args.sweep_only:
        return result
    with tempfile.TemporaryDirectory(prefix="starpod-bench-") as tmp:
        workdir = Path(tmp)
        result["persist_sqlite"] = await with_db(
            f"sqlite:///{workdir / 'persist.db'}",
            lambda db: persist_figures(db, args.repeats, args.persist_count),
        )
        result["history_sqlite"] = await with_db(
            f"sqlite:///{workdir / 'history.db'}",
            lambda db: history_figures(db, args.queries, args.history_days),
        )
    if args.pg_url:
        async with ScratchPostgres(args.pg_url) as pg:
            result["persist_postgres"] = await with_db(
                pg, lambda db: persist_figures(db, args.repeats, args.persist_count)
            )
        async with ScratchPostgres(args.pg_url) as pg:
            result["history_postgres"] = await with_db(
                pg, lambda db: history_figures(db, args.queries, args.history_days)
            )
    return result


def print_table(r: Figures) -> None:
    s = r["sweep"]
    rows: list[tuple[str, str, str, str]] = [
        (
            f"sweep, health per instance ({s['instances']} inst.)",
            f"{s['sweep_secs']:.2f} s",
            f"raw aiohttp {s['raw_fetch_secs']:.2f} s",
            f"{s['sweep_vs_raw']}x (goal <= {s['sweep_vs_raw_goal']}x)",
        ),
        (
            "  CPU seconds of this process, same sweep",
            f"{s['sweep_cpu_secs']:.2f} s",
            f"raw aiohttp {s['raw_fetch_cpu_secs']:.2f} s",
            f"{s['sweep_vs_raw_cpu']}x",
        ),
        (
            f"  in slices of {s['slice_size']:,}; peak RSS",
            f"{s['rss_mb_tracking']:.0f} MB",
            f"before the monitor {s['rss_mb_before_monitor']:.0f} MB",
            "",
        ),
        (
            "  of which InstanceClient fetch alone",
            f"{s['client_fetch_secs']:.2f} s",
            f"raw aiohttp {s['raw_fetch_secs']:.2f} s",
            f"{s['client_fetch_vs_raw']}x",
        ),
        (
            "sweep, health inlined",
            f"{s['inline_sweep_secs']:.2f} s",
            f"raw list fetch {s['raw_list_secs']:.2f} s",
            "",
        ),
        (
            f"first sweep ({s['instances']:,} new instances)",
            f"{s['first_sweep_secs']:.2f} s",
            "",
            "",
        ),
    ]
    for key, label in (("persist_sqlite", "SQLite"), ("persist_postgres", "PostgreSQL")):
        if key in r:
            p = r[key]
            rows.append(
                (
                    f"persist {p['samples']:,} samples, {label}",
                    f"{p['persist_10k_secs'] * 1000:.0f} ms",
                    f"raw driver {p['raw_driver_10k_secs'] * 1000:.0f} ms",
                    "",
                )
            )
    for key, label in (("history_sqlite", "SQLite"), ("history_postgres", "PostgreSQL")):
        if key in r:
            h = r[key]
            rows.append(
                (
                    f"24 h history of 1 of 100 inst., {label}",
                    f"{h['history_24h_ms']:.1f} ms (p95 {h['history_24h_ms_p95']:.1f})",
                    f"raw driver {h['raw_driver_24h_ms']:.1f} ms",
                    f"goal < 20 ms; Core select {h['core_select_24h_ms']:.1f} ms",
                )
            )
    if "history_sqlite" in r:
        h = r["history_sqlite"]
        rows.append(
            (
                "SQLite bytes per instance-day",
                f"{h['sqlite_bytes_per_instance_day']:,} B",
                f"health JSON served {r['health_json_bytes_per_instance_day']:,} B",
                "",
            )
        )
    rows.append(
        (
            f"peak RSS tracking {s['instances']:,} instances",
            f"{s['rss_mb_tracking']:.0f} MB ({s['rss_mb_between_sweeps']:.0f} between sweeps)",
            f"before the monitor {s['rss_mb_before_monitor']:.0f} MB",
            "",
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


def cli() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="sweeps (and raw fetches) timed")
    parser.add_argument("--repeats", type=int, default=5, help="persist batches timed")
    parser.add_argument("--queries", type=int, default=50, help="history queries timed")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("STARPOD_TEST_POSTGRES_URL"),
        help="PostgreSQL server to create a scratch database on (default: env)",
    )
    parser.add_argument("--history-days", type=int, default=HISTORY_DAYS)
    parser.add_argument(
        "--cache-kib", type=int, default=DEFAULT_CACHE_KIB, help="the sweep's SQLite page cache"
    )
    parser.add_argument(
        "--slice-size", type=int, default=SLICE_SIZE, help="instances per slice of a sweep"
    )
    parser.add_argument("--persist-count", type=int, default=10_000, help="samples per batch")
    parser.add_argument(
        "--sweep-only", action="store_true", help="the sweep figures only (the scale table)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few seconds: 500 instances, 1 day of history"
    )
    args = parser.parse_args()
    if args.quick:
        args.instances, args.rounds, args.repeats, args.queries = 500, 1, 1, 5
        args.history_days, args.persist_count = 1, 1000
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)


if __name__ == "__main__":
    cli()
