"""The handle :meth:`HealthMonitor.start` returns: the seed's ``shutdown.send(())``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.monitor.monitor import HealthMonitor


class MonitorHandle:
    """Returned by :meth:`HealthMonitor.start`; ``send()`` or ``stop()`` stops the monitor.

    Both are plain calls, as in the seed; they return the task that finishes the stop
    (lets a running sweep end, releases the leadership), which may be awaited.
    """

    def __init__(self, monitor: HealthMonitor) -> None:
        self._monitor = monitor
        self._task: asyncio.Task[None] | None = None

    def send(self, _value: object = None) -> asyncio.Task[None]:
        """Stop the monitor (the seed's ``shutdown.send(())``)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._monitor.stop())
        return self._task

    def stop(self) -> asyncio.Task[None]:
        """Same as :meth:`send`."""
        return self.send()

    @property
    def monitor(self) -> HealthMonitor:
        """The monitor this handle controls."""
        return self._monitor
