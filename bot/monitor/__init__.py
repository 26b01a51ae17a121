"""The health monitor: sweeps, status history, auto-restart within a budget, events.

``from bot.monitor import HealthMonitor`` gives the seed's shape::

    monitor = (HealthMonitor(client, store=db)
               .with_interval(timedelta(seconds=30))
               .with_heartbeat_timeout(timedelta(seconds=90))
               .on_status_change(lambda instance_id, status, health: ...))
    handle = monitor.start()
    handle.send()

Without ``store`` the monitor keeps its history in memory; either way one sweep runs the
same steps over the :class:`~bot.monitor.store.MonitorStore` interface.

Modules: ``monitor`` (HealthMonitor: builder, schedule, status), ``handle``
(MonitorHandle), ``sweep`` (Sweeper: the steps of one sweep), ``reports`` (SweepReport),
``settings`` (MonitorConfig), ``leading`` (LeaderGate: which replica sweeps), ``store``
(the MonitorStore protocol), ``sql_store`` and ``memory_store`` (its two implementations),
``restarts`` (restart decisions and the one auto-restart call), ``events`` (MonitorEvent,
EventKind, MonitorStatus), ``policy`` (pure rules: staleness, restart budget, storm),
``tracking`` (one sweep's decisions), ``fetch`` (list + bounded health calls),
``persist`` (batched SQL writes), ``schedule`` (the sweep's job), ``jobs``
(register_jobs: sweep and retention).
"""

from bot.monitor.events import EventHandler, EventKind, MonitorEvent, MonitorStatus
from bot.monitor.jobs import register_jobs
from bot.monitor.monitor import HealthMonitor, MonitorHandle, SweepReport
from bot.monitor.policy import RestartBudget, StormRule

__all__ = [
    "EventHandler",
    "EventKind",
    "HealthMonitor",
    "MonitorEvent",
    "MonitorHandle",
    "MonitorStatus",
    "RestartBudget",
    "StormRule",
    "SweepReport",
    "register_jobs",
]
