"""Appending samples to the head: one batch row and the samples, in key order.

Every append is a new *batch* (its id one above the newest): the head's key leads with
it, so a sweep's rows land at the right edge of the tree and no page of an older batch
is touched. That keeps a sweep's disk writes close to the bytes of its samples (issue
15: the old per-instance index dirtied ~10,000 scattered pages per sweep).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.database import lock_key
from bot.store.dialects import dialect_insert
from bot.store.heartbeats.keys import to_us
from bot.store.models import HeartbeatBatch, HeartbeatHead, HeartbeatSeries
from bot.store.records import HeartbeatSampleIn

# PostgreSQL: appenders take the next batch id one at a time (SQLite's write lock does it there).
APPEND_LOCK_KEY = lock_key("starpod-bot-heartbeat-append")
# Rows per INSERT: 9 columns x 2000 stays under both dialects' bound-parameter limits.
_ROW_CHUNK = 2000
_IN_CHUNK = 500
# More ids than this: read the whole (small) series table instead of IN lists.
_SCAN_ABOVE = 1000


async def _known_series(session: AsyncSession, instance_ids: list[str]) -> dict[str, int]:
    s = HeartbeatSeries
    if len(instance_ids) > _SCAN_ABOVE:
        wanted = set(instance_ids)
        rows = await session.execute(select(s.instance_id, s.id))
        return {i: sid for i, sid in rows if i in wanted}
    found: dict[str, int] = {}
    for start in range(0, len(instance_ids), _IN_CHUNK):
        chunk = instance_ids[start : start + _IN_CHUNK]
        rows = await session.execute(select(s.instance_id, s.id).where(s.instance_id.in_(chunk)))
        found.update(rows.all())
    return found


async def series_ids(session: AsyncSession, instance_ids: Iterable[str]) -> dict[str, int]:
    """The series id of each instance, creating the missing ones (instances must exist)."""
    wanted = sorted(set(instance_ids))
    found = await _known_series(session, wanted)
    missing = [i for i in wanted if i not in found]
    if missing:
        stmt = dialect_insert(session, HeartbeatSeries).on_conflict_do_nothing(
            index_elements=[HeartbeatSeries.instance_id]
        )
        for start in range(0, len(missing), _ROW_CHUNK):
            await session.execute(
                stmt, [{"instance_id": i} for i in missing[start : start + _ROW_CHUNK]]
            )
        found.update(await _known_series(session, missing))
    return found


async def next_batch_id(session: AsyncSession) -> int:
    """One above the newest batch (after taking the append lock on PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})
    newest = await session.scalar(select(func.max(HeartbeatBatch.id)))
    return (newest or 0) + 1


def _placeholders(paramstyle: str, count: int) -> str:
    if paramstyle == "qmark":
        return ", ".join(["?"] * count)
    if paramstyle in ("numeric_dollar", "numeric"):
        mark = "$" if paramstyle == "numeric_dollar" else ":"
        return ", ".join(f"{mark}{n}" for n in range(1, count + 1))
    if paramstyle in ("format", "pyformat"):
        return ", ".join(["%s"] * count)
    raise ValueError(f"no placeholders for paramstyle {paramstyle!r}")


_HEAD = cast(Table, HeartbeatHead.__table__)
_HEAD_COLUMNS = (
    "batch",
    "series_id",
    "n",
    "sampled_at",
    "cpu_percent",
    "memory_mb",
    "disk_mb",
    "last_heartbeat",
    "uptime_secs",
)


def _insert_head_sql(session: AsyncSession) -> str:
    """The head's INSERT in the driver's own SQL: rows go as plain tuples."""
    dialect = session.get_bind().dialect
    quote = dialect.identifier_preparer
    columns = ", ".join(quote.quote(_HEAD.c[name].name) for name in _HEAD_COLUMNS)
    values = _placeholders(dialect.paramstyle, len(_HEAD_COLUMNS))
    return f"INSERT INTO {quote.format_table(_HEAD)} ({columns}) VALUES ({values})"


async def append_samples(session: AsyncSession, samples: Sequence[HeartbeatSampleIn]) -> int:
    """Append ``samples`` to the head as one batch; returns the batch id (0 when empty)."""
    if not samples:
        return 0
    ids = await series_ids(session, (s.instance_id for s in samples))
    batch = await next_batch_id(session)
    # A sweep's samples share one sampled_at and a few heartbeat ticks: convert each once.
    micros: dict[object, int] = {}

    def us(at: Any) -> int:
        value = micros.get(at)
        if value is None:
            value = micros[at] = to_us(at)
        return value

    seen: dict[int, int] = {}
    rows: list[tuple[int, int, int, int, float, int, int, int, int]] = []
    for s in samples:
        series = ids[s.instance_id]
        n = seen.get(series, 0)
        seen[series] = n + 1
        rows.append(
            (
                batch,
                series,
                n,
                us(s.sampled_at),
                s.cpu_percent,
                s.memory_mb,
                s.disk_mb,
                us(s.last_heartbeat),
                s.uptime_secs,
            )
        )
    # In key order (batch, series_id, n), so each insert goes to the end of the tree.
    rows.sort()
    times = [r[3] for r in rows]
    await session.execute(
        insert(cast(Table, HeartbeatBatch.__table__)),
        [{"id": batch, "first_at": min(times), "last_at": max(times), "samples": len(rows)}],
    )
    # Tuples through the driver: SQLAlchemy's executemany of dicts cost 2.5x the CPU here,
    # processing each row's parameters (11.4 against 4.6 ms per 1,000 rows, BENCHMARKS.md).
    # Every value is a plain int or float already: there is nothing for it to convert.
    conn = await session.connection()
    sql = _insert_head_sql(session)
    for start in range(0, len(rows), _ROW_CHUNK):
        await conn.exec_driver_sql(sql, rows[start : start + _ROW_CHUNK])
    return batch
