"""Retention: roll old heartbeat chunks into hourly aggregates, expire old aggregates.

Raw samples are kept ``raw_days`` (7 by default) in per instance-hour chunks
(:mod:`bot.store.heartbeats`); a chunk whose whole hour is older than that is folded into
``heartbeat_hourly`` (min/avg/max CPU and memory, last disk) and deleted whole: retention
removes chunks, never single samples, so the freed pages are whole pages that the next
chunks reuse and the file stops growing. Hourly rows are kept ``hourly_days`` (90).
Status changes and restart attempts are never expired.

Each call first compacts head samples older than the cut-off (normally none: the
compaction job got there first), then does a bounded amount of work (at most ``batch``
chunks and ``batch`` hourly rows) in one transaction, and says whether more is left, so
the scheduled job can run it again without holding the database for long. An hour that
was rolled up before (a late sample arrived for it) is merged: counts add up, min/max
combine, averages are weighted by sample counts, and the latest ``disk_last`` wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.database import Database, lock_key
from bot.store.heartbeats.codec import decode
from bot.store.heartbeats.compaction import compact
from bot.store.heartbeats.keys import HOUR_US, SERIES_BITS, from_us, key_series, to_us
from bot.store.models import HeartbeatChunk, HeartbeatHourly, HeartbeatSeries

_T = TypeVar("_T")

# Keeps two replicas (or a manual run) from rolling up the same rows twice.
RETENTION_LOCK_KEY = lock_key("starpod-bot-retention")
# Keys per IN (...) list: well under both dialects' bound-parameter limits.
_IN_CHUNK = 500


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What one :func:`apply_retention` call did."""

    samples_rolled_up: int  # raw samples folded into hourly rows and deleted (in whole chunks)
    hours_written: int  # hourly rows inserted or merged
    hourly_deleted: int  # hourly rows past hourly_days deleted
    more: bool  # work was left over: call again

    @property
    def did_work(self) -> bool:
        """True if anything was rolled up or deleted."""
        return bool(self.samples_rolled_up or self.hourly_deleted)


@dataclass(slots=True)
class _Bucket:
    """Running aggregate of one instance-hour."""

    samples: int
    cpu_min: float
    cpu_sum: float
    cpu_max: float
    memory_min: int
    memory_sum: float
    memory_max: int
    disk_last: int
    disk_last_at: datetime

    def add(self, cpu: float, memory: int, disk: int, at: datetime) -> None:
        self.samples += 1
        self.cpu_min = min(self.cpu_min, cpu)
        self.cpu_max = max(self.cpu_max, cpu)
        self.cpu_sum += cpu
        self.memory_min = min(self.memory_min, memory)
        self.memory_max = max(self.memory_max, memory)
        self.memory_sum += memory
        if at >= self.disk_last_at:
            self.disk_last, self.disk_last_at = disk, at

    def merge_into(self, row: HeartbeatHourly) -> None:
        """Combine this bucket with an hourly row rolled up by an earlier call."""
        total = row.samples + self.samples
        row.cpu_avg = (row.cpu_avg * row.samples + self.cpu_sum) / total
        row.memory_avg = (row.memory_avg * row.samples + self.memory_sum) / total
        row.samples = total
        row.cpu_min = min(row.cpu_min, self.cpu_min)
        row.cpu_max = max(row.cpu_max, self.cpu_max)
        row.memory_min = min(row.memory_min, self.memory_min)
        row.memory_max = max(row.memory_max, self.memory_max)
        if self.disk_last_at >= row.disk_last_at:
            row.disk_last, row.disk_last_at = self.disk_last, self.disk_last_at

    def to_row(self, instance_id: str, hour: datetime) -> HeartbeatHourly:
        return HeartbeatHourly(
            instance_id=instance_id,
            hour=hour,
            samples=self.samples,
            cpu_min=self.cpu_min,
            cpu_avg=self.cpu_sum / self.samples,
            cpu_max=self.cpu_max,
            memory_min=self.memory_min,
            memory_avg=self.memory_sum / self.samples,
            memory_max=self.memory_max,
            disk_last=self.disk_last,
            disk_last_at=self.disk_last_at,
        )


def hour_of(at: datetime) -> datetime:
    """The start of the UTC hour containing ``at``."""
    return at.replace(minute=0, second=0, microsecond=0)


