"""Plain records that callers hand to the store, so they never build ORM objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


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


class StoredHeartbeat(NamedTuple):
    """One stored health reading, as the history readers return it (aware UTC datetimes)."""

    instance_id: str
    sampled_at: datetime
    cpu_percent: float
    memory_mb: int
    disk_mb: int
    last_heartbeat: datetime
    uptime_secs: int
