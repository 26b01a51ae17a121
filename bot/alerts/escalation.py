"""Escalation: when the on-call group is mentioned again.

- at once, in the incident's thread (broadcast to the channel), when the auto-restart
  budget runs out; for the fleet incident, once, on the first member whose budget ran out;
- once, by housekeeping, for an incident still open (not acknowledged) after
  ``escalate_after`` — unless the instance is muted.

Paged once: every mention is recorded on the incident in the transaction that writes
its outbox row — ``announced`` for the root, ``escalated_at`` for the overdue
re-mention, ``exhausted_at`` for the budget (a new one needs a new auto-restart after
it) — so a restart, a failover or a replayed monitor event never pages again.

Acknowledged means someone is on it: no more mentions for that incident. The note is
still posted (the budget ran out, restarts stopped) and says why nobody was paged.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts import blocks
from bot.alerts import queries as q
from bot.alerts.mutes import Alert, Muter
from bot.blockkit.limits import Reply
from bot.blockkit.mrkdwn import duration, escape, user
from bot.store.alert_models import AlertIncident

if TYPE_CHECKING:
    from bot.alerts.notify import Notifier
    from bot.alerts.policy import AlertPolicy


def _escalation_or_note(mention: str | None, incident: AlertIncident, text: str) -> Reply:
    """The on-call mention, or for an acknowledged incident the same words without it."""
    if incident.state == "acknowledged":
        by = user(incident.acknowledged_by)
        return blocks.thread_note(
            f"📣 {text} Acknowledged by {by}: the on-call group is not paged again.",
            fallback=f"📣 {text} (acknowledged: the on-call group is not paged again)",
        )
    return blocks.escalation_note(mention, text)


class Escalation:
    """Re-mentions of the on-call group, each at most once per reason."""

    def __init__(self, policy: AlertPolicy, *, notifier: Notifier, silences: Muter) -> None:
        self._policy = policy
        self._notifier = notifier
        self._silences = silences

    async def budget_exhausted(
        self,
        session: AsyncSession,
        incident: AlertIncident,
        at: datetime,
        detail: str,
        *,
        quiet: bool,
    ) -> None:
        """The instance's auto-restart budget ran out: root edited, and (unless ``quiet``)
        the on-call group mentioned in the thread and the channel."""
        text = f"Auto-restart gave up: {escape(detail)}"
        escalation = _escalation_or_note(self._policy.mention, incident, text)
        await self._notifier.follow_up(
            session, incident, at, None if quiet else escalation, broadcast=True
        )

    async def fleet_member_gave_up(
        self, session: AsyncSession, fleet: AlertIncident, at: datetime, label: str, detail: str
    ) -> None:
        """A fleet member's budget ran out: the on-call group hears it once per fleet
        incident (the caller marks ``exhausted_at``)."""
        message = _escalation_or_note(
            self._policy.mention,
            fleet,
            f"Auto-restart gave up on {escape(label)} (and maybe more): {escape(detail)}",
        )
        await self._notifier.follow_up(session, fleet, at, message, broadcast=True)

    async def overdue(self, session: AsyncSession, now: datetime) -> list[int]:
        """Re-mention every incident open too long and never acknowledged (once each);
        returns their ids (a muted instance's incident is marked, not mentioned)."""
        escalated: list[int] = []
        for incident in await q.due_for_escalation(
            session, opened_before=now - self._policy.escalate_after
        ):
            incident.escalated_at = now
            if incident.instance_id and await self._silences.mutes(
                session, Alert(incident.instance_id, now)
            ):
                continue
            open_for = duration((now - incident.opened_at).total_seconds())
            await self._notifier.reply(
                session,
                incident,
                blocks.escalation_note(
                    self._policy.mention,
                    f"Incident #{incident.id} is still open after {open_for} and nobody "
                    "has acknowledged it.",
                ),
                now,
                broadcast=True,
            )
            escalated.append(incident.id)
        return escalated
