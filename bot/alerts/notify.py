"""Notification: the stage that turns an incident's changes into outbox rows.

Every message is a row written in the caller's transaction (see :mod:`bot.alerts.outbox`),
so it exists exactly when the change does; :mod:`bot.alerts.delivery` sends it. What is
written depends only on the incident: nothing is posted for an incident that was not
announced (muted, or no channel), and the root is edited before a reply is queued.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts import blocks
from bot.alerts.live import refresh_readings, root_digest
from bot.alerts.outbox import NOTICE, REPLY, ROOT, enqueue, incident_stream, refresh_root
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
        self, policy: AlertPolicy, delivery: OutboxDelivery | None, *, nudge: bool = True
    ) -> None:
        self._policy = policy
        self._delivery = delivery
        self.nudge = nudge

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
        """Announce the incident: its root message (nothing without a channel)."""
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
        self._nudge_after_commit(session)

    async def refresh(self, session: AsyncSession, incident: AlertIncident, now: datetime) -> None:
        """Edit an announced incident's root to its current state, with the heartbeat age
        and health as of ``now``; nothing when only those changed (:mod:`bot.alerts.live`)."""
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
