"""``HealthMonitor.from_settings``: a monitor configured from the typed settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.monitor.settings import utcnow

if TYPE_CHECKING:
    from bot.backend.client import InstanceClient
    from bot.config import AlertSettings, MonitorSettings
    from bot.monitor.monitor import HealthMonitor
    from bot.store.database import Database
    from bot.store.leader import Leadership


def from_settings(
    cls: type[HealthMonitor],
    client: InstanceClient,
    store: Database | None,
    settings: MonitorSettings,
    alerts: AlertSettings,
    *,
    clock: Callable[[], datetime] = utcnow,
    leadership: Leadership | None = None,
) -> HealthMonitor:
    """A monitor configured from the typed settings (the runtime's way to build one).

    With a store and no ``leadership``, one is chosen for the database: an advisory lock
    on PostgreSQL, a lease on SQLite (ttl three intervals).
    """
    interval = timedelta(seconds=settings.interval_secs)
    if leadership is None and store is not None:
        from bot.store.leader import default_holder, leadership_for

        leadership = leadership_for(store, holder=default_holder(), ttl=3 * interval)
    return (
        cls(client, store=store, leadership=leadership)
        .with_interval(interval)
        .with_heartbeat_timeout(timedelta(seconds=settings.heartbeat_timeout_secs))
        .with_restart_budget(
            settings.restart_budget,
            timedelta(minutes=settings.restart_window_mins),
            settings.restart_delays_secs,
        )
        .with_health_concurrency(settings.health_concurrency)
        .with_slice_size(settings.slice_size)
        .with_storm(alerts.storm_min_instances, alerts.storm_share)
        .with_clock(clock)
    )
