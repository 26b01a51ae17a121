"""ORM models for instances and their history.

Every timestamp is a :class:`~bot.store.base.UtcDateTime` (aware UTC on both
dialects). Statuses are kept as the raw strings the backend sent
(``running``, ``Running``, ``provisioning`` …): the store never normalises
what it did not choose.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.base import Base, UtcDateTime

# SQLite only auto-increments an "INTEGER PRIMARY KEY"; PostgreSQL gets a
# bigint so ten thousand instances sampled every 30 s never run out of ids.
BigId = BigInteger().with_variant(Integer, "sqlite")

STATUS_CAUSES = ("monitor", "user", "backend")
RESTART_CAUSES = ("monitor", "user")
# Where an action was asked for (``bot.instances.Source``); None for what the sweep saw.
ACTION_SOURCES = ("slack", "gateway", "incident", "monitor", "cli")


def _instance_fk() -> ForeignKey:
    # History goes when its instance row goes; instance rows are never deleted
    # by the bot itself, so this only matters for manual clean-ups.
    return ForeignKey("instances.id", ondelete="CASCADE")


class InstanceRow(Base):
    """The last thing the bot knows about one instance."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    region: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime())

    def __repr__(self) -> str:
        return f"InstanceRow(id={self.id!r}, name={self.name!r}, status={self.status!r})"


class HeartbeatSeries(Base):
    """The integer key of one instance's heartbeat history (head rows and chunks use it).

    Written once per instance, when its first sample is recorded; never per sweep.
    """

    __tablename__ = "heartbeat_series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(String(128), _instance_fk(), unique=True)

    def __repr__(self) -> str:
        return f"HeartbeatSeries(id={self.id}, instance_id={self.instance_id!r})"


class HeartbeatBatch(Base):
    """One append to the head (a sweep's samples): what compaction and reads walk.

    ``first_at``/``last_at`` bound its samples' ``sampled_at`` (epoch microseconds).
    """

    __tablename__ = "heartbeat_batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    first_at: Mapped[int] = mapped_column(BigInteger)
    last_at: Mapped[int] = mapped_column(BigInteger)
    samples: Mapped[int] = mapped_column(Integer)

    def __repr__(self) -> str:
        return f"HeartbeatBatch(id={self.id}, samples={self.samples})"


class HeartbeatHead(Base):
    """A recent raw sample, not compacted yet: appended, never updated.

    The key leads with the batch, so a sweep's rows go to the end of the tree (no
    per-instance index is touched every sweep); one instance's rows are found with one
    lookup per batch. Times are integer epoch microseconds (lossless).
    """

    __tablename__ = "heartbeat_head"
    # SQLite: the rows *are* the key's tree (no rowid tree plus an index beside it).
    __table_args__ = {"sqlite_with_rowid": False}

    batch: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    series_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # Tells two samples of one instance in one batch apart (0 for the first: no bytes in SQLite).
    n: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sampled_at: Mapped[int] = mapped_column(BigInteger)
    cpu_percent: Mapped[float] = mapped_column(Float)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_mb: Mapped[int] = mapped_column(Integer)
    last_heartbeat: Mapped[int] = mapped_column(BigInteger)
    uptime_secs: Mapped[int] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        return f"HeartbeatHead(batch={self.batch}, series_id={self.series_id}, n={self.n})"


class HeartbeatChunk(Base):
    """The samples of one instance-hour, encoded by :mod:`bot.store.heartbeats.codec`.

    ``key`` is ``epoch_hour << 32 | series_id``: chunks sort by hour, so compaction
    appends, retention deletes a contiguous range of whole chunks, and one instance's
    day is 24 primary-key lookups. On SQLite the key is the rowid itself.
    """

    __tablename__ = "heartbeat_chunks"

    key: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    samples: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)

    def __repr__(self) -> str:
        return f"HeartbeatChunk(key={self.key}, samples={self.samples})"


