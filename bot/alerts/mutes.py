"""Muting, along Alertmanager's seam: one interface, three kinds of quiet.

:class:`Muter` answers one question: should this alert about an instance stay quiet?

- :class:`Silences` (this module) are the mutes people set (``/starpod mute``, the
  incident's Mute button): the incident is still recorded, but not announced; edits of an
  already-announced root still happen (they notify nobody), thread replies do not. When
  the mute ends the channel is told, and an incident still open that was never announced
  is announced then. A ``--no-restart`` mute also holds the monitor's auto-restarts
  (:meth:`Silences.restart_guard`).
- :class:`~bot.alerts.fleet.StormInhibitor` is inhibition: while a storm (or a backend
  outage) has the fleet incident open, an instance that goes stale is covered by it and
  gets no incident of its own.
- :class:`~bot.alerts.maintenance.MaintenanceWindows` are planned quiet: while a window
  covers an instance no incident opens for it (an open one stays, quiet), and with
  ``--no-restart`` its auto-restarts hold.

The incident state machine asks both through the same interface and decides what the
quiet means (no incident, or an incident nobody is told about).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts import blocks
from bot.alerts import queries as q
from bot.alerts.outbox import mute_stream
from bot.alerts.policy import AlertPolicy, instance_label
from bot.alerts.records import MuteInForce, MuteResult, UnmuteResult
from bot.store.alert_models import AlertMute

if TYPE_CHECKING:
    from bot.alerts.notify import Notifier
    from bot.store.database import Database

GUARD_CACHE_SECS = 1.0


@dataclass(frozen=True, slots=True)
class Alert:
    """What a muter is asked about: one instance's problem at one moment.

    ``stale``: a stale heartbeat (what a storm covers); ``has_incident``: the instance
    already has an incident of its own (which inhibition never takes away).
    """

    instance_id: str
    at: datetime
    stale: bool = False
    has_incident: bool = False


class Muter(Protocol):
    """Alertmanager's ``Muter``: silences and inhibition answer the same question."""

    async def mutes(self, session: AsyncSession, alert: Alert) -> bool:
        """True when ``alert`` should stay quiet."""
        ...


