"""Reading heartbeat history: the chunks of the hours asked for, plus the head.

A sample lives in exactly one place at any committed moment (compaction moves a slice
of the head into chunks in one transaction), so chunks and head never overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.heartbeats.codec import Sample, decode
from bot.store.heartbeats.keys import HOUR_US, chunk_key, from_us, key_hour, to_us
from bot.store.models import HeartbeatBatch, HeartbeatChunk, HeartbeatHead, HeartbeatSeries
from bot.store.records import StoredHeartbeat

_IN_CHUNK = 500
# latest_heartbeat walks back this many hours per query.
_LOOKBACK_STEP = 48


async def series_id_of(session: AsyncSession, instance_id: str) -> int | None:
    """The series id of one instance, or None when it has no samples."""
    return await session.scalar(
        select(HeartbeatSeries.id).where(HeartbeatSeries.instance_id == instance_id)
    )


async def chunk_hours(session: AsyncSession) -> tuple[int, int] | None:
    """The oldest and newest epoch hour that have chunks, or None without chunks."""
    # Two queries: SQLite reads a lone min() or max() off the tree's edge, both at once by a scan.
    low = await session.scalar(select(func.min(HeartbeatChunk.key)))
    high = await session.scalar(select(func.max(HeartbeatChunk.key)))
    if low is None or high is None:
        return None
    return key_hour(low), key_hour(high)


async def _chunk_samples(session: AsyncSession, keys: Sequence[int]) -> list[Sample]:
    found: list[Sample] = []
    for start in range(0, len(keys), _IN_CHUNK):
        group = keys[start : start + _IN_CHUNK]
        rows = await session.execute(
            select(HeartbeatChunk.key, HeartbeatChunk.data)
            .where(HeartbeatChunk.key.in_(group))
            .order_by(HeartbeatChunk.key)
        )
        for _key, data in rows:
            found.extend(decode(data))
    return found


async def _head_samples(
    session: AsyncSession, series: int, *, low: int, high: int | None
) -> list[Sample]:
    b = HeartbeatBatch
    batches = select(b.id).where(b.last_at >= low)
    if high is not None:
        batches = batches.where(b.first_at < high)
    batch_ids = list(await session.scalars(batches.order_by(b.id)))
    h = HeartbeatHead
    found: list[Sample] = []
    for start in range(0, len(batch_ids), _IN_CHUNK):
        rows = await session.execute(
            select(
                h.sampled_at, h.cpu_percent, h.memory_mb, h.disk_mb, h.last_heartbeat, h.uptime_secs
            )
            # One key lookup per batch: the head has no per-instance index.
            .where(h.batch.in_(batch_ids[start : start + _IN_CHUNK]), h.series_id == series)
            .order_by(h.batch, h.n)
        )
        found.extend(Sample(*row) for row in rows)
    return found


def _stored(instance_id: str, samples: Sequence[Sample]) -> list[StoredHeartbeat]:
    times: dict[int, datetime] = {}

    def at(us: int) -> datetime:
        value = times.get(us)
        if value is None:
            value = times[us] = from_us(us)
        return value

    return [
        StoredHeartbeat(
            instance_id,
            at(s.at_us),
            s.cpu_percent,
            s.memory_mb,
            s.disk_mb,
            at(s.heartbeat_us),
            s.uptime_secs,
        )
        for s in samples
    ]


async def heartbeat_history(
    session: AsyncSession, instance_id: str, *, since: datetime, until: datetime | None = None
) -> list[StoredHeartbeat]:
    """Samples of one instance with ``since <= sampled_at < until``, oldest first."""
    series = await series_id_of(session, instance_id)
    if series is None:
        return []
    low = to_us(since)
    high = to_us(until) if until is not None else None
    samples: list[Sample] = []
    hours = await chunk_hours(session)
    if hours is not None:
        first = max(low // HOUR_US, hours[0])
        last = hours[1] if high is None else min((high - 1) // HOUR_US, hours[1])
        keys = [chunk_key(hour, series) for hour in range(first, last + 1)]
        samples = await _chunk_samples(session, keys)
    samples.extend(await _head_samples(session, series, low=low, high=high))
    wanted = [s for s in samples if s.at_us >= low and (high is None or s.at_us < high)]
    wanted.sort(key=lambda s: s.at_us)  # stable: ties keep the order they were written in
    return _stored(instance_id, wanted)


async def latest_heartbeat(session: AsyncSession, instance_id: str) -> StoredHeartbeat | None:
    """The newest sample of one instance (by ``sampled_at``), or None."""
    series = await series_id_of(session, instance_id)
    if series is None:
        return None
    found = await _head_samples(session, series, low=-(2**62), high=None)
    # The head normally holds the newest, but a late sample may sit there for an old hour.
    found.extend(await _newest_chunk(session, series))
    if not found:
        return None
    newest = max(found, key=lambda s: s.at_us)
    return _stored(instance_id, [newest])[0]


async def _newest_chunk(session: AsyncSession, series: int) -> list[Sample]:
    """The samples of the newest chunk of one series (walking back from the newest hour)."""
    hours = await chunk_hours(session)
    if hours is None:
        return []
    oldest, hour = hours
    while hour >= oldest:
        keys = [
            chunk_key(h, series) for h in range(hour, max(hour - _LOOKBACK_STEP, oldest - 1), -1)
        ]
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
