"""Compaction: the head's samples of finished hours become one chunk per instance-hour.

:func:`compact` takes the batches holding samples older than ``before`` and walks them
one slice of series ids at a time; each slice is one transaction that reads those
series' head rows, encodes (or merges into an existing chunk: a late sample) one chunk
per instance-hour, and deletes the head rows it encoded. A crash between slices loses
nothing: every sample is, at each commit, either in the head or in a chunk, and the next
run picks up the rest. A batch row goes last, once its samples are all in chunks (one
that spans ``before`` keeps its newer samples in the head).

:func:`compact_off_loop` runs it in a worker thread with its own event loop and its own
connections, so the loop that answers Slack only awaits the result (see
:mod:`bot.store.heartbeats.offloop`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import cast

from sqlalchemy import Delete, Table, bindparam, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.database import Database, lock_key
from bot.store.heartbeats.codec import Sample, decode, encode
from bot.store.heartbeats.keys import HOUR_US, chunk_key, to_us
from bot.store.heartbeats.offloop import run_off_loop
from bot.store.models import HeartbeatBatch, HeartbeatChunk, HeartbeatHead, HeartbeatSeries

COMPACTION_LOCK_KEY = lock_key("starpod-bot-heartbeat-compaction")
# Series per transaction: ~120k samples of an hour, a fraction of a second of the write lock.
SERIES_PER_SLICE = 1000
# Batch ids per pass (an IN list): an hour of 30 s sweeps is 120.
BATCHES_PER_PASS = 400
_IN_CHUNK = 500
_ROW_CHUNK = 500


@dataclass(frozen=True, slots=True)
class CompactionResult:
    """What one :func:`compact` call did."""

    samples: int  # head samples moved into chunks
    chunks_written: int  # chunks created
    chunks_merged: int  # existing chunks that took late samples
    batches: int  # head batches emptied and deleted
    seconds: float


async def _existing(session: AsyncSession, keys: Sequence[int]) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for start in range(0, len(keys), _IN_CHUNK):
        rows = await session.execute(
            select(HeartbeatChunk.key, HeartbeatChunk.data).where(
                HeartbeatChunk.key.in_(keys[start : start + _IN_CHUNK])
            )
        )
        found.update(rows.all())
    return found


async def compact_slice(
    session: AsyncSession, batch_ids: Sequence[int], low: int, high: int, *, before: int
) -> tuple[int, int, int]:
    """Move the head rows of ``batch_ids`` with ``low <= series_id < high`` sampled before
    ``before`` (epoch µs) into chunks.

    Returns (samples, chunks written, chunks merged).
    """
    if session.get_bind().dialect.name == "postgresql":
        # Two compactions (the job and retention, or two replicas) take turns per slice;
        # the second then reads the head after the first's commit and finds it moved.
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": COMPACTION_LOCK_KEY}
        )
    h = HeartbeatHead
    in_slice = (
        h.batch.in_(batch_ids),
        h.series_id >= low,
        h.series_id < high,
        h.sampled_at < before,
    )
    rows = await session.execute(
        select(
            h.series_id,
            h.sampled_at,
            h.cpu_percent,
            h.memory_mb,
            h.disk_mb,
            h.last_heartbeat,
            h.uptime_secs,
        )
        .where(*in_slice)
        .order_by(h.batch, h.series_id, h.n)
    )
    groups: dict[int, list[Sample]] = {}
    count = 0
    for series, at, cpu, memory, disk, heartbeat, uptime in rows:
        count += 1
        key = chunk_key(at // HOUR_US, series)
        group = groups.get(key)
        if group is None:
            group = groups[key] = []
        group.append(Sample(at, cpu, memory, disk, heartbeat, uptime))
    if not count:
        return 0, 0, 0
    keys = sorted(groups)
    existing = await _existing(session, keys)
    fresh: list[dict[str, object]] = []
    merged: list[dict[str, object]] = []
    for key in keys:
        samples = groups[key]
        old = existing.get(key)
        if old is not None:
            # Stored samples first: encode's stable sort keeps their order among equal times.
            samples = [*decode(old), *samples]
        row = {"key": key, "samples": len(samples), "data": encode(samples)}
        (merged if old is not None else fresh).append(row)
    chunks = cast(Table, HeartbeatChunk.__table__)
    for start in range(0, len(fresh), _ROW_CHUNK):
        await session.execute(insert(chunks), fresh[start : start + _ROW_CHUNK])
    if merged:
        stmt = (
            update(chunks)
            .where(chunks.c.key == bindparam("b_key"))
            .values(samples=bindparam("b_samples"), data=bindparam("b_data"))
        )
        await session.execute(
            stmt,
            [{"b_key": r["key"], "b_samples": r["samples"], "b_data": r["data"]} for r in merged],
        )
    await _delete_moved(session, delete(h).where(*in_slice))
    return count, len(fresh), len(merged)


async def _delete_moved(session: AsyncSession, stmt: Delete) -> None:
    """Delete head rows whose samples were just written into chunks.

    SQLite: builds with SECURE_DELETE on (Debian's, and so the container's) zero every
    page the delete frees, which writes the whole compacted head twice more (the WAL,
    then the checkpoint): 2.7x a sample's bytes on top of the sweeps' 2x (issue 15,
    measured with /proc/self/io). ``FAST`` still scrubs deleted rows in the pages that
    are written anyway, and only skips zeroing the freed ones; their samples live on in
    the chunks just written, so zeroing them hides nothing. Scoped to this statement:
    the connection's own setting comes back afterwards.
    """
    if session.get_bind().dialect.name != "sqlite":
        await session.execute(stmt)
        return
    previous = (await session.execute(text("PRAGMA secure_delete"))).scalar_one()
    await session.execute(text("PRAGMA secure_delete = FAST"))
    try:
        await session.execute(stmt)
    finally:
        await session.execute(text(f"PRAGMA secure_delete = {int(previous)}"))


async def _slice(
    session: AsyncSession, *, batch_ids: Sequence[int], low: int, high: int, before: int
) -> tuple[int, int, int]:
    return await compact_slice(session, batch_ids, low, high, before=before)


async def _settle_batches(session: AsyncSession, *, batch_ids: Sequence[int]) -> int:
    """Delete the batches left empty; narrow the others to the samples they still hold.

    A batch keeps samples newer than the cut-off (it spanned it) or of a slice that
    failed; those stay readable and are compacted next time. Returns batches deleted.
    """
    h = HeartbeatHead
    left: dict[int, tuple[int, int]] = {}
    rows = await session.execute(
        select(h.batch, func.min(h.sampled_at), func.count())
        .where(h.batch.in_(batch_ids))
        .group_by(h.batch)
    )
    for batch, first, count in rows:
        left[batch] = (first, count)
    done = [b for b in batch_ids if b not in left]
    if done:
        await session.execute(delete(HeartbeatBatch).where(HeartbeatBatch.id.in_(done)))
    b = HeartbeatBatch
    for batch, (first, count) in left.items():
        await session.execute(update(b).where(b.id == batch).values(first_at=first, samples=count))
    return len(done)


async def compact(
    db: Database,
    *,
    before: datetime,
    series_per_slice: int = SERIES_PER_SLICE,
    should_stop: Callable[[], bool] = lambda: False,
) -> CompactionResult:
    """Move every head sample older than ``before`` into chunks."""
    if series_per_slice < 1:
        raise ValueError("series_per_slice must be at least 1")
    started = time.perf_counter()
    cutoff = to_us(before)
    async with db.session() as session:
        batch_ids = list(
            await session.scalars(
                select(HeartbeatBatch.id)
                .where(HeartbeatBatch.first_at < cutoff)
                .order_by(HeartbeatBatch.id)
            )
        )
        top = await session.scalar(select(HeartbeatSeries.id).order_by(HeartbeatSeries.id.desc()))
    samples = written = merged = batches = 0
    for start in range(0, len(batch_ids), BATCHES_PER_PASS):
        group = batch_ids[start : start + BATCHES_PER_PASS]
        # Series ids start at 1; a slice past the newest series finds nothing and stops.
        for low in range(1, (top or 0) + 1, series_per_slice):
            if should_stop():
                return CompactionResult(
                    samples, written, merged, batches, time.perf_counter() - started
                )
            done = await db.run(
                partial(
                    _slice, batch_ids=group, low=low, high=low + series_per_slice, before=cutoff
                )
            )
            samples += done[0]
            written += done[1]
            merged += done[2]
        batches += await db.run(partial(_settle_batches, batch_ids=group))
    return CompactionResult(samples, written, merged, batches, time.perf_counter() - started)


async def compact_off_loop(db: Database, *, before: datetime) -> CompactionResult:
    """:func:`compact` in a worker thread on connections of its own (see the module doc)."""
    return await run_off_loop(db, lambda own, stop: compact(own, before=before, should_stop=stop))
