"""Plain records that callers hand to the store, so they never build ORM objects."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.store.heartbeats.keys import EPOCH, to_us


@dataclass(frozen=True, slots=True)
class InstanceSnapshot:
    """What one backend listing said about one instance (status kept raw)."""

    id: str
    name: str | None
    region: str | None
    status: str


@dataclass(frozen=True, slots=True)
class HeartbeatSampleIn:
    """One health reading to record; datetimes must be timezone-aware."""

    instance_id: str
    sampled_at: datetime
    cpu_percent: float
    memory_mb: int
    disk_mb: int
    last_heartbeat: datetime
    uptime_secs: int


class StoredHeartbeat:
    """One stored health reading, as the history readers return it.

    Times are kept as the store keeps them (integer epoch microseconds) and become aware
    UTC datetimes when read (``sampled_at``, ``last_heartbeat``): a day of one instance is
    2,880 readings, and building 5,760 datetimes nobody looks at was most of a read's cost.
    Iterating gives the fields in :class:`HeartbeatSampleIn`'s order.
    """

    __slots__ = (
        "cpu_percent",
        "disk_mb",
        "heartbeat_us",
        "instance_id",
        "memory_mb",
        "sampled_us",
        "uptime_secs",
    )

    def __init__(
        self,
        instance_id: str,
        sampled_us: int,
        cpu_percent: float,
        memory_mb: int,
        disk_mb: int,
        heartbeat_us: int,
        uptime_secs: int,
    ) -> None:
        self.instance_id = instance_id
        self.sampled_us = sampled_us
        self.cpu_percent = cpu_percent
        self.memory_mb = memory_mb
        self.disk_mb = disk_mb
        self.heartbeat_us = heartbeat_us
        self.uptime_secs = uptime_secs

    @classmethod
    def of(cls, sample: HeartbeatSampleIn) -> StoredHeartbeat:
        """What the store gives back for ``sample``."""
        return cls(
            sample.instance_id,
            to_us(sample.sampled_at),
            sample.cpu_percent,
            sample.memory_mb,
            sample.disk_mb,
            to_us(sample.last_heartbeat),
            sample.uptime_secs,
        )

    @property
    def sampled_at(self) -> datetime:
        """When the monitor took the reading (aware UTC)."""
        return EPOCH + timedelta(microseconds=self.sampled_us)

    @property
    def last_heartbeat(self) -> datetime:
        """The instance's last heartbeat as reported then (aware UTC)."""
        return EPOCH + timedelta(microseconds=self.heartbeat_us)

    def _fields(self) -> tuple[str, int, float, int, int, int, int]:
        return (
            self.instance_id,
            self.sampled_us,
            self.cpu_percent,
            self.memory_mb,
            self.disk_mb,
            self.heartbeat_us,
            self.uptime_secs,
        )

    def __iter__(self) -> Iterator[object]:
        yield from (
            self.instance_id,
            self.sampled_at,
            self.cpu_percent,
            self.memory_mb,
            self.disk_mb,
            self.last_heartbeat,
            self.uptime_secs,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StoredHeartbeat):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"StoredHeartbeat({self.instance_id!r}, {self.sampled_at.isoformat()}, "
            f"cpu={self.cpu_percent}, memory={self.memory_mb}, disk={self.disk_mb}, "
            f"heartbeat={self.last_heartbeat.isoformat()}, uptime={self.uptime_secs})"
        )
