"""What a sweep produces: the public :class:`SweepReport` and the records passed between steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.monitor.events import MonitorEvent
from bot.monitor.tracking import StaleInstance


@dataclass(slots=True)
class SweepReport:
    """What one call of :meth:`HealthMonitor.sweep_once` did (for tests, logs, benchmarks)."""

    at: datetime
    swept: bool = False
    instances: int = 0
    running: int = 0
    stale_ids: list[str] = field(default_factory=list)
    changes: list[tuple[str, str | None, str]] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    restart_failed: list[str] = field(default_factory=list)
    storm: bool = False
    backend_error: str | None = None
    events: list[MonitorEvent] = field(default_factory=list)
    secs: float = 0.0


# id → (announced exhaustion episode, deferred until): applied to memory after the commit.
RestartDecisions = dict[str, tuple[datetime | None, datetime | None]]


@dataclass(frozen=True, slots=True)
class RestartOutcome:
    """One auto-restart the monitor asked the backend for; ``error`` when it failed."""

    stale: StaleInstance
    attempt: int
    at: datetime
    error: str | None