class Silences:
    """People's mutes: set, replaced, ended, expired; and the auto-restart guard."""

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
        self._guard_cache: dict[str, datetime] | None = None
        self._guard_loaded_at: datetime | None = None

    async def mutes(self, session: AsyncSession, alert: Alert) -> bool:
        """True while a mute of the instance is in force."""
        return await q.active_mute(session, alert.instance_id, now=alert.at) is not None

    async def holds_restarts(self, session: AsyncSession, instance_id: str, at: datetime) -> bool:
        """True while a ``--no-restart`` mute of the instance is in force."""
        mute = await q.active_mute(session, instance_id, now=at)
        return mute is not None and bool(mute.no_restart)

    async def restart_guard(self, instance_id: str) -> bool:
        """For ``monitor.with_restart_guard``: False while a ``--no-restart`` mute holds.

        The monitor asks once per stale instance per sweep, so the set of such mutes is
        read at most once a second (and re-read at once after a mute or unmute here).
        """
        now = self._clock()
        loaded = self._guard_loaded_at
        if (
            self._guard_cache is None
            or loaded is None
            or now < loaded
            or (now - loaded).total_seconds() >= GUARD_CACHE_SECS
        ):
            async with self._db.session() as session:
                self._guard_cache = await q.no_restart_mutes(session, now=now)
            self._guard_loaded_at = now
        until = self._guard_cache.get(instance_id)
        return until is None or until <= now

    def _forget_guard(self) -> None:
        self._guard_cache = None
        self._guard_loaded_at = None

    async def mute(
        self, instance_id: str, until: datetime, no_restart: bool, actor: str
    ) -> MuteResult:
        """Mute alerts for ``instance_id`` until ``until`` (and auto-restarts with
        ``no_restart``); a mute in force is replaced. Said in the thread of the instance's
        open incident, if it has one; the command's own answer tells the user."""
        if until.tzinfo is None:
            raise ValueError("until must be timezone-aware")
        now = self._clock()
        if until <= now:
            raise ValueError("until must be in the future")

        async def write(session: AsyncSession) -> MuteResult:
            row = await q.instance_row(session, instance_id)
            name = row.name if row is not None else None
            replaced = False
            for old in await q.unended_mutes(session, instance_id):
                old.ended_at = now
                old.ended_how = "replaced"
                old.ended_by = actor
                replaced = True
            session.add(
                AlertMute(
                    instance_id=instance_id,
                    instance_name=name,
                    until=until,
                    no_restart=no_restart,
                    actor=actor,
                    created_at=now,
                )
            )
            incident = await q.open_incident(session, instance_id)
            if incident is not None:
                # Whoever looks at the incident learns why it went quiet.
                await self._notifier.reply(
                    session,
                    incident,
                    blocks.mute_started_notice(
                        instance_label(instance_id, name),
                        until,
                        actor=actor,
                        no_restart=no_restart,
                    ),
                    now,
                )
            return MuteResult(instance_id, name, until, no_restart, replaced)

        result = await self._db.run(write)
        self._forget_guard()
        return result

    async def in_force(self, *, limit: int = 100) -> list[MuteInForce]:
        """Mutes in force now, the soonest to end first (the App Home lists them)."""
        now = self._clock()
        async with self._db.session() as session:
            rows = await q.mutes_in_force(session, now=now, limit=limit)
            return [
                MuteInForce(r.instance_id, r.instance_name, r.until, r.no_restart, r.actor)
                for r in rows
            ]

    async def unmute(self, instance_id: str, actor: str) -> UnmuteResult:
        """End the mute of ``instance_id`` now; says so in the channel."""
        now = self._clock()

        async def write(session: AsyncSession) -> UnmuteResult:
            mutes = await q.unended_mutes(session, instance_id)
            row = await q.instance_row(session, instance_id)
            name = row.name if row is not None else (mutes[0].instance_name if mutes else None)
            if not mutes:
                return UnmuteResult(instance_id, name, was_muted=False)
            for mute in mutes:
                mute.ended_at = now
                mute.ended_how = "unmuted"
                mute.ended_by = actor
            await self._ended(
                session,
                instance_id,
                name,
                how="unmuted",
                actor=actor,
                muted_by=mutes[-1].actor,
                now=now,
            )
            return UnmuteResult(instance_id, name, was_muted=True)

        result = await self._db.run(write)
        self._forget_guard()
        return result

    async def expire(self, *, now: datetime | None = None) -> list[str]:
        """End every mute whose time is up, each with a notice in the channel."""
        now = now or self._clock()

        async def write(session: AsyncSession) -> list[str]:
            ended: list[str] = []
            for mute in await q.expired_mutes(session, now=now):
                mute.ended_at = mute.until
                mute.ended_how = "expired"
                others = [
                    m
                    for m in await q.unended_mutes(session, mute.instance_id)
                    if m.id != mute.id and m.until > now
                ]
                if others:
                    continue  # another mute still holds: nothing changes for the channel
                await self._ended(
                    session,
                    mute.instance_id,
                    mute.instance_name,
                    how="expired",
                    actor=None,
                    muted_by=mute.actor,
                    now=now,
                )
                ended.append(mute.instance_id)
            return ended

        ended = await self._db.run(write)
        if ended:
            self._forget_guard()
        return ended

    async def _ended(
        self,
        session: AsyncSession,
        instance_id: str,
        name: str | None,
        *,
        how: str,
        actor: str | None,
        muted_by: str | None,
        now: datetime,
    ) -> None:
        """Tell the channel the mute ended; announce the incident it kept quiet, if any."""
        row = await q.instance_row(session, instance_id)
        incident = await q.open_incident(session, instance_id)
        announce = incident is not None and not incident.announced and incident.channel is not None
        await self._notifier.notice(
            session,
            self._policy.channel_for(name),
            blocks.mute_ended_notice(
                instance_label(instance_id, name),
                how=how,
                actor=actor,
                muted_by=muted_by,
                status=row.status if row is not None else None,
                open_incident=incident.id if announce and incident is not None else None,
            ),
            now,
            mute_stream(instance_id),
        )
        if announce and incident is not None:
            await self._notifier.post_root(session, incident, now)