def _chunks(items: list[_T], size: int = _IN_CHUNK) -> Iterable[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def apply_retention(
    db: Database,
    *,
    now: datetime,
    raw_days: int = 7,
    hourly_days: int = 90,
    batch: int = 500,
) -> RetentionResult:
    """Roll up and expire one bounded batch (``batch`` chunks and hourly rows).

    See the module docstring. ``now`` is passed in (the scheduler's clock) so the
    cut-offs are testable.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    if raw_days < 0 or hourly_days < 0:
        raise ValueError("retention days cannot be negative")
    # Whole hours only: a chunk goes when every sample it may hold is past raw_days.
    raw_cutoff = hour_of(now - timedelta(days=raw_days))
    hourly_cutoff = now - timedelta(days=hourly_days)
    await compact(db, before=raw_cutoff)

    async def one_pass(session: AsyncSession) -> RetentionResult:
        if db.dialect == "postgresql":
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": RETENTION_LOCK_KEY}
            )
        rolled, hours, more_raw = await _roll_up(session, cutoff=raw_cutoff, batch=batch)
        deleted, more_hourly = await _expire_hourly(session, cutoff=hourly_cutoff, batch=batch)
        return RetentionResult(
            samples_rolled_up=rolled,
            hours_written=hours,
            hourly_deleted=deleted,
            more=more_raw or more_hourly,
        )

    return await db.run(one_pass)


async def _roll_up(session: AsyncSession, *, cutoff: datetime, batch: int) -> tuple[int, int, bool]:
    """Fold the oldest ``batch`` chunks of hours before ``cutoff`` into hourly rows; delete them."""
    c = HeartbeatChunk
    rows = (
        await session.execute(
            select(c.key, c.data)
            .where(c.key < (to_us(cutoff) // HOUR_US) << SERIES_BITS)
            .order_by(c.key)
            .limit(batch + 1)
        )
    ).all()
    more = len(rows) > batch
    rows = rows[:batch]
    if not rows:
        return 0, 0, more
    series_ids = sorted({key_series(key) for key, _data in rows})
    owners: dict[int, str] = {}
    for ids in _chunks(series_ids):
        found = await session.execute(
            select(HeartbeatSeries.id, HeartbeatSeries.instance_id).where(
                HeartbeatSeries.id.in_(ids)
            )
        )
        owners.update(found.all())

    buckets: dict[tuple[str, datetime], _Bucket] = {}
    rolled = 0
    for key, data in rows:
        instance_id = owners.get(key_series(key))
        samples = decode(data)
        rolled += len(samples)
        if instance_id is None:  # its instance was deleted by hand: nothing to keep
            continue
        for sample in samples:
            at = from_us(sample.at_us)
            bucket_key = (instance_id, hour_of(at))
            cpu, memory, disk = sample.cpu_percent, sample.memory_mb, sample.disk_mb
            bucket = buckets.get(bucket_key)
            if bucket is None:
                buckets[bucket_key] = _Bucket(1, cpu, cpu, cpu, memory, memory, memory, disk, at)
            else:
                bucket.add(cpu, memory, disk, at)

    # Hours rolled up before (a late sample came for them): load and merge, not overwrite.
    h = HeartbeatHourly
    existing: dict[tuple[str, datetime], HeartbeatHourly] = {}
    for keys in _chunks(list(buckets)):
        found_rows = await session.scalars(select(h).where(tuple_(h.instance_id, h.hour).in_(keys)))
        existing.update({(row.instance_id, row.hour): row for row in found_rows})
    for bucket_key, bucket in buckets.items():
        row = existing.get(bucket_key)
        if row is None:
            session.add(bucket.to_row(*bucket_key))
        else:
            bucket.merge_into(row)
    await session.flush()

    for chunk_keys in _chunks([row[0] for row in rows]):
        await session.execute(delete(c).where(c.key.in_(chunk_keys)))
    return rolled, len(buckets), more


async def _expire_hourly(
    session: AsyncSession, *, cutoff: datetime, batch: int
) -> tuple[int, bool]:
    """Delete up to ``batch`` of the oldest hourly rows before ``cutoff``."""
    h = HeartbeatHourly
    keys = [
        tuple(row)
        for row in (
            await session.execute(
                select(h.instance_id, h.hour)
                .where(h.hour < cutoff)
                .order_by(h.hour, h.instance_id)
                .limit(batch + 1)
            )
        ).all()
    ]
    more = len(keys) > batch
    keys = keys[:batch]
    for chunk in _chunks(keys):
        await session.execute(delete(h).where(tuple_(h.instance_id, h.hour).in_(chunk)))
    return len(keys), more
