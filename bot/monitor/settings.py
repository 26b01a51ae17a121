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
    # Instances fetched, decided and recorded per slice (see bot.monitor.sweep).
    slice_size: int = 1000
    clock: Callable[[], datetime] = utcnow
    callbacks: list[StatusCallback] = field(default_factory=list)
    handlers: list[EventHandler] = field(default_factory=list)
    guard: RestartGuard | None = None
    # None: derived from the interval (see health_call_secs / fetch_secs).
    health_call_deadline: timedelta | None = None
    fetch_deadline: timedelta | None = None

    def health_call_secs(self) -> float:
        """How long one health call may take in a sweep (default a third of the interval).

        The client's own deadline (per attempt) still applies; this one bounds the call
        with its retries, so one slow instance cannot hold the sweep.
        """
        chosen = self.health_call_deadline or self.interval / 3
        return chosen.total_seconds()

    def fetch_secs(self) -> float:
        """How long a sweep may spend listing and asking health (default 2/3 of the interval).

        What has not answered by then is unknown for that sweep; the rest of the sweep
        (recording, restarts) fits in what is left of the interval.
        """
        chosen = self.fetch_deadline or self.interval * 2 / 3
        return chosen.total_seconds()

    def now(self) -> datetime:
        """The clock's time; a naive datetime is refused (every comparison would be wrong)."""
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the monitor's clock must return timezone-aware datetimes")
        return now
