"""Notification: the stage that turns an incident's changes into outbox rows.

Every message is a row written in the caller's transaction (see :mod:`bot.alerts.outbox`),
so it exists exactly when the change does; :mod:`bot.alerts.delivery` sends it. What is
written depends only on the incident: nothing is posted for an incident that was not
announced (muted, or no channel), and the root is edited before a reply is queued.

The same changes owe PagerDuty and the webhook their events (:mod:`bot.alerts.paging`):
an announcement triggers, later refreshes mirror the incident's state. An announced
instance incident's root is followed by its diagnostics reply (:mod:`bot.alerts.diagnostics`)
when ``diagnostics`` is on.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts import blocks
from bot.alerts.live import refresh_readings, root_digest
from bot.alerts.outbox import (
    DIAGNOSTICS,
    NOTICE,
    REPLY,
    ROOT,
    enqueue,
    enqueue_raw,
    incident_stream,
    refresh_root,
)
from bot.alerts.paging import PagingTargets, action_taken, sync_pages
from bot.alerts.records import IncidentView
from bot.blockkit.limits import Reply
from bot.store.alert_models import AlertIncident

if TYPE_CHECKING:
    from bot.alerts.delivery import OutboxDelivery
    from bot.alerts.policy import AlertPolicy

_NUDGE_KEY = "starpod_alerts_nudge"


class Notifier:
    """Writes the root message, its edits, thread replies and channel notices.

    ``delivery`` is nudged once a transaction that added rows commits (when ``nudge``);
    without a delivery the rows wait for another process to send them.
    """

    def __init__(
        self,
        policy: AlertPolicy,
        delivery: OutboxDelivery | None,
        *,
        nudge: bool = True,
        paging: PagingTargets | None = None,
        diagnostics: bool = False,
    ) -> None:
        self._policy = policy
        self._delivery = delivery
        self.nudge = nudge
        self.paging = paging or PagingTargets()
        self.diagnostics = diagnostics

    def _nudge_after_commit(self, session: AsyncSession) -> None:
        """Wake the delivery once ``session``'s transaction commits (not before: a nudge
        before the commit would find nothing to send)."""
        if not self.nudge or self._delivery is None or session.info.get(_NUDGE_KEY):
            return
        session.info[_NUDGE_KEY] = True
        delivery = self._delivery

        def after_commit(_session: object) -> None:
            delivery.nudge()

        sa_event.listen(session.sync_session, "after_commit", after_commit, once=True)

    def root(self, incident: AlertIncident) -> Reply:
        """The incident's root message for its current state."""
        return blocks.root_message(IncidentView.from_row(incident), mention=self._policy.mention)

    async def post_root(
        self, session: AsyncSession, incident: AlertIncident, now: datetime
    ) -> None:
        """Announce the incident: its root message (nothing without a channel), then its
        diagnostics reply; the paging destinations are triggered even without a channel."""
        if await sync_pages(session, incident, self.paging, now, announce=True):
            self._nudge_after_commit(session)
        if incident.channel is None:
            return
        incident.announced = True
        await refresh_readings(session, incident, now)
        await session.flush()
        await enqueue(
            session,
            kind=ROOT,
            channel=incident.channel,
            message=self.root(incident),
            now=now,
            stream=incident_stream(incident.id),
            incident_id=incident.id,
            digest=root_digest(incident, mention=self._policy.mention),
        )
        if self.diagnostics and incident.instance_id is not None:
            # Built when sent (a backend call must not hold this transaction), right after
            # the root in the incident's stream, so it lands first in the thread.
            await enqueue_raw(
                session,
                kind=DIAGNOSTICS,
                channel=incident.channel,
                payload={
                    "instance_id": incident.instance_id,
                    "label": IncidentView.from_row(incident).label,
                },
                now=now,
                stream=incident_stream(incident.id),
                incident_id=incident.id,
            )
        self._nudge_after_commit(session)

    async def refresh(
        self, session: AsyncSession, incident: AlertIncident, now: datetime, *, page: bool = True
    ) -> None:
        """Edit an announced incident's root to its current state, with the heartbeat age
        and health as of ``now``; nothing when only those changed (:mod:`bot.alerts.live`).
        The paging destinations learn a state change too (not with ``page=False``: muted)."""
        if page and await sync_pages(session, incident, self.paging, now, announce=False):
            self._nudge_after_commit(session)
        if not incident.announced or incident.channel is None:
            return
        await refresh_readings(session, incident, now)
        await session.flush()
        await refresh_root(
            session,
            incident_id=incident.id,
            channel=incident.channel,
            message=self.root(incident),
            now=now,
            digest=root_digest(incident, mention=self._policy.mention),
        )
        self._nudge_after_commit(session)

    async def reply(
        self,
        session: AsyncSession,
        incident: AlertIncident,
        message: Reply,
        now: datetime,
        *,
        broadcast: bool = False,
    ) -> None:
        """A reply in an announced incident's thread (``broadcast``: also to the channel)."""
        if not incident.announced or incident.channel is None:
            return
        await enqueue(
            session,
            kind=REPLY,
            channel=incident.channel,
            message=message,
            now=now,
            stream=incident_stream(incident.id),
            incident_id=incident.id,
            broadcast=broadcast,
        )
        self._nudge_after_commit(session)

    async def follow_up(
        self,
        session: AsyncSession,
        incident: AlertIncident,
        at: datetime,
        message: Reply | None = None,
        *,
        broadcast: bool = False,
    ) -> None:
        """Edit the root to the incident's state, then (optionally) reply in its thread.

        The edit goes first: should the root have failed for good, the edit becomes the
        new root and the reply can still find a thread.
        """
        await self.refresh(session, incident, at)
        if message is not None:
            await self.reply(session, incident, message, at, broadcast=broadcast)

    async def notice(
        self, session: AsyncSession, channel: str | None, message: Reply, now: datetime, stream: str
    ) -> None:
        """A top-level message that belongs to no incident (nothing without a channel)."""
        if channel is None:
            return
        await enqueue(
            session, kind=NOTICE, channel=channel, message=message, now=now, stream=stream
        )
        self._nudge_after_commit(session)

    async def action_taken(
        self,
        session: AsyncSession,
        incident: AlertIncident,
        now: datetime,
        *,
        action: str,
        actor: str | None = None,
    ) -> None:
        """Tell the webhook that ``action`` was taken on the incident (``actor``: a person)."""
        if await action_taken(session, incident, self.paging, now, action=action, actor=actor):
            self._nudge_after_commit(session)
