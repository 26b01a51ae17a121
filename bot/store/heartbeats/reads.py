"""Reading heartbeat history: the chunks of the hours asked for, plus the head.

A sample lives in exactly one place at any committed moment (compaction moves a slice
of the head into chunks in one transaction), so chunks and head never overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.heartbeats.codec import Columns, Sample, decode, decode_columns
from bot.store.heartbeats.keys import HOUR_US, chunk_key, from_us, key_hour, to_us
from bot.store.models import HeartbeatBatch, HeartbeatChunk, HeartbeatHead, HeartbeatSeries
from bot.store.records import StoredHeartbeat

_IN_CHUNK = 500
# latest_heartbeat walks back this many hours per query.
_LOOKBACK_STEP = 48
_NO_END = 2**63


def _rows(
    instance_id: str, columns: Columns, low: int = -_NO_END, high: int = _NO_END
) -> list[StoredHeartbeat]:
    at, cpu, memory, disk, heartbeat, uptime = columns
    return [
        StoredHeartbeat(instance_id, t, c, m, d, b, u)
        for t, c, m, d, b, u in zip(at, cpu, memory, disk, heartbeat, uptime, strict=True)
        if low <= t < high
    ]


def _as_columns(samples: Sequence[Sample]) -> Columns:
    return (
        [s.at_us for s in samples],
        [s.cpu_percent for s in samples],
        [s.memory_mb for s in samples],
        [s.disk_mb for s in samples],
        [s.heartbeat_us for s in samples],
        [s.uptime_secs for s in samples],
    )


async def _series_and_hours(
    session: AsyncSession, instance_id: str
) -> tuple[int | None, tuple[int, int] | None]:
    """The instance's series id and the range of chunk hours, in one round trip.

    Separate scalar subqueries: SQLite reads a lone min() or max() off the tree's edge,
    but both in one SELECT by a scan.
    """
    c = HeartbeatChunk
    series, low, high = (
        await session.execute(
            select(
                select(HeartbeatSeries.id)
                .where(HeartbeatSeries.instance_id == instance_id)
                .scalar_subquery(),
                select(func.min(c.key)).scalar_subquery(),
                select(func.max(c.key)).scalar_subquery(),
            )
        )
    ).one()
    hours = None if low is None or high is None else (key_hour(low), key_hour(high))
    return series, hours


async def _head_samples(
    session: AsyncSession, series: int, *, low: int, high: int | None
) -> list[Sample]:
    """One series' head samples in the batches overlapping ``[low, high)`` (unfiltered)."""
    b = HeartbeatBatch
    batches = select(b.id).where(b.last_at >= low)
    if high is not None:
        batches = batches.where(b.first_at < high)
    h = HeartbeatHead
    rows = await session.execute(
        select(h.sampled_at, h.cpu_percent, h.memory_mb, h.disk_mb, h.last_heartbeat, h.uptime_secs)
        # One key lookup per batch: the head has no per-instance index.
        .where(h.batch.in_(batches.scalar_subquery()), h.series_id == series)
        .order_by(h.batch, h.n)
    )
    return [Sample(*row) for row in rows]


async def heartbeat_history(
    session: AsyncSession, instance_id: str, *, since: datetime, until: datetime | None = None
) -> list[StoredHeartbeat]:
    """Samples of one instance with ``since <= sampled_at < until``, oldest first.

    Three round trips: the series id (with the chunk hours' range), the chunks (one key
    lookup per hour), the head rows (one key lookup per head batch in the window).
    """
    series, hours = await _series_and_hours(session, instance_id)
    if series is None:
        return []
    low = to_us(since)
    high = to_us(until) if until is not None else _NO_END
    found: list[StoredHeartbeat] = []
    if hours is not None:
        first = max(low // HOUR_US, hours[0])
        last = min((high - 1) // HOUR_US, hours[1])
        keys = [chunk_key(hour, series) for hour in range(first, last + 1)]
        for start in range(0, len(keys), _IN_CHUNK):
            rows = await session.execute(
                select(HeartbeatChunk.data)
                .where(HeartbeatChunk.key.in_(keys[start : start + _IN_CHUNK]))
                .order_by(HeartbeatChunk.key)
            )
            for (data,) in rows:
                found.extend(_rows(instance_id, decode_columns(data), low, high))
    head = await _head_samples(session, series, low=low, high=None if until is None else high)
    found.extend(_rows(instance_id, _as_columns(head), low, high))
    found.sort(key=lambda s: s.sampled_us)  # stable: ties keep the order they were written in
    return found


async def latest_heartbeat(session: AsyncSession, instance_id: str) -> StoredHeartbeat | None:
    """The newest sample of one instance (by ``sampled_at``), or None."""
    series, hours = await _series_and_hours(session, instance_id)
    if series is None:
        return None
    found = await _head_samples(session, series, low=-_NO_END, high=None)
    # The head normally holds the newest, but a late sample may sit there for an old hour.
    if hours is not None:
        found.extend(await _newest_chunk(session, series, hours))
    if not found:
        return None
    newest = max(found, key=lambda s: s.at_us)
    return _rows(instance_id, _as_columns([newest]))[0]


async def _newest_chunk(session: AsyncSession, series: int, hours: tuple[int, int]) -> list[Sample]:
    """The samples of the newest chunk of one series (walking back from the newest hour)."""
    oldest, hour = hours
    while hour >= oldest:
        stop = max(hour - _LOOKBACK_STEP, oldest - 1)
        keys = [chunk_key(h, series) for h in range(hour, stop, -1)]
        data = (
            await session.execute(
                select(HeartbeatChunk.data)
                .where(HeartbeatChunk.key.in_(keys))
                .order_by(HeartbeatChunk.key.desc())
                .limit(1)
            )
        ).scalar()
        if data is not None:
            return decode(data)
        hour -= _LOOKBACK_STEP
    return []


async def count_samples(session: AsyncSession) -> tuple[int, int]:
    """How many samples the head holds, and how many the chunks hold."""
    head = await session.scalar(select(func.count()).select_from(HeartbeatHead)) or 0
    chunked = await session.scalar(select(func.coalesce(func.sum(HeartbeatChunk.samples), 0)))
    return int(head), int(chunked or 0)


async def last_recorded_at(session: AsyncSession) -> datetime | None:
    """When the newest samples in the head were taken: the last sweep that recorded any,
    whichever process ran it (None: the head is empty, no sweep recorded in the last hour
    or more, since compaction empties finished hours)."""
    newest = await session.scalar(
        select(HeartbeatBatch.last_at).order_by(HeartbeatBatch.id.desc()).limit(1)
    )
    return None if newest is None else from_us(newest)
