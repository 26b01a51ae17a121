"""What the heartbeat history costs on disk: ``starpod-bot db stats``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text

from bot.store.database import Database
from bot.store.heartbeats.reads import count_samples
from bot.store.models import HeartbeatBatch, HeartbeatChunk, HeartbeatHourly, HeartbeatSeries

# The tables of raw history; their pages (and indexes) are what bytes per sample counts.
RAW_TABLES = ("heartbeat_series", "heartbeat_batches", "heartbeat_head", "heartbeat_chunks")


@dataclass(frozen=True, slots=True)
class HistoryStats:
    """Sizes and counts of the stored heartbeat history."""

    head_samples: int
    chunk_samples: int
    chunks: int
    batches: int
    series: int
    hourly_rows: int
    raw_bytes: int  # pages (or relation sizes) of RAW_TABLES, indexes included
    file_bytes: int  # the whole database: SQLite file + WAL, or pg_database_size
    free_bytes: int  # SQLite pages on the freelist, reused before the file grows

    @property
    def samples(self) -> int:
        """Raw samples stored (head plus chunks)."""
        return self.head_samples + self.chunk_samples

    @property
    def bytes_per_sample(self) -> float | None:
        """Raw history bytes over raw samples (None without samples)."""
        return self.raw_bytes / self.samples if self.samples else None


async def _sqlite_sizes(db: Database) -> tuple[int, int, int]:
    async with db.engine.connect() as conn:
        page_size = (await conn.exec_driver_sql("PRAGMA page_size")).scalar() or 0
        free = (await conn.exec_driver_sql("PRAGMA freelist_count")).scalar() or 0
        names = ", ".join(f"'{name}'" for name in RAW_TABLES)
        try:
            # dbstat counts each table's and each of its indexes' pages.
            raw = (
                await conn.exec_driver_sql(
                    "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat "
                    f"WHERE name IN ({names}) OR name IN "
                    f"(SELECT name FROM sqlite_master WHERE tbl_name IN ({names}))"
                )
            ).scalar() or 0
        except Exception:  # a SQLite built without dbstat: count the whole file instead
            raw = -1
    path = db.sqlite_path
    file_bytes = 0
    if path is not None:
        for suffix in ("", "-wal"):
            part = path.with_name(path.name + suffix)
            if part.exists():
                file_bytes += part.stat().st_size
    if raw < 0:
        raw = file_bytes
    return int(raw), file_bytes, int(free) * int(page_size)


async def _postgres_sizes(db: Database) -> tuple[int, int, int]:
    async with db.engine.connect() as conn:
        raw = 0
        for name in RAW_TABLES:
            raw += (
                await conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": name})
            ).scalar() or 0
        file_bytes = (
            await conn.execute(text("SELECT pg_database_size(current_database())"))
        ).scalar() or 0
    return int(raw), int(file_bytes), 0


async def history_stats(db: Database) -> HistoryStats:
    """Count and measure the stored heartbeat history (a read: safe while the bot runs)."""
    async with db.session() as session:
        head, chunked = await count_samples(session)
        chunks = await session.scalar(select(func.count()).select_from(HeartbeatChunk)) or 0
        batches = await session.scalar(select(func.count()).select_from(HeartbeatBatch)) or 0
        series = await session.scalar(select(func.count()).select_from(HeartbeatSeries)) or 0
        hourly = await session.scalar(select(func.count()).select_from(HeartbeatHourly)) or 0
    if db.dialect == "sqlite":
        raw, file_bytes, free = await _sqlite_sizes(db)
    else:
        raw, file_bytes, free = await _postgres_sizes(db)
    return HistoryStats(
        head_samples=head,
        chunk_samples=chunked,
        chunks=int(chunks),
        batches=int(batches),
        series=int(series),
        hourly_rows=int(hourly),
        raw_bytes=raw,
        file_bytes=file_bytes,
        free_bytes=free,
    )


def render(stats: HistoryStats) -> list[str]:
    """The lines ``starpod-bot db stats`` prints."""
    per_sample = stats.bytes_per_sample
    return [
        f"samples          {stats.samples:,} ({stats.head_samples:,} in the head, "
        f"{stats.chunk_samples:,} in chunks)",
        f"rows             {stats.head_samples:,} head, {stats.chunks:,} chunks, "
        f"{stats.batches:,} batches, {stats.series:,} series, {stats.hourly_rows:,} hourly",
        f"bytes per sample {per_sample:.1f}" if per_sample is not None else "bytes per sample -",
        f"history size     {stats.raw_bytes:,} bytes (head, chunks and their keys)",
        f"file size        {stats.file_bytes:,} bytes"
        + (f" ({stats.free_bytes:,} free, reused first)" if stats.free_bytes else ""),
    ]
