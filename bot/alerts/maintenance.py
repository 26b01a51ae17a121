"""Maintenance windows: planned quiet for the instances a name glob (or ``all``) matches.

A window is a :class:`~bot.alerts.mutes.Muter` like the storm inhibitor: while it runs,
no incident opens for an instance it covers (an incident already open stays open, quiet,
and is told in its thread when the window starts), and with ``no_restart`` the monitor's
auto-restarts hold too (:meth:`MaintenanceWindows.restart_guard`).

Its start and its end are announced in the alert channel through the outbox, once each:
:meth:`MaintenanceWindows.announce` claims each announcement with a conditional UPDATE in
the transaction that queues it, so a restarted leader, a new leader after failover or two
replicas racing never say it twice. Instances still unhealthy when a window ends are
handed back to the caller (the :class:`~bot.alerts.service.AlertService`), which opens
their incidents then: what maintenance left broken is paged.

Windows are rows of ``maintenance_windows`` (:mod:`bot.store.maintenance_models`): they
survive restarts and failover. The rules for targets and starts are in
:mod:`bot.alerts.maintenance_rules`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.alerts import maintenance_blocks as mb
from bot.alerts import queries as q
from bot.alerts.maintenance_records import (
    AddResult,
    AnnounceReport,
    CancelResult,
    EndedWindow,
    WindowView,
    window_stream,
)
from bot.alerts.maintenance_rules import MAX_LEAD, MAX_LENGTH, MIN_LENGTH, check_target
from bot.alerts.mutes import Alert
from bot.alerts.policy import PROBLEM_STATUSES, AlertPolicy, instance_label
from bot.store.maintenance_models import MAX_REASON, MaintenanceWindow
from bot.store.models import InstanceRow

if TYPE_CHECKING:
    from bot.alerts.notify import Notifier
    from bot.store.database import Database

GUARD_CACHE_SECS = 1.0
# `maintenance list` shows windows that ended this recently, besides running and planned ones.
LIST_ENDED_WITHIN = timedelta(days=1)
LIST_LIMIT = 20


def _active(at: datetime) -> list[ColumnElement[bool]]:
    return [
        MaintenanceWindow.cancelled_at.is_(None),
        MaintenanceWindow.starts_at <= at,
        MaintenanceWindow.ends_at > at,
    ]


class MaintenanceWindows:
    """Plan, list and cancel windows; mute and hold restarts while they run; announce them."""

    def __init__(
        self,
        db: Database,
        *,
        policy: AlertPolicy,
        notifier: Notifier,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._policy = policy
        self._notifier = notifier
        self._clock = clock
        # Called after a window is planned or cancelled (the service announces at once).
        self.on_change: Callable[[], Awaitable[object]] | None = None
        self._guard_cache: list[WindowView] | None = None
        self._guard_loaded_at: datetime | None = None

    # -- the Muter, and the restart guard ----------------------------------------------------

    async def active_at(self, session: AsyncSession, at: datetime) -> list[WindowView]:
        """Windows running at ``at``."""
        rows = await session.scalars(select(MaintenanceWindow).where(*_active(at)))
        return [WindowView.from_row(row) for row in rows]

    async def window_for(
        self, session: AsyncSession, instance_id: str, at: datetime
    ) -> WindowView | None:
        """The running window covering the instance at ``at`` (the first planned), or None."""
        windows = await self.active_at(session, at)
        if not windows:
            return None
        row = await q.instance_row(session, instance_id)
        name = row.name if row is not None else None
        held = [w for w in windows if w.holds(instance_id, name)]
        return min(held, key=lambda w: w.id) if held else None

    async def mutes(self, session: AsyncSession, alert: Alert) -> bool:
        """True while a running window covers the instance."""
        return await self.window_for(session, alert.instance_id, alert.at) is not None

    async def covered(
        self, session: AsyncSession, instance_ids: tuple[str, ...], at: datetime
    ) -> set[str]:
        """Which of these instances a running window covers (a storm's stale ids)."""
        windows = await self.active_at(session, at)
        if not windows or not instance_ids:
            return set()
        names = await q.instance_names(session, list(instance_ids))
        return {i for i in instance_ids if any(w.holds(i, names.get(i)) for w in windows)}

    async def restart_guard(self, instance_id: str) -> bool:
        """For ``monitor.with_restart_guard``: False while a ``--no-restart`` window covers
        the instance. The running windows are read at most once a second (at once after a
        change made here); the instance's name only while such a window runs."""
        now = self._clock()
        loaded = self._guard_loaded_at
        if (
            self._guard_cache is None
            or loaded is None
            or now < loaded
            or (now - loaded).total_seconds() >= GUARD_CACHE_SECS
        ):
            async with self._db.session() as session:
                self._guard_cache = [w for w in await self.active_at(session, now) if w.no_restart]
            self._guard_loaded_at = now
        holding = [w for w in self._guard_cache if w.starts_at <= now < w.ends_at]
        if not holding:
            return True
        async with self._db.session() as session:
            names = await q.instance_names(session, [instance_id])
        return not any(w.holds(instance_id, names.get(instance_id)) for w in holding)

    async def holds_restarts(self, session: AsyncSession, instance_id: str, at: datetime) -> bool:
        """True while a ``--no-restart`` window covers the instance."""
        windows = [w for w in await self.active_at(session, at) if w.no_restart]
        if not windows:
            return False
        row = await q.instance_row(session, instance_id)
        return any(w.holds(instance_id, row.name if row else None) for w in windows)

    def _forget_guard(self) -> None:
        self._guard_cache = None
        self._guard_loaded_at = None

    # -- commands ----------------------------------------------------------------------------

    async def add(
        self,
        target: str,
        starts_at: datetime,
        length: timedelta,
        *,
        no_restart: bool,
        reason: str | None,
        actor: str,
    ) -> AddResult:
        """Plan a window; ValueError (one line for the user) for a bad target, time or length."""
        if starts_at.tzinfo is None:
            raise ValueError("starts_at must be timezone-aware")
        target = check_target(target)
        now = self._clock()
        if length < MIN_LENGTH or length > MAX_LENGTH:
            raise ValueError(f"A maintenance window lasts from 1 minute to {MAX_LENGTH.days} days.")
        if starts_at > now + MAX_LEAD:
            raise ValueError(f"Plan windows at most {MAX_LEAD.days} days ahead.")
        if starts_at < now:
            starts_at = now  # "now", or a start a few seconds old: it starts at once
        text = " ".join(reason.split()) if reason else None
        if text is not None and len(text) > MAX_REASON:
            raise ValueError(f"`--reason` is limited to {MAX_REASON} characters.")

        async def write(session: AsyncSession) -> AddResult:
            row = MaintenanceWindow(
                target=target,
                starts_at=starts_at,
                ends_at=starts_at + length,
                no_restart=no_restart,
                reason=text or None,
                actor=actor,
                created_at=now,
            )
            session.add(row)
            await session.flush()
            view = WindowView.from_row(row)
            return AddResult(view, await self._matching(session, view))

        result = await self._db.run(write)
        await self._changed()
        return result

    async def cancel(self, window_id: int, actor: str) -> CancelResult:
        """Cancel a planned or running window; its end is announced if its start was."""
        now = self._clock()

        async def write(session: AsyncSession) -> CancelResult:
            row = await session.get(MaintenanceWindow, window_id)
            if row is None:
                return CancelResult(window_id, "not_found")
            if row.cancelled_at is not None:
                return CancelResult(window_id, "already", WindowView.from_row(row))
            if row.ends_at <= now:
                return CancelResult(window_id, "ended", WindowView.from_row(row))
            row.cancelled_at = now
            row.cancelled_by = actor
            return CancelResult(window_id, "cancelled", WindowView.from_row(row))

        result = await self._db.run(write)
        if result.outcome == "cancelled":
            await self._changed()
        return result

    async def listing(self) -> list[WindowView]:
        """Planned and running windows, and those that ended in the last day; by start."""
        now = self._clock()
        since = now - LIST_ENDED_WITHIN
        async with self._db.session() as session:
            rows = await session.scalars(
                select(MaintenanceWindow)
                .where(
                    MaintenanceWindow.ends_at > since,
                    or_(
                        MaintenanceWindow.cancelled_at.is_(None),
                        MaintenanceWindow.cancelled_at > since,
                    ),
                )
                .order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id)
                .limit(LIST_LIMIT)
            )
            return [WindowView.from_row(row) for row in rows]

    async def _changed(self) -> None:
        self._forget_guard()
        if self.on_change is not None:
            await self.on_change()

    async def _matching(self, session: AsyncSession, view: WindowView) -> tuple[str, ...]:
        rows = await session.scalars(select(InstanceRow).order_by(InstanceRow.name, InstanceRow.id))
        return tuple(
            instance_label(row.id, row.name)
            for row in rows
            if row.status.lower() != "deleted" and view.holds(row.id, row.name)
        )

    # -- announcements (housekeeping, and right after a change) ------------------------------

    async def announce(self, session: AsyncSession, now: datetime) -> AnnounceReport:
        """Queue the start and end notices that are due, each claimed once for good."""
        report = AnnounceReport()
        due_start = await session.scalars(
            select(MaintenanceWindow)
            .where(
                MaintenanceWindow.start_announced_at.is_(None),
                MaintenanceWindow.cancelled_at.is_(None),
                MaintenanceWindow.starts_at <= now,
            )
            .order_by(MaintenanceWindow.id)
        )
        for row in list(due_start):
            if not await self._claim(session, row.id, "start", now):
                continue
            view = WindowView.from_row(row)
            await self._started(session, view, now)
            report.started.append(view.id)
        due_end = await session.scalars(
            select(MaintenanceWindow)
            .where(
                MaintenanceWindow.end_announced_at.is_(None),
                MaintenanceWindow.start_announced_at.is_not(None),
                or_(MaintenanceWindow.ends_at <= now, MaintenanceWindow.cancelled_at.is_not(None)),
            )
            .order_by(MaintenanceWindow.id)
        )
        for row in list(due_end):
            if not await self._claim(session, row.id, "end", now):
                continue
            view = WindowView.from_row(row)
            report.ended.append(await self._ended(session, view, now))
        if report.started or report.ended:
            self._forget_guard()
        return report

    async def _claim(
        self, session: AsyncSession, window_id: int, which: Literal["start", "end"], now: datetime
    ) -> bool:
        # The conditional UPDATE is the claim: a second writer (another replica, a retried
        # run) finds the column set and changes nothing, so each notice is queued once.
        column = (
            MaintenanceWindow.start_announced_at
            if which == "start"
            else MaintenanceWindow.end_announced_at
        )
        result = await session.execute(
            update(MaintenanceWindow)
            .where(MaintenanceWindow.id == window_id, column.is_(None))
            .values({column: now})
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def _covered_rows(self, session: AsyncSession, view: WindowView) -> list[InstanceRow]:
        rows = await session.scalars(select(InstanceRow).order_by(InstanceRow.name, InstanceRow.id))
        return [
            row for row in rows if row.status.lower() != "deleted" and view.holds(row.id, row.name)
        ]

    def _channels(self, rows: list[InstanceRow]) -> list[str]:
        # The alert channel, and every routed channel one of the covered instances alerts in.
        channels = [self._policy.channel] + [self._policy.channel_for(r.name) for r in rows]
        return list(dict.fromkeys(c for c in channels if c))

    async def _started(self, session: AsyncSession, view: WindowView, now: datetime) -> None:
        rows = await self._covered_rows(session, view)
        labels = [instance_label(r.id, r.name) for r in rows]
        message = mb.started_notice(view, labels)
        for channel in self._channels(rows):
            await self._notifier.notice(session, channel, message, now, window_stream(view.id))
        for incident in await q.unresolved_incidents(session):
            if incident.instance_id is None:
                continue
            if view.holds(incident.instance_id, incident.instance_name):
                await self._notifier.reply(session, incident, mb.incident_note(view), now)

    async def _ended(self, session: AsyncSession, view: WindowView, now: datetime) -> EndedWindow:
        rows = await self._covered_rows(session, view)
        open_keys = await q.open_keys_among(session, [r.id for r in rows])
        unhealthy = [
            r for r in rows if r.status.lower() in PROBLEM_STATUSES and r.id not in open_keys
        ]
        message = mb.ended_notice(
            view,
            cancelled_by=view.cancelled_by if view.state(now) == "cancelled" else None,
            still_unhealthy=[instance_label(r.id, r.name) for r in unhealthy],
        )
        for channel in self._channels(rows):
            await self._notifier.notice(session, channel, message, now, window_stream(view.id))
        return EndedWindow(view, tuple(unhealthy))
