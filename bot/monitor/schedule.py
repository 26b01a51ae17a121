"""The health sweep's place in an APScheduler ``AsyncIOScheduler``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.job import Job
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

JOB_ID = "starpod-health-sweep"
MAX_JITTER_SECS = 2.0


def add_sweep_job(
    scheduler: AsyncIOScheduler, sweep: Callable[[], Awaitable[None]], interval: timedelta
) -> Job:
    """Run ``sweep`` every ``interval``, the first time at once.

    Runs never overlap, missed ones coalesce, and a little jitter keeps replicas from
    polling in lockstep.
    """
    from apscheduler.triggers.interval import IntervalTrigger

    secs = interval.total_seconds()
    return scheduler.add_job(
        sweep,
        trigger=IntervalTrigger(seconds=secs, jitter=min(MAX_JITTER_SECS, secs / 10)),
        id=JOB_ID,
        name="health sweep",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(1, int(secs)),
        next_run_time=datetime.now(UTC),
        replace_existing=True,
    )
