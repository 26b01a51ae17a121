"""The monitor's scheduled jobs, registered in one place: the sweep, compaction, retention.

Compaction and retention run in a worker thread on connections of their own
(:func:`bot.store.heartbeats.offloop.run_off_loop`): they decode and encode hundreds of
thousands of samples, and the loop they would otherwise block is the one answering Slack.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot.monitor.handle import MonitorHandle
from bot.monitor.monitor import HealthMonitor
from bot.monitor.reports import SweepReport
from bot.store.errors import StoreUnwritable

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.config import MonitorSettings
    from bot.store.database import Database
    from bot.store.heartbeats.compaction import CompactionResult

log = logging.getLogger(__name__)

RETENTION_JOB_ID = "starpod-retention"
COMPACTION_JOB_ID = "starpod-compaction"
# Chunks per retention transaction (~60,000 samples).
RETENTION_BATCH = 500
# One run never rolls up more than this many batches: the next hour's run continues.
RETENTION_MAX_BATCHES = 100
# Compaction moves the head's finished hours into chunks; checking every few minutes keeps
# the head (what every history read scans batch by batch) near one hour.
COMPACTION_INTERVAL = timedelta(minutes=5)
# The first run comes this long after start at the latest (sooner: right after the first
# sweep this replica leads), so a bot restarted more often than hourly still prunes.
RETENTION_FIRST_DELAY = timedelta(seconds=60)


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def run_retention(
    db: Database,
    settings: MonitorSettings,
    *,
    monitor: HealthMonitor | None = None,
    clock: Callable[[], datetime] = _utcnow,
) -> int:
    """Roll up and expire old heartbeat samples, batch by batch; returns samples rolled up.

    Only the leader runs it (when ``monitor`` is given): replicas would only contend for
    the same rows.
    """
    from bot.store.heartbeats.offloop import run_off_loop
    from bot.store.retention import apply_retention

    if monitor is not None and not monitor.is_leader:
        return 0

    async def retain(own: Database, stop: Callable[[], bool]) -> int:
        rolled = 0
        for _ in range(RETENTION_MAX_BATCHES):
            result = await apply_retention(
                own,
                now=clock(),
                raw_days=settings.retention_raw_days,
                hourly_days=settings.retention_hourly_days,
                batch=RETENTION_BATCH,
            )
            rolled += result.samples_rolled_up
            if not result.more or stop():
                break
        return rolled

    return await run_off_loop(db, retain)


async def run_compaction(
    db: Database,
    *,
    monitor: HealthMonitor | None = None,
    clock: Callable[[], datetime] = _utcnow,
) -> CompactionResult | None:
    """Move the head's samples of finished hours into chunks, off the loop (leader only)."""
    from bot.store.heartbeats.compaction import compact_off_loop

    if monitor is not None and not monitor.is_leader:
        return None
    return await compact_off_loop(db, before=clock().replace(minute=0, second=0, microsecond=0))


def register_jobs(
    scheduler: AsyncIOScheduler,
    *,
    monitor: HealthMonitor,
    db: Database | None,
    settings: MonitorSettings,
) -> MonitorHandle:
    """Add the health sweep (every interval), compaction (every few minutes) and retention
    (hourly) to ``scheduler``.

    Retention first runs right after the first sweep this replica leads, or
    :data:`RETENTION_FIRST_DELAY` after start, whichever comes first; then hourly. The
    runtime starts and shuts down the scheduler; stop the monitor with the handle.
    """
    from apscheduler.triggers.interval import IntervalTrigger

    handle = monitor.start(scheduler)
    if db is not None:

        async def retention_job() -> None:
            try:
                rolled = await run_retention(db, settings, monitor=monitor)
            except StoreUnwritable as exc:
                log.debug("heartbeat retention waits for the database: %s", exc)  # logged once
                return
            except Exception:
                log.exception("heartbeat retention failed")
                return
            if rolled:
                log.info("retention: rolled up %d heartbeat samples", rolled)

        scheduler.add_job(
            retention_job,
            trigger=IntervalTrigger(hours=1, jitter=60),
            id=RETENTION_JOB_ID,
            name="heartbeat retention",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=600,
            next_run_time=datetime.now(UTC) + RETENTION_FIRST_DELAY,
            replace_existing=True,
        )

        async def compaction_job() -> None:
            try:
                result = await run_compaction(db, monitor=monitor)
            except Exception:
                log.exception("heartbeat compaction failed")
                return
            if result is not None and result.samples:
                log.info(
                    "compaction: %d heartbeat samples into %d chunks in %.1f s",
                    result.samples,
                    result.chunks_written + result.chunks_merged,
                    result.seconds,
                )

        scheduler.add_job(
            compaction_job,
            trigger=IntervalTrigger(seconds=COMPACTION_INTERVAL.total_seconds(), jitter=10),
            id=COMPACTION_JOB_ID,
            name="heartbeat compaction",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=600,
            next_run_time=datetime.now(UTC) + RETENTION_FIRST_DELAY,
            replace_existing=True,
        )
        monitor.on_sweep(_retention_after_first_sweep(scheduler))
    return handle


def _retention_after_first_sweep(scheduler: AsyncIOScheduler) -> Callable[[SweepReport], None]:
    """A sweep observer that moves retention's first run to now, once, after a led sweep."""
    from apscheduler.jobstores.base import JobLookupError

    waiting = True

    def observe(report: SweepReport) -> None:
        nonlocal waiting
        if not waiting or not report.swept:
            return
        waiting = False
        # Removed meanwhile (shutting down): nothing to hurry.
        with contextlib.suppress(JobLookupError):
            scheduler.modify_job(RETENTION_JOB_ID, next_run_time=datetime.now(UTC))

    return observe
