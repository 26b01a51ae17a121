"""Fleet grouping and inhibition: one incident for a storm or an unreachable backend.

- **Grouping**: a storm (``storm`` event) or an unreachable backend opens the one fleet
  incident instead of one per instance. Its members are recounted from the store in one
  query (every housekeeping run, and when the backend answers again): instances in a
  problem status without an incident of their own. It resolves when the backend answers
  and no member is left; its members' restarts and exhausted budgets are counted, and the
  first exhausted budget re-mentions the on-call group once.
- **Inhibition** (:class:`StormInhibitor`, a :class:`~bot.alerts.mutes.Muter`): the
  stale instances of the storm's own sweep get no incident of their own (and the monitor
  restarts none of them in a storm sweep); while the fleet incident is open, instances
  that go stale are covered by it too, quietly.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts import blocks, rows
from bot.alerts import queries as q
from bot.alerts.facts import IncidentFacts, update_facts
from bot.alerts.mutes import Alert
from bot.blockkit.mrkdwn import duration, escape
from bot.monitor.events import MonitorEvent
from bot.store.alert_models import AlertIncident

if TYPE_CHECKING:
    from bot.alerts.escalation import Escalation
    from bot.alerts.notify import Notifier
    from bot.alerts.policy import AlertPolicy

STORM_ACTION = "no per-instance restarts during the storm"


class StormInhibitor:
    """Mutes the instance alerts a storm (or the backend outage) already covers."""

    def __init__(self) -> None:
        # The stale ids of the storm announced in the sweep at ``_storm_at``: their own
        # stale events (dispatched right after, in the same transaction) are folded in.
        self._storm_at: datetime | None = None
        self._storm_ids: frozenset[str] = frozenset()

    def storm(self, at: datetime, stale_ids: frozenset[str]) -> None:
        """Remember the storm of the sweep at ``at``."""
        self._storm_at, self._storm_ids = at, stale_ids

    async def mutes(self, session: AsyncSession, alert: Alert) -> bool:
        """True for the storm's own instances in its sweep, and for an instance going
        stale, without an incident of its own, while the fleet incident is open."""
        if self._storm_at == alert.at and alert.instance_id in self._storm_ids:
            return True
        return (
            alert.stale and not alert.has_incident and await rows.open_fleet_id(session) is not None
        )


class FleetIncidents:
    """The fleet incident's life: opened by a storm or an outage, recounted, resolved."""

    def __init__(
        self,
        policy: AlertPolicy,
        *,
        notifier: Notifier,
        inhibitor: StormInhibitor,
        escalation: Escalation,
    ) -> None:
        self._policy = policy
        self._notifier = notifier
        self._inhibitor = inhibitor
        self._escalation = escalation

    async def _open(self, session: AsyncSession, fleet: AlertIncident, at: datetime) -> None:
        session.add(fleet)
        rows.remember_open(session, fleet)
        await session.flush()
        await self._notifier.post_root(session, fleet, at)

    async def on_storm(self, session: AsyncSession, event: MonitorEvent) -> None:
        """A storm: open the fleet incident (or say so in the open one's thread)."""
        at = event.at
        ids = list(event.stale_ids)
        self._inhibitor.storm(at, frozenset(ids))
        own = await q.open_keys_among(session, ids)
        members = [i for i in ids if i not in own]
        fleet = await q.open_fleet_incident(session)
        if fleet is not None:
            update_facts(fleet, action=STORM_ACTION)
            fleet.detail = event.detail
            await self.recount(session, fleet, at, quiet=True)
            await self._notifier.follow_up(
                session, fleet, at, blocks.thread_note(f"🌩️ Storm: {escape(event.detail)}")
            )
            return
        fleet = rows.new_incident(
            self._policy, scope="fleet", kind="stale", at=at, detail=event.detail
        )
        fleet.facts = IncidentFacts(
            members=members,
            names=await q.instance_names(session, members),
            action=STORM_ACTION,
        ).dump()
        await self._open(session, fleet, at)

    async def on_backend_down(self, session: AsyncSession, event: MonitorEvent) -> None:
        """The backend stopped answering: open the fleet incident (or note it)."""
        at = event.at
        fleet = await q.open_fleet_incident(session)
        if fleet is not None:
            update_facts(fleet, backend_down=True)
            fleet.updated_at = at
            await session.flush()
            await self._notifier.follow_up(
                session, fleet, at, blocks.thread_note(f"🚨 {escape(event.detail)}")
            )
            return
        fleet = rows.new_incident(
            self._policy, scope="fleet", kind="backend_unreachable", at=at, detail=event.detail
        )
        fleet.facts = IncidentFacts(
            members=[],
            backend_down=True,
            action="sweeps continue; nothing is restarted while the backend is unreachable",
        ).dump()
        await self._open(session, fleet, at)

    async def on_backend_up(self, session: AsyncSession, event: MonitorEvent) -> None:
        """The backend answers again: recount the fleet incident, resolve it if empty."""
        at = event.at
        fleet = await q.open_fleet_incident(session)
        if fleet is None:
            return
        update_facts(fleet, backend_down=False)
        fleet.updated_at = at
        await self.recount(session, fleet, at, quiet=True)
        if fleet.state != "resolved":
            members = IncidentFacts.of(fleet).members
            await self._notifier.follow_up(
                session,
                fleet,
                at,
                blocks.thread_note(
                    f"🟢 {escape(event.detail)}; {len(members)} instances are still stale."
                ),
            )

    async def member_restarted(self, session: AsyncSession) -> None:
        """A fleet member was restarted (once the storm is over): counted, shown at the
        fleet message's next edit; one SQL update, the members list stays untouched."""
        await q.count_fleet_restart(session)

    async def member_exhausted(self, session: AsyncSession, event: MonitorEvent) -> bool:
        """An instance without an incident of its own ran out of restarts: True when the
        open fleet incident covers it (the on-call group hears it once per fleet incident),
        False when there is no fleet incident."""
        fleet_id = await rows.open_fleet_id(session)
        if fleet_id is None:
            return False
        fleet = await q.incident_by_id(session, fleet_id)
        if fleet is not None and fleet.exhausted_at is None:
            at = event.at
            fleet.exhausted_at = at
            update_facts(fleet, action="auto-restart gave up on some instances")
            label = event.instance.label if event.instance is not None else event.instance_id
            await self._escalation.fleet_member_gave_up(
                session, fleet, at, label or "", event.detail
            )
        return True

    async def settle(self, session: AsyncSession, now: datetime) -> int | None:
        """Housekeeping: recount the open fleet incident; its id when that resolved it."""
        fleet = await q.open_fleet_incident(session)
        if fleet is None:
            return None
        await self.recount(session, fleet, now)
        return fleet.id if fleet.state == "resolved" else None

    async def recount(
        self, session: AsyncSession, fleet: AlertIncident, at: datetime, *, quiet: bool = False
    ) -> None:
        """Recompute the fleet incident's members from the store; resolve it when none are
        left and the backend answers.

        Members are the instances in a problem status without an open incident of their
        own: whatever went stale while the fleet incident was open is covered by it, and
        whatever recovered has left it. Recomputing in one query (housekeeping, backend
        recovery) instead of writing per event keeps a 10,000-instance storm cheap.
        """
        facts = IncidentFacts.of(fleet)
        before = list(facts.members)
        problem = await q.problem_instance_ids(session)
        own = await q.open_keys_among(session, problem)
        now_members = [i for i in problem if i not in own]
        if set(now_members) != set(before):
            kept = [m for m in before if m in set(now_members)]
            joined = [m for m in now_members if m not in set(before)]
            names = {k: v for k, v in facts.names.items() if k in set(kept)}
            names.update(await q.instance_names(session, joined))
            recovered = facts.recovered + len(before) - len(kept)
            facts = update_facts(fleet, members=kept + joined, names=names, recovered=recovered)
            fleet.updated_at = at
            await session.flush()
            if not quiet:
                await self._notifier.refresh(session, fleet, at)
        await self._maybe_resolve(session, fleet, facts, at)

    async def _maybe_resolve(
        self, session: AsyncSession, fleet: AlertIncident, facts: IncidentFacts, at: datetime
    ) -> None:
        if facts.members or facts.backend_down:
            return
        recovered = facts.recovered
        note = f"all {recovered} stale instances recovered" if recovered else "the backend answers"
        rows.resolve(fleet, at, note)
        await session.flush()
        after = (at - fleet.opened_at).total_seconds()
        await self._notifier.follow_up(
            session,
            fleet,
            at,
            blocks.thread_note(f"✅ Resolved after {duration(after)}: {escape(note)}"),
        )
