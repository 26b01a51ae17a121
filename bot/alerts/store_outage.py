"""Saying in Slack that the database refuses writes, outside the outbox that cannot be written.

Every alert goes through the outbox, a table: while the database is full or read-only no
alert can be queued, so this one message is posted directly (``chat.postMessage``) to
the alert channel. :meth:`StoreOutageNotice.check`, a scheduled job, reads the episode
from ``db.writes`` (see :mod:`bot.store.writability`) and posts:

- once when an episode begins: monitoring is degraded, and why (the database, named);
- once when it ends (a write probe committed again): monitoring resumed, after how long.

An episode begins at the first refused write of anyone: the sweep's or the election's
(every interval), a command's, a ``/readyz`` probe's. So the job adds no write while the
database takes writes; during an episode it probes one each period, and the first that
commits ends it.

Not per sweep, not per probe: one message each way per episode and process. Who posts:
on SQLite the one process; on PostgreSQL only the replica leading the sweeps (the
advisory lock needs no write, so a read-only or full server still elects one), so
replicas do not say it N times. A Slack failure is logged and the message is tried again
at the next check; an episode that ends before its first message got through says nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from slack_sdk.web.async_client import AsyncWebClient

from bot.blockkit.blocks import section
from bot.blockkit.mrkdwn import duration, escape
from bot.store.database import Database
from bot.store.write_probe import write_refusal

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)

JOB_ID = "starpod-store-outage-notice"
#: How often writes are probed: the sweep interval, at most this (and at least 1 s).
MAX_CHECK_SECS = 10.0


def check_every_secs(interval_secs: float) -> float:
    """The probe period for a monitor sweeping every ``interval_secs``."""
    return min(MAX_CHECK_SECS, max(1.0, interval_secs))


def degraded_text(refusal: str) -> str:
    """The message of an episode's beginning (mrkdwn, escaped)."""
    return (
        f":warning: *Monitoring is degraded*: {escape(refusal)}. Health sweeps, "
        "auto-restarts and alerts wait until it takes writes again; read-only commands "
        "still answer, actions are refused."
    )


def recovered_text(database: str, secs: float) -> str:
    """The message of an episode's end (mrkdwn, escaped)."""
    return (
        f":white_check_mark: *Monitoring resumed*: {escape(database)} takes writes again "
        f"after {duration(secs)}; sweeps, auto-restarts and alerts carry on."
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


class StoreOutageNotice:
    """Posts the beginning and the end of a refusal episode to ``channel`` (see module doc)."""

    def __init__(
        self,
        db: Database,
        web: AsyncWebClient,
        channel: str | None,
        *,
        may_post: Callable[[], bool],
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._db = db
        self._web = web
        self._channel = channel
        self._may_post = may_post
        self._clock = clock
        #: When the episode this process announced began (None: nothing announced).
        self.announced_since: datetime | None = None
        #: Messages posted, for tests and logs: ("degraded" | "recovered", text).
        self.posted: list[tuple[str, str]] = []

    async def check(self) -> None:
        """Post if an episode began or ended since the last check (probing a write during
        one). Never raises."""
        try:
            if not self._db.writes.writable:
                await write_refusal(self._db)
            await self._announce()
        except Exception:
            log.exception("checking whether the database takes writes failed")

    async def _announce(self) -> None:
        refusal, since = self._db.writes.refusal, self._db.writes.since
        if refusal is not None and self.announced_since is None and self._may_post():
            if await self._post("degraded", degraded_text(str(refusal))):
                self.announced_since = since or self._clock()
        elif refusal is None and self.announced_since is not None:
            secs = (self._clock() - self.announced_since).total_seconds()
            if await self._post("recovered", recovered_text(self._db.name, secs)):
                self.announced_since = None

    async def _post(self, kind: str, text: str) -> bool:
        if not self._channel:
            log.warning("no alert channel (STARPOD_ALERT_CHANNEL): not posting %s", kind)
            return True  # nothing to retry: there is nowhere to post
        try:
            await self._web.chat_postMessage(
                channel=self._channel, text=text, blocks=[section(text)]
            )
        except Exception as exc:  # Slack down or refusing: say so, try at the next check
            log.warning("could not post the database %s message to Slack: %s", kind, exc)
            return False
        self.posted.append((kind, text))
        log.info("posted the database %s message to %s", kind, self._channel)
        return True


def register_job(scheduler: AsyncIOScheduler, notice: StoreOutageNotice, every_secs: float) -> None:
    """Check at start (a bot started on a full disk says so at once), then every period."""
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler.add_job(
        notice.check,
        trigger=IntervalTrigger(seconds=every_secs),
        id=JOB_ID,
        name="database write check",
        next_run_time=datetime.now(UTC),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(1, int(every_secs * 3)),
        replace_existing=True,
    )
