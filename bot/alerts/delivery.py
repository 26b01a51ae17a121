"""Delivering the outbox to Slack: in order per stream, at least once, nothing dropped.

One run (:meth:`OutboxDelivery.run_once`) repeats three stages until nothing is due:

1. **claim** (:mod:`bot.alerts.claims`, one short transaction): read the pending rows in
   ``id`` order, take the first row of each stream (its *head*: a later row never
   overtakes it), keep the heads that are due and not claimed by a live sender, and claim
   them with a lease (``claimed_by``/``claimed_until``). On PostgreSQL the heads are
   locked with ``FOR UPDATE SKIP LOCKED`` first, so two senders never wait on each other;
   on both dialects the claim is a conditional UPDATE, so a row is only ever claimed by
   one. No lock is held while talking to Slack.
2. **send** (:mod:`bot.alerts.sending`) the claimed rows, a few streams at a time, with
   slack-sdk's ``AsyncWebClient`` built *without* its own retry handlers: waiting here is
   decided by the row, not inside the client.
3. **record** (here) each outcome in its own transaction: ``sent`` with Slack's ``ts`` (a
   root's ts is copied onto its incident, which is what its replies and edits wait for);
   a retry with ``next_attempt_at``; or ``failed``.

Outcomes
--------
- **429** (``ratelimited``): the row is due again after ``Retry-After`` and the whole
  sender pauses until then (Slack's limits are per method and workspace, so the other
  streams would only collect 429s too).
- **permanent** (only the Slack error names in
  :data:`bot.alerts.sending.PERMANENT_ERRORS`: ``channel_not_found``, ``not_in_channel``,
  ``is_archived``, ``invalid_blocks``, ``msg_too_long``, ``message_not_found`` …): the
  row is marked ``failed`` with the error, logged at ERROR and counted in
  :attr:`OutboxDelivery.failed_total`. Its stream moves on, so one bad message never
  blocks the rest of an incident. When the failed row was the incident's root, later
  edits are posted as a new root (their ts becomes the root) and replies as top-level
  messages, so nothing that follows is lost for want of a thread.
- **everything else** is retried with exponential back-off (1 s, 2 s, 4 s … at most
  5 min, jittered), forever: every 5xx, a body that is not JSON (an HTML error page,
  ``upstream error`` in plain text, even under a 200), an unknown error name, dropped
  connections, timeouts; auth or scope errors an operator can fix wait the longest
  back-off. A row is never dropped for a reason that could pass, so after an outage of
  any shape every message arrives, in order within its stream.

Take-over
---------
A sender told it leads (``is_leader``) also claims rows another holder still has
claimed: leadership moved, so that holder died or stepped down. A dead leader's rows are
therefore sent by the next leader on its first run, not when the claims expire.

The duplicate window
--------------------
A message may be sent twice only if the process dies (or the record transaction fails)
after Slack answered and before the ``sent`` commit: the claim then expires
(``claim_ttl``) and the row is sent again. The same holds when Slack processed a request
whose answer never arrived (a connection dropped mid-response, a client timeout): we
cannot know, so we retry. Slack has no idempotency key for ``chat.postMessage``; the
window is one round trip plus one small commit. ``chat.update`` repeats are harmless.

Only one replica should send: pass ``is_leader`` (the monitor's leadership). The claims
make two senders safe anyway: a row is claimed by one at a time and streams stay ordered.

Destinations: a row's ``destination`` picks its sender: Slack (a ``diagnostics`` row is
built first), PagerDuty (:mod:`bot.alerts.pagerduty`) or the webhook (:mod:`bot.alerts.webhook`),
whose answers map to the same outcomes. A 429 pauses only its own destination; a row for a
destination without a sender here waits the longest back-off, never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts.claims import Claimed, claim_due
from bot.alerts.outbox import DIAGNOSTICS, SLACK
from bot.alerts.sending import Sender, SendOutcome, send, send_diagnostics
from bot.store.alert_models import AlertIncident, AlertOutbox
from bot.store.database import Database
from bot.store.errors import StoreUnwritable

if TYPE_CHECKING:
    from bot.alerts.diagnostics import Diagnostics

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class DeliveryReport:
    """What one :meth:`OutboxDelivery.run_once` did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    rate_limited: int = 0
    paused_until: datetime | None = None
    skipped: str | None = None
    sent_ids: list[int] = field(default_factory=list)


