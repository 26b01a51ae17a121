"""What one HealthMonitor is configured with: the builder methods fill it, sweeps read it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.monitor.events import EventHandler, RestartGuard, StatusCallback
from bot.monitor.policy import RestartBudget, StormRule


def utcnow() -> datetime:
    """The default clock: now, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(slots=True)
class MonitorConfig:
    """The seed's knobs (interval, heartbeat timeout, callbacks) and the bot's additions."""

    interval: timedelta = timedelta(seconds=30)
    timeout: timedelta = timedelta(seconds=90)
    budget: RestartBudget = field(default_factory=RestartBudget)
    storm: StormRule = field(default_factory=StormRule)
    concurrency: int = 50
    clock: Callable[[], datetime] = utcnow
    callbacks: list[StatusCallback] = field(default_factory=list)
    handlers: list[EventHandler] = field(default_factory=list)
    guard: RestartGuard | None = None

    def now(self) -> datetime:
        """The clock's time; a naive datetime is refused (every comparison would be wrong)."""
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the monitor's clock must return timezone-aware datetimes")
        return now
