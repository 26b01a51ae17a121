"""The incident state machine: open → (acknowledged) → resolved, one incident per instance.

- **Open**: a problem status (``stale``, ``error``, ``health_unknown``) of an instance
  without an open incident opens one, announced by one root message that mentions the
  on-call group. The auto-restart budget running out with no incident open opens one
  of kind ``restart_budget_exhausted``.
- **Recur**: a problem while the incident is open is a thread reply; a problem within the
  flap window after the incident was resolved *reopens* it (a reply, the root edited
  back), so a bouncing instance keeps one incident.
- **Flapping**: more than ``flap_changes`` status changes in ``flap_window`` (user actions
  not counted) mark the incident flapping, said once in its thread. From then on
  recoveries do not resolve it and repeats post nothing; it resolves once the instance
  has been steady (no change for a whole window, and healthy): :meth:`Incidents.settle`.
- **Resolve**: the instance leaves the problem status (recovered, or paused/stopped by
  someone). A recovery reply is posted only for an announced incident.
- **Acknowledge**: by a person; the root then says who (idempotent) and that on-call is
  paged no more: an escalation after it is a note without the mention. Auto-restarts go
  on (only a ``--no-restart`` mute stops them).
- **Budget exhausted**: paged once per exhaustion; ``exhausted_at``, written with the
  page, tells a restarted or new leader (which announces it again) that it went out.

Muting is asked through :class:`~bot.alerts.mutes.Muter`: the storm inhibitor's quiet
means no incident at all (the fleet incident covers the instance), a silence's quiet
means an incident nobody is told about, and a maintenance window's
(:mod:`bot.alerts.maintenance`) means no new incident, an open one kept quiet. Fleet
members' restarts and exhausted budgets go to :class:`~bot.alerts.fleet.FleetIncidents`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts import blocks, rows
from bot.alerts import queries as q
from bot.alerts.facts import health_facts, update_facts
from bot.alerts.maintenance import MaintenanceWindows
from bot.alerts.mutes import Alert, Muter, Silences
from bot.alerts.policy import PROBLEM_STATUSES
from bot.alerts.records import KIND_WORDS, AckResult, IncidentView
from bot.blockkit.limits import Reply
from bot.blockkit.mrkdwn import duration, escape, user
from bot.monitor.events import EventKind, MonitorEvent

if TYPE_CHECKING:
    from bot.alerts.escalation import Escalation
    from bot.alerts.fleet import FleetIncidents
    from bot.alerts.notify import Notifier
    from bot.alerts.policy import AlertPolicy


def incident_kind(event: MonitorEvent) -> str:
    """The incident kind a problem event opens: ``stale``, ``health_unknown`` or ``error``."""
    if event.kind == EventKind.STALE:
        return "stale"
    if event.kind == EventKind.HEALTH_UNKNOWN or (event.to_status or "").lower() == "unknown":
        return "health_unknown"
    return "error"


def _exhausted(detail: str) -> str:
    return f"auto-restart budget exhausted: {detail}" if detail else "auto-restart budget exhausted"


class Incidents:
    """Per-instance incidents, driven by the monitor's events (in its transaction)."""

    def __init__(
        self,
        policy: AlertPolicy,
        *,
        notifier: Notifier,
        silences: Silences,
        inhibitor: Muter,
        fleet: FleetIncidents,
        escalation: Escalation,
        maintenance: MaintenanceWindows,
    ) -> None:
        self._policy = policy
        self._notifier = notifier
        self._silences = silences
        self._maintenance = maintenance
        self._inhibitor = inhibitor
        self._fleet = fleet
        self._escalation = escalation

    async def on_problem(self, session: AsyncSession, event: MonitorEvent) -> None:
        """The instance entered a problem status: open, reopen or add to its incident."""
        instance_id = event.instance_id
        assert instance_id is not None
        at = event.at
        incident = await rows.open_incident(session, instance_id)
        alert = Alert(
            instance_id, at, stale=event.kind == EventKind.STALE, has_incident=incident is not None
        )
        if await self._inhibitor.mutes(session, alert):
            # Part of a storm (or the backend outage): the fleet incident covers it and
            # lists it after the next recount (housekeeping).
            return
        in_maintenance = await self._maintenance.mutes(session, alert)
        if in_maintenance and incident is None:
            return  # planned maintenance: no incident opens (nor reopens) until it ends
        inst = event.instance
        muted = in_maintenance or await self._silences.mutes(session, alert)
        changes = await q.changes_since(session, instance_id, since=at - self._policy.flap_window)
        flapping_now = changes > self._policy.flap_changes
        kind = incident_kind(event)
        created = reopened = False
        if incident is None:
            incident = await q.recently_resolved(
                session, instance_id, since=at - self._policy.flap_window
            )
            if incident is not None:
                reopened = True
                incident.state = "acknowledged" if incident.acknowledged_by else "open"
                incident.open_key = instance_id
                incident.resolved_at = None
                incident.resolved_note = None
                incident.recurrences = (incident.recurrences or 0) + 1
                rows.remember_open(session, incident)
            else:
                created = True
                incident = rows.new_incident(
                    self._policy,
                    scope="instance",
                    kind=kind,
                    at=at,
                    instance_id=instance_id,
                    name=inst.name if inst is not None else None,
                    region=inst.region if inst is not None else None,
                    detail=event.detail,
                )
                session.add(incident)
                rows.remember_open(session, incident)
        else:
            incident.recurrences = (incident.recurrences or 0) + 1
        previous_kind = incident.kind
        incident.kind = kind
        incident.detail = event.detail or incident.detail
        incident.updated_at = at
        action = (
            "auto-restart due" if kind == "stale" else "none: only stale instances are restarted"
        )
        if kind == "stale" and await self._silences.holds_restarts(session, instance_id, at):
            action = "none: muted with --no-restart"
        elif kind == "stale" and await self._maintenance.holds_restarts(session, instance_id, at):
            action = "none: maintenance with --no-restart"
        update_facts(
            incident, status=event.to_status, action=action, **health_facts(event.health, at)
        )
        became_flapping = flapping_now and not incident.flapping
        if became_flapping:
            incident.flapping = True
        await session.flush()

        if muted:
            if incident.announced:
                # Muted: the root shows it, nobody is paged again.
                await self._notifier.refresh(session, incident, at, page=False)
            return
        if created or not incident.announced:
            await self._notifier.post_root(session, incident, at)
            return
        message: Reply | None = None
        if became_flapping:
            window = duration(self._policy.flap_window.total_seconds())
            message = blocks.thread_note(
                f"〰️ Flapping: {changes} status changes in {window}. This stays one "
                f"incident and goes quiet until the instance has been steady for {window}."
            )
        elif not incident.flapping:
            again = "again" if reopened or previous_kind == kind else "now"
            message = blocks.thread_note(
                f"⚠️ {escape(KIND_WORDS.get(kind, kind))} {again}: {escape(event.detail)}"
            )
        await self._notifier.follow_up(session, incident, at, message)

    async def on_healthy(self, session: AsyncSession, event: MonitorEvent) -> None:
        """The instance left the problem status: resolve its incident (unless flapping)."""
        instance_id = event.instance_id
        assert instance_id is not None
        at = event.at
        incident = await rows.open_incident(session, instance_id)
        if incident is None:
            return  # a fleet member leaves the fleet incident at its next recount
        incident.updated_at = at
        update_facts(incident, status=event.to_status, **health_facts(event.health, at))
        if incident.flapping:
            # Flapping incidents resolve only once steady (housekeeping), quietly meanwhile.
            await self._notifier.refresh(session, incident, at)
            return
        note = event.detail or f"now {event.to_status}"
        rows.resolve(incident, at, note)
        await session.flush()
        message: Reply | None = None
        if not await self._silences.mutes(session, Alert(instance_id, at)):
            after = (at - incident.opened_at).total_seconds()
            message = blocks.recovered_note(IncidentView.from_row(incident), note, after_secs=after)
        await self._notifier.follow_up(session, incident, at, message)

    async def on_restart(self, session: AsyncSession, event: MonitorEvent) -> None:
        """The monitor restarted the instance (or tried to): counted and told."""
        instance_id = event.instance_id
        assert instance_id is not None
        at = event.at
        ok = event.kind == EventKind.RESTART_ATTEMPTED
        incident = await rows.open_incident(session, instance_id)
        if incident is None:
            await self._fleet.member_restarted(session)
            return
        incident.restart_attempts = (incident.restart_attempts or 0) + 1
        incident.updated_at = at
        update_facts(incident, action=event.detail)
        await session.flush()
        quiet = incident.flapping or await self._silences.mutes(session, Alert(instance_id, at))
        await self._notifier.follow_up(
            session, incident, at, None if quiet else blocks.restart_note(event.detail, ok=ok)
        )
        if not quiet:
            await self._notifier.action_taken(session, incident, at, action=event.detail)

    async def on_deferred(self, session: AsyncSession, event: MonitorEvent) -> None:
        """A restart was put off: the root says why."""
        assert event.instance_id is not None
        incident = await rows.open_incident(session, event.instance_id)
        if incident is None:
            return
        update_facts(incident, action=event.detail)
        await self._notifier.refresh(session, incident, event.at)

    async def on_exhausted(self, session: AsyncSession, event: MonitorEvent) -> None:
        """The auto-restart budget ran out: escalate (opening an incident if need be)."""
        instance_id = event.instance_id
        assert instance_id is not None
        at = event.at
        muted = await self._silences.mutes(session, Alert(instance_id, at))
        incident = await rows.open_incident(session, instance_id)
        if incident is None:
            if await self._maintenance.mutes(session, Alert(instance_id, at)):
                return  # planned maintenance: no incident opens
            if await self._fleet.member_exhausted(session, event):
                return
            inst = event.instance
            incident = rows.new_incident(
                self._policy,
                scope="instance",
                kind="restart_budget_exhausted",
                at=at,
                instance_id=instance_id,
                name=inst.name if inst is not None else None,
                region=inst.region if inst is not None else None,
                detail=event.detail,
            )
            incident.exhausted_at = at
            session.add(incident)
            rows.remember_open(session, incident)
            update_facts(
                incident, action=_exhausted(event.detail), **health_facts(event.health, at)
            )
            await session.flush()
            if not muted:
                await self._notifier.post_root(session, incident, at)
            return
        update_facts(incident, action=_exhausted(event.detail))
        if incident.exhausted_at is not None and not await q.auto_restarted_after(
            session, instance_id, incident.exhausted_at
        ):
            # The same exhaustion told again: a new process or leader has no memory of
            # the announcement, but ``exhausted_at`` (written with the page) says it went.
            await session.flush()
            await self._notifier.refresh(session, incident, at)
            return
        incident.exhausted_at = at
        incident.updated_at = at
        await session.flush()
        await self._escalation.budget_exhausted(session, incident, at, event.detail, quiet=muted)

    async def acknowledge(
        self, session: AsyncSession, incident_id: int, actor: str, now: datetime
    ) -> AckResult:
        """Acknowledge an incident; idempotent (a second call says who already did)."""
        incident = await q.incident_by_id(session, incident_id)
        if incident is None:
            return AckResult(incident_id, "not_found")
        label = IncidentView.from_row(incident).label
        if incident.state == "resolved":
            return AckResult(incident_id, "resolved", label=label)
        if incident.state == "acknowledged":
            return AckResult(
                incident_id,
                "already",
                by=incident.acknowledged_by,
                at=incident.acknowledged_at,
                label=label,
            )
        incident.state = "acknowledged"
        incident.acknowledged_by = actor
        incident.acknowledged_at = now
        incident.updated_at = now
        await self._notifier.refresh(session, incident, now)
        return AckResult(incident_id, "acknowledged", by=actor, at=now, label=label)

    async def note_manual_restart(
        self,
        session: AsyncSession,
        incident_id: int,
        actor: str,
        now: datetime,
        *,
        ok: bool,
        error: str | None = None,
    ) -> None:
        """Say in the incident's thread that ``actor`` restarted the instance (or failed to)."""
        incident = await q.incident_by_id(session, incident_id)
        if incident is None:
            return
        if ok:
            text = f"🔄 {user(actor)} restarted it by hand."
            update_facts(incident, action="restarted by hand", action_by=actor)
        else:
            text = f"❌ {user(actor)} tried to restart it: {escape(error or 'failed')}"
        incident.updated_at = now
        await self._notifier.follow_up(session, incident, now, blocks.thread_note(text))
        action = "restarted by hand" if ok else f"restart by hand failed: {error or 'failed'}"
        await self._notifier.action_taken(session, incident, now, action=action, actor=actor)

    async def settle(self, session: AsyncSession, now: datetime) -> list[int]:
        """Resolve flapping incidents whose instance has been steady for a whole window."""
        resolved: list[int] = []
        window = self._policy.flap_window
        for incident in await q.flapping_incidents(session):
            if incident.instance_id is None:
                continue
            if await q.changes_since(session, incident.instance_id, since=now - window) > 0:
                continue
            row = await q.instance_row(session, incident.instance_id)
            if row is None or row.status.lower() in PROBLEM_STATUSES:
                continue
            note = f"steady for {duration(window.total_seconds())}"
            rows.resolve(incident, now, note)
            await session.flush()
            quiet = await self._silences.mutes(session, Alert(incident.instance_id, now))
            message = blocks.thread_note(f"✅ Stopped flapping: {note}.")
            await self._notifier.follow_up(session, incident, now, None if quiet else message)
            resolved.append(incident.id)
        return resolved
