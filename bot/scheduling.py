"""The one APScheduler the bot runs, with every job's run tracked so shutdown can drain it.

APScheduler 3 keeps the tasks of running jobs to itself (no public accessor), so the
scheduler here wraps each coroutine job as it is added: a run registers its task with a
:class:`~bot.tasks.TaskTracker`, and stopping waits on the tracker instead.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any

from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.tasks import TaskTracker


def tracked_job(tracker: TaskTracker, func: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """``func`` as a coroutine function whose every run is tracked by ``tracker``."""

    @functools.wraps(func)
    async def run(*args: Any, **kwargs: Any) -> Any:
        tracker.track_current()
        return await func(*args, **kwargs)

    return run


class TrackedScheduler(AsyncIOScheduler):  # type: ignore[misc]  # APScheduler 3 is untyped
    """An ``AsyncIOScheduler`` whose coroutine jobs run under :attr:`jobs_running`."""

    def __init__(self, tracker: TaskTracker | None = None, **options: Any) -> None:
        options.setdefault("timezone", UTC)
        super().__init__(**options)
        self.jobs_running = tracker or TaskTracker("scheduled jobs")

    def add_job(self, func: Any, *args: Any, **kwargs: Any) -> Job:
        """As ``AsyncIOScheduler.add_job``; a coroutine function is tracked while it runs."""
        if inspect.iscoroutinefunction(func):
            func = tracked_job(self.jobs_running, func)
        return super().add_job(func, *args, **kwargs)

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 - a grace period
        """Start no new run, wait up to ``timeout`` s for running ones; cancelled count."""
        if self.running:
            self.pause()
        return await self.jobs_running.drain(timeout)


def new_scheduler() -> TrackedScheduler:
    """The scheduler on the running loop, in UTC (call it from async code)."""
    return TrackedScheduler(event_loop=asyncio.get_running_loop())