class OutboxDelivery:
    """Sends the outbox's rows to Slack; see the module docstring for the rules.

    ``web`` should have no retry handlers (``retry_handlers=[]``): this class decides
    when to try again. ``clock`` returns aware datetimes (tests pass a fake one).
    """

    def __init__(
        self,
        db: Database,
        web: AsyncWebClient,
        *,
        clock: Callable[[], datetime] = _utcnow,
        holder: str = "alerts",
        is_leader: Callable[[], bool] | None = None,
        claim_ttl: timedelta = timedelta(seconds=60),
        batch: int = 50,
        concurrency: int = 4,
        base_backoff: timedelta = timedelta(seconds=1),
        max_backoff: timedelta = timedelta(minutes=5),
        max_rounds: int = 200,
        senders: Mapping[str, Sender] | None = None,
        diagnostics: Diagnostics | None = None,
        on_close: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self._db = db
        self._web = web
        self._senders = dict(senders or {})
        self.diagnostics = diagnostics
        self._on_close = list(on_close)
        self._clock = clock
        self._holder = holder
        self._is_leader = is_leader
        self._claim_ttl = claim_ttl
        self._batch = batch
        self._concurrency = concurrency
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff
        self._max_rounds = max_rounds
        # A 429 pauses its destination (Slack's limits are not PagerDuty's).
        self._paused: dict[str, datetime] = {}
        self._lock = asyncio.Lock()
        self._again = False
        self._kick_task: asyncio.Task[None] | None = None
        # The loop this sender lives on (its Slack session's): a commit on another loop's
        # thread (the sweep's own, bot.monitor.own_loop) wakes it there.
        self._home: asyncio.AbstractEventLoop | None = _running_loop()
        self._closed = False
        self.failed_total = 0
        """Rows marked failed (poison) by this sender since it started."""
        self.sent_total = 0
        """Rows sent by this sender since it started."""

    @property
    def paused_until(self) -> datetime | None:
        """When Slack's 429 pause ends (None: not paused)."""
        return self._paused.get(SLACK)

    @property
    def destinations(self) -> tuple[str, ...]:
        """Where this sender delivers: Slack and the configured paging destinations."""
        return (SLACK, *self._senders)

    def paused(self, destination: str) -> datetime | None:
        """When ``destination``'s 429 pause ends (None: not paused)."""
        return self._paused.get(destination)

    # -- nudging -----------------------------------------------------------------------------

    def nudge(self) -> None:
        """Deliver soon, without waiting for the next scheduled run (after a commit).

        Safe to call from a SQLAlchemy ``after_commit`` hook: it only schedules a task on
        the running loop, or, called from another loop's thread, hands the nudge to this
        sender's own loop. Runs never overlap; a nudge during a run makes it run again.
        """
        home = self._home
        if home is not None and _running_loop() is not home:
            if not home.is_closed():
                home.call_soon_threadsafe(self.nudge)
            return
        self._again = True
        if self._closed or (self._kick_task is not None and not self._kick_task.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._kick_task = loop.create_task(self._kick(), name="alerts-outbox-nudge")

    async def _kick(self) -> None:
        while self._again:
            self._again = False
            try:
                await self.run_once()
            except StoreUnwritable as exc:
                log.debug("alert delivery waits for the database: %s", exc)  # logged once
            except Exception:
                log.exception("alert delivery failed")

    async def aclose(self, wait_secs: float = 10.0) -> None:
        """Stop sending: later runs do nothing; waits (at most ``wait_secs``) for the run in
        progress, so no request is cut off mid-flight. The runtime calls this on shutdown,
        before stopping the scheduler."""
        self._closed = True
        task = self._kick_task
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=wait_secs)

        async def drained() -> None:
            async with self._lock:
                return

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(drained(), wait_secs)
        for close in self._on_close:
            with contextlib.suppress(Exception):
                await close()

    # -- one run -----------------------------------------------------------------------------

    async def run_once(self) -> DeliveryReport:
        """Send everything that is due now, stream by stream; returns what happened."""
        report = DeliveryReport()
        if self._home is None:
            self._home = asyncio.get_running_loop()
        if self._closed:
            report.skipped = "closed"
            return report
        if self._is_leader is not None and not self._is_leader():
            report.skipped = "not the leader"
            return report
        async with self._lock:
            for _ in range(self._max_rounds):
                now = self._clock()
                for name, until in list(self._paused.items()):
                    if now >= until:
                        del self._paused[name]
                skip = tuple(self._paused)
                if SLACK in self._paused:
                    report.paused_until = self._paused[SLACK]
                if skip and set(skip) >= set(self.destinations):
                    report.skipped = "rate limited"
                    break
                claimed = await self._db.run(
                    functools.partial(self._claim, now=now, skip_destinations=skip)
                )
                if not claimed:
                    break
                await self._send_all(claimed, report)
        return report

    async def _send_all(self, claimed: Sequence[Claimed], report: DeliveryReport) -> None:
        limit = asyncio.Semaphore(self._concurrency)

        async def one(row: Claimed) -> None:
            async with limit:
                paused = self._paused.get(row.destination)
                if paused is not None and self._clock() < paused:
                    # Another request just hit the rate limit: do not add to it.
                    outcome = SendOutcome(
                        "ratelimited",
                        error="waiting for Retry-After",
                        retry_after=(paused - self._clock()).total_seconds(),
                    )
                    await self._record(row, outcome, report, count_attempt=False)
                    return
                outcome = await self._send(row)
                await self._record(row, outcome, report)

        await asyncio.gather(*(one(row) for row in claimed))

    async def _send(self, row: Claimed) -> SendOutcome:
        if row.destination == SLACK:
            if row.kind == DIAGNOSTICS:
                return await send_diagnostics(self._web, row, self.diagnostics)
            return await send(self._web, row)
        sender = self._senders.get(row.destination)
        if sender is None:
            return SendOutcome(
                "retry", error=f"{row.destination} is not configured here", config_error=True
            )
        return await sender.send(row)

    async def _claim(
        self, session: AsyncSession, now: datetime, skip_destinations: tuple[str, ...] = ()
    ) -> list[Claimed]:
        return await claim_due(
            session,
            now,
            holder=self._holder,
            ttl=self._claim_ttl,
            batch=self._batch,
            skip_locked=self._db.dialect == "postgresql",
            # Only a sender told it leads gets here (run_once checked): the rows another
            # holder claimed belong to a leader that died or stepped down.
            take_over=self._is_leader is not None,
            skip_destinations=skip_destinations,
        )

    # -- record ------------------------------------------------------------------------------

    def _backoff(self, attempts: int) -> timedelta:
        secs = self._base_backoff.total_seconds() * 2 ** max(0, attempts - 1)
        secs = min(secs, self._max_backoff.total_seconds())
        # Jitter keeps many rows failing together from retrying in lockstep.
        return timedelta(seconds=secs * random.uniform(0.5, 1.0))

    async def _record(
        self,
        row: Claimed,
        outcome: SendOutcome,
        report: DeliveryReport,
        *,
        count_attempt: bool = True,
    ) -> None:
        now = self._clock()
        attempts = row.attempts + (1 if count_attempt else 0)
        values: dict[str, Any] = {"attempts": attempts, "claimed_by": None, "claimed_until": None}
        if outcome.status == "sent":
            values.update(state="sent", sent_at=now, ts=outcome.ts, last_error=None)
        elif outcome.status == "failed":
            values.update(state="failed", last_error=outcome.error)
        elif outcome.status == "ratelimited":
            wait = timedelta(seconds=outcome.retry_after or 1.0)
            due = now + wait
            paused = self._paused.get(row.destination)
            if paused is None or due > paused:
                self._paused[row.destination] = due
            values.update(next_attempt_at=due, last_error=outcome.error)
        else:
            wait = self._max_backoff if outcome.config_error else self._backoff(attempts)
            if outcome.retry_after is not None:
                wait = max(wait, timedelta(seconds=outcome.retry_after))
            values.update(next_attempt_at=now + wait, last_error=outcome.error)

        async def write(session: AsyncSession) -> None:
            await session.execute(
                update(AlertOutbox)
                .where(AlertOutbox.id == row.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if outcome.status == "sent" and outcome.new_root and row.incident_id is not None:
                await session.execute(
                    update(AlertIncident)
                    .where(AlertIncident.id == row.incident_id)
                    .values(root_ts=outcome.ts, channel=row.channel)
                    .execution_options(synchronize_session=False)
                )

        try:
            await self._db.run(write)
        except Exception:
            # The claim expires and the row is tried again: the duplicate window.
            log.exception("could not record the outcome of outbox row %d", row.id)
            return
        if outcome.status == "sent":
            report.sent += 1
            report.sent_ids.append(row.id)
            self.sent_total += 1
        elif outcome.status == "failed":
            report.failed += 1
            self.failed_total += 1
            log.error(
                "alert message %d (%s to %s) failed for good and was skipped: %s",
                row.id,
                row.kind,
                row.channel if row.destination == SLACK else row.destination,
                outcome.error,
            )
        elif outcome.status == "ratelimited":
            report.rate_limited += 1
            if row.destination == SLACK:
                report.paused_until = self._paused.get(SLACK)
        else:
            report.retried += 1
            level = logging.ERROR if outcome.config_error or attempts >= 5 else logging.WARNING
            log.log(
                level,
                "alert message %d not delivered (attempt %d), retrying: %s",
                row.id,
                attempts,
                outcome.error,
            )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
