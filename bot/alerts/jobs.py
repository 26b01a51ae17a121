"""The alerts feature's scheduled jobs, registered in one place.

- ``starpod-alerts-delivery`` (every second): send what the outbox holds. Commits that add
  rows also nudge the delivery at once, so this is the safety net, not the fast path.
- ``starpod-alerts-housekeeping`` (every 10 s): end expired mutes (with their notice),
  re-mention incidents left open too long, settle flapping and fleet incidents.

Both do nothing on a replica that does not lead the monitor (``service.is_leader``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.store.errors import StoreUnwritable

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.alerts.service import AlertService

log = logging.getLogger(__name__)

DELIVERY_JOB_ID = "starpod-alerts-delivery"
HOUSEKEEPING_JOB_ID = "starpod-alerts-housekeeping"


def register_jobs(
    scheduler: AsyncIOScheduler,
    *,
    service: AlertService,
    delivery_every_secs: float = 1.0,
    housekeeping_every_secs: float = 10.0,
) -> None:
    """Add the delivery and housekeeping jobs to ``scheduler`` (the runtime starts it)."""
    from apscheduler.triggers.interval import IntervalTrigger

    delivery = service.delivery
    if delivery is not None:

        async def deliver() -> None:
            try:
                await delivery.run_once()
            except StoreUnwritable as exc:
                log.debug("alert delivery waits for the database: %s", exc)  # logged once
            except Exception:
                log.exception("alert delivery failed")

        scheduler.add_job(
            deliver,
            trigger=IntervalTrigger(seconds=delivery_every_secs),
            id=DELIVERY_JOB_ID,
            name="alert delivery",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(delivery_every_secs * 5)),
            replace_existing=True,
        )

    async def housekeeping() -> None:
        try:
            await service.run_housekeeping()
        except StoreUnwritable as exc:
            log.debug("alert housekeeping waits for the database: %s", exc)  # logged once
        except Exception:
            log.exception("alert housekeeping failed")

    scheduler.add_job(
        housekeeping,
        trigger=IntervalTrigger(seconds=housekeeping_every_secs),
        id=HOUSEKEEPING_JOB_ID,
        name="alert housekeeping",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(1, int(housekeeping_every_secs * 3)),
        replace_existing=True,
    )
