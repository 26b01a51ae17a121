"""The row-per-sample ``heartbeat_samples`` table of revisions 0001-0007, as it was written.

Migration 0008 converts it into series, head and chunks. It stays described here, once, for
what must still write or read the old layout: the benchmarks' same-run baselines and the
conversion test that fills a database through it. (Migrations keep their own frozen copy.)
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Integer, MetaData, String, Table

from bot.store.base import UtcDateTime

LEGACY_SAMPLES = Table(
    "heartbeat_samples",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("instance_id", String(128)),
    Column("sampled_at", UtcDateTime()),
    Column("cpu_percent", Float),
    Column("memory_mb", Integer),
    Column("disk_mb", Integer),
    Column("last_heartbeat", UtcDateTime()),
    Column("uptime_secs", BigInteger),
)