class HeartbeatHourly(Base):
    """Raw samples of one instance-hour rolled up by retention."""

    __tablename__ = "heartbeat_hourly"
    # Serves retention's expiry, which walks the oldest hours of all instances.
    __table_args__ = (Index(None, "hour"),)

    instance_id: Mapped[str] = mapped_column(String(128), _instance_fk(), primary_key=True)
    # Start of the hour, UTC.
    hour: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    samples: Mapped[int] = mapped_column(Integer)
    cpu_min: Mapped[float] = mapped_column(Float)
    cpu_avg: Mapped[float] = mapped_column(Float)
    cpu_max: Mapped[float] = mapped_column(Float)
    memory_min: Mapped[int] = mapped_column(Integer)
    memory_avg: Mapped[float] = mapped_column(Float)
    memory_max: Mapped[int] = mapped_column(Integer)
    disk_last: Mapped[int] = mapped_column(Integer)
    # When disk_last was sampled: lets a later roll-up of the same hour
    # decide which "last" wins even if samples arrive out of order.
    disk_last_at: Mapped[datetime] = mapped_column(UtcDateTime())

    def __repr__(self) -> str:
        return (
            f"HeartbeatHourly(instance_id={self.instance_id!r}, "
            f"hour={self.hour.isoformat()}, samples={self.samples})"
        )


class StatusChange(Base):
    """One status transition of one instance, kept forever."""

    __tablename__ = "status_changes"
    __table_args__ = (
        Index(None, "instance_id", "at"),
        CheckConstraint(f"cause IN {STATUS_CAUSES!r}", name="cause"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(String(128), _instance_fk())
    # None for the first status the bot ever saw.
    from_status: Mapped[str | None] = mapped_column(String(64))
    to_status: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    cause: Mapped[str] = mapped_column(String(16))
    # Slack user id or ``gateway:<key>`` (cause "user"), or None.
    actor: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    # One of ACTION_SOURCES for a change someone asked for; None for one the sweep saw.
    source: Mapped[str | None] = mapped_column(String(16))

    def __repr__(self) -> str:
        return (
            f"StatusChange(instance_id={self.instance_id!r}, {self.from_status!r} -> "
            f"{self.to_status!r}, at={self.at.isoformat()}, cause={self.cause!r})"
        )


class RestartAttempt(Base):
    """One restart the bot asked the backend for, and whether it worked."""

    __tablename__ = "restart_attempts"
    __table_args__ = (
        Index(None, "instance_id", "at"),
        CheckConstraint(f"cause IN {RESTART_CAUSES!r}", name="cause"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(String(128), _instance_fk())
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    cause: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(64))
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    # One of ACTION_SOURCES (None in rows written before it was recorded).
    source: Mapped[str | None] = mapped_column(String(16))

    def __repr__(self) -> str:
        return (
            f"RestartAttempt(instance_id={self.instance_id!r}, at={self.at.isoformat()}, "
            f"cause={self.cause!r}, ok={self.ok})"
        )


class RestartBudgetReset(Base):
    """Someone gave an instance its auto-restart budget back: earlier restarts stop counting.

    No foreign key to ``instances``: a reset may name an instance the sweep has not
    recorded yet, and the row is part of the audit trail.
    """

    __tablename__ = "restart_budget_resets"
    __table_args__ = (Index(None, "instance_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Slack user id (or ``gateway:<key>``) of who reset it.
    actor: Mapped[str | None] = mapped_column(String(64))
    # One of ACTION_SOURCES: "slack" (the command) or "incident" (the button).
    source: Mapped[str | None] = mapped_column(String(16))

    def __repr__(self) -> str:
        return (
            f"RestartBudgetReset(instance_id={self.instance_id!r}, at={self.at.isoformat()}, "
            f"actor={self.actor!r})"
        )


class LeaderLease(Base):
    """A named lease with an expiry: the single-process guard on SQLite."""

    __tablename__ = "leader_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime())
    renewed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())

    def __repr__(self) -> str:
        return f"LeaderLease(name={self.name!r}, holder={self.holder!r})"


class InstanceLease(Base):
    """Who is changing one instance right now: the per-instance action lock.

    One row per instance while an action (create, pause, restart, kill) runs on it, from
    whichever replica; deleted when the action ends. ``expires_at`` bounds a lease left
    behind by a replica that died mid-action: after it, anyone may take the lease over.
    ``token`` tells this acquisition from a later one by the same holder.
    """

    __tablename__ = "instance_leases"

    instance_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    token: Mapped[str] = mapped_column(String(32))
    holder: Mapped[str] = mapped_column(String(255))
    verb: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(64))
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())

    def __repr__(self) -> str:
        return (
            f"InstanceLease(instance_id={self.instance_id!r}, verb={self.verb!r}, "
            f"holder={self.holder!r})"
        )
