"""AlertService: the facade the runtime, the monitor and the Slack app talk to.

It turns monitor events into incidents and outbox rows, and takes mutes and
acknowledgements; the work is done by the parts, along Alertmanager's seams:

``incidents``   :class:`~bot.alerts.incidents.Incidents`, the state machine (open, recur,
                flap, resolve, acknowledge) — its rules are in that module's docstring
``fleet``       :class:`~bot.alerts.fleet.FleetIncidents` (storm and backend-outage
                grouping) and :class:`~bot.alerts.fleet.StormInhibitor`
``mutes``       the one muting interface (:class:`~bot.alerts.mutes.Muter`), served by
                :class:`~bot.alerts.mutes.Silences` (people's mutes), the inhibitor and
                :class:`~bot.alerts.maintenance.MaintenanceWindows` (planned windows)
``escalation``  :class:`~bot.alerts.escalation.Escalation`, re-mentions of the on-call group
``notify``      :class:`~bot.alerts.notify.Notifier`, the outbox rows of each change

:meth:`AlertService.handle_event` is the dispatch: it routes each event to its part.
Every message is an outbox row written in the caller's transaction; see
:mod:`bot.alerts.outbox` and :mod:`bot.alerts.delivery`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts import queries as q
from bot.alerts.budget import reset_budget
from bot.alerts.delivery import OutboxDelivery
from bot.alerts.escalation import Escalation
from bot.alerts.fleet import FleetIncidents, StormInhibitor
from bot.alerts.incidents import Incidents
from bot.alerts.maintenance import MaintenanceWindows
from bot.alerts.maintenance_records import AnnounceReport
from bot.alerts.mutes import Silences
from bot.alerts.notify import Notifier
from bot.alerts.paging import PagingTargets
from bot.alerts.policy import PROBLEM_STATUSES, AlertPolicy
from bot.alerts.records import (
    AckResult,
    BudgetResetResult,
    IncidentView,
    MuteResult,
    UnmuteResult,
)
from bot.backend.models import Instance
from bot.monitor.events import EventKind, MonitorEvent

if TYPE_CHECKING:
    import aiohttp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.backend.client import InstanceClient
    from bot.config import Settings
    from bot.monitor.monitor import HealthMonitor
    from bot.store.database import Database

__all__ = ["AlertPolicy", "AlertService", "HousekeepingReport"]

log = logging.getLogger(__name__)

# Finished outbox rows (sent, superseded, failed: all logged when it happened) are kept a
# week for debugging, then deleted a batch per housekeeping run; pending ones never are.
OUTBOX_KEEP = timedelta(days=7)
OUTBOX_PRUNE_BATCH = 1000


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class HousekeepingReport:
    """What one :meth:`AlertService.run_housekeeping` did."""

    escalated: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    mutes_ended: list[str] = field(default_factory=list)
    maintenance_started: list[int] = field(default_factory=list)
    maintenance_ended: list[int] = field(default_factory=list)
    pruned: int = 0


def _parse_incident_id(incident_id: str | int) -> int | None:
    if isinstance(incident_id, int):
        return incident_id
    text = str(incident_id).strip().lstrip("#")
    return int(text) if text.isdigit() else None


class AlertService:
    """Incidents, mutes and acknowledgements; register :meth:`handle_event` with the monitor.

    ``delivery`` sends the outbox (None: rows wait for another process to send them).
    ``nudge`` makes every commit that added rows wake the delivery at once.
    """

    def __init__(
        self,
        db: Database,
        *,
        policy: AlertPolicy | None = None,
        delivery: OutboxDelivery | None = None,
        clock: Callable[[], datetime] = _utcnow,
        nudge: bool = True,
        is_leader: Callable[[], bool] | None = None,
        paging: PagingTargets | None = None,
        diagnostics: bool | None = None,
    ) -> None:
        self._db = db
        self._is_leader = is_leader
        self.policy = policy or AlertPolicy()
        self.delivery = delivery
        self._clock = clock
        self._warned_no_store = False
        if diagnostics is None:  # the diagnostics reply goes with a delivery that builds it
            diagnostics = delivery is not None and delivery.diagnostics is not None
        self.notifier = Notifier(
            self.policy, delivery, nudge=nudge, paging=paging, diagnostics=diagnostics
        )
        self.silences = Silences(db, policy=self.policy, notifier=self.notifier, clock=clock)
        self.maintenance = MaintenanceWindows(
            db, policy=self.policy, notifier=self.notifier, clock=clock
        )
        self.maintenance.on_change = self._maintenance_changed
        self.inhibitor = StormInhibitor()
        self.escalation = Escalation(self.policy, notifier=self.notifier, silences=self.silences)
        self.fleet = FleetIncidents(
            self.policy,
            notifier=self.notifier,
            inhibitor=self.inhibitor,
            escalation=self.escalation,
        )
        self.incidents = Incidents(
            self.policy,
            notifier=self.notifier,
            silences=self.silences,
            inhibitor=self.inhibitor,
            fleet=self.fleet,
            escalation=self.escalation,
            maintenance=self.maintenance,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        db: Database,
        *,
        web: AsyncWebClient | None = None,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], datetime] = _utcnow,
        is_leader: Callable[[], bool] | None = None,
        holder: str | None = None,
        nudge: bool = True,
        client: InstanceClient | None = None,
    ) -> AlertService:
        """The service with its delivery, as the runtime builds it.

        ``web`` defaults to an ``AsyncWebClient`` with the bot token, ``slack.api_url``
        and no retry handlers (the delivery job retries), on ``session`` when given (the
        runtime's aiohttp session: connections are reused). ``is_leader`` should be the
        monitor's ``lambda: monitor.is_leader`` so only the leader sends. ``client`` (the
        backend) turns on the diagnostics reply; ``settings.paging`` the paging senders.
        """
        from bot.alerts.senders import delivery_from_settings, slack_web

        web = web if web is not None else slack_web(settings.slack, session)
        if not settings.alerts.channel and not settings.alerts.routes:
            log.warning(
                "no alert channel (STARPOD_ALERT_CHANNEL): incidents are recorded, "
                "nothing is posted"
            )
        if holder is None:
            from bot.store.leader import default_holder

            holder = default_holder()
        delivery, targets = delivery_from_settings(
            settings.paging, db, web, clock=clock, holder=holder, is_leader=is_leader, client=client
        )
        return cls(
            db,
            policy=AlertPolicy.from_settings(settings.alerts),
            delivery=delivery,
            clock=clock,
            nudge=nudge,
            is_leader=is_leader,
            paging=targets,
        )

    def attach(self, monitor: HealthMonitor) -> HealthMonitor:
        """Wire into ``monitor``: its events (``on_event``) and its restarts
        (``with_restart_guard``); returns the monitor."""
        return monitor.on_event(self.handle_event).with_restart_guard(self.restart_guard)

    @property
    def is_leader(self) -> bool:
        """True when this replica should run the periodic work (no leadership: always)."""
        return self._is_leader is None or self._is_leader()

    @property
    def nudge(self) -> bool:
        """Whether a commit that added outbox rows wakes the delivery at once."""
        return self.notifier.nudge

    @nudge.setter
    def nudge(self, value: bool) -> None:
        self.notifier.nudge = value

    # -- dispatch: the monitor's events ------------------------------------------------------

    async def handle_event(self, session: AsyncSession | None, event: MonitorEvent) -> None:
        """Register with ``monitor.on_event``: runs inside the monitor's transaction.

        Everything it writes (incidents, outbox rows) commits with the status change that
        caused it, or not at all. Events only fire on the monitor's leader.
        """
        if session is None:
            if not self._warned_no_store:
                log.warning("alerts need the store: the monitor runs without one, no alerts")
                self._warned_no_store = True
            return
        kind = event.kind
        if kind == EventKind.STORM:
            covered = await self.maintenance.covered(session, event.stale_ids, event.at)
            if covered:
                # Instances in maintenance are neither storm members nor incidents.
                rest = tuple(i for i in event.stale_ids if i not in covered)
                if not rest:
                    self.inhibitor.storm(event.at, frozenset(event.stale_ids))
                    return
                event = dataclasses.replace(event, stale_ids=rest)
            await self.fleet.on_storm(session, event)
        elif kind == EventKind.BACKEND_UNREACHABLE:
            await self.fleet.on_backend_down(session, event)
        elif kind == EventKind.BACKEND_RECOVERED:
            await self.fleet.on_backend_up(session, event)
        elif event.instance_id is None:
            return
        elif event.is_status_change:
            if (event.to_status or "").lower() in PROBLEM_STATUSES:
                await self.incidents.on_problem(session, event)
            else:
                await self.incidents.on_healthy(session, event)
        elif kind in (EventKind.RESTART_ATTEMPTED, EventKind.RESTART_FAILED):
            await self.incidents.on_restart(session, event)
        elif kind == EventKind.RESTART_DEFERRED:
            await self.incidents.on_deferred(session, event)
        elif kind == EventKind.RESTART_BUDGET_EXHAUSTED:
            await self.incidents.on_exhausted(session, event)

    async def restart_guard(self, instance_id: str) -> bool:
        """For ``monitor.with_restart_guard``: False while a ``--no-restart`` mute or
        maintenance window holds the instance."""
        return await self.silences.restart_guard(
            instance_id
        ) and await self.maintenance.restart_guard(instance_id)

    # -- commands and buttons ----------------------------------------------------------------

    async def mute(
        self, instance_id: str, until: datetime, no_restart: bool, actor: str
    ) -> MuteResult:
        """Mute alerts for ``instance_id`` until ``until`` (and auto-restarts with
        ``no_restart``); see :meth:`bot.alerts.mutes.Silences.mute`."""
        return await self.silences.mute(instance_id, until, no_restart, actor)

    async def unmute(self, instance_id: str, actor: str) -> UnmuteResult:
        """End the mute of ``instance_id`` now; says so in the channel."""
        return await self.silences.unmute(instance_id, actor)

    async def open_incidents(self) -> list[IncidentView]:
        """Open and acknowledged incidents, oldest first (for ``/starpod status``)."""
        async with self._db.session() as session:
            return [IncidentView.from_row(i) for i in await q.unresolved_incidents(session)]

    async def get_incident(self, incident_id: str | int) -> IncidentView | None:
        """One incident by id (``12`` or ``"#12"``), or None."""
        parsed = _parse_incident_id(incident_id)
        if parsed is None:
            return None
        async with self._db.session() as session:
            row = await q.incident_by_id(session, parsed)
            return IncidentView.from_row(row) if row is not None else None

    async def acknowledge(self, incident_id: str | int, actor: str) -> AckResult:
        """Acknowledge an incident; idempotent (a second call says who already did)."""
        parsed = _parse_incident_id(incident_id)
        if parsed is None:
            return AckResult(None, "not_found")
        now = self._clock()
        return await self._db.run(
            lambda session: self.incidents.acknowledge(session, parsed, actor, now)
        )

    async def note_manual_restart(
        self, incident_id: str | int, actor: str, *, ok: bool, error: str | None = None
    ) -> None:
        """Say in the incident's thread that ``actor`` restarted the instance (or failed to)."""
        parsed = _parse_incident_id(incident_id)
        if parsed is None:
            return
        now = self._clock()
        await self._db.run(
            lambda session: self.incidents.note_manual_restart(
                session, parsed, actor, now, ok=ok, error=error
            )
        )

    async def reset_restart_budget(
        self, instance_id: str, actor: str, *, source: str = "slack"
    ) -> BudgetResetResult:
        """Give ``instance_id`` its auto-restart budget back (:mod:`bot.alerts.budget`)."""
        now = self._clock()
        return await self._db.run(
            lambda session: reset_budget(
                session,
                self.notifier,
                instance_id=instance_id,
                actor=actor,
                source=source,
                now=now,
            )
        )

    # -- periodic work -----------------------------------------------------------------------

    async def run_housekeeping(self) -> HousekeepingReport:
        """End expired mutes, escalate incidents left open too long, settle flapping and
        fleet incidents, forget delivered outbox rows after ``OUTBOX_KEEP``. Idempotent; the
        jobs call it every few seconds."""
        now = self._clock()
        report = HousekeepingReport()
        if not self.is_leader:
            return report
        report.mutes_ended = await self.expire_mutes(now=now)
        said = await self.announce_maintenance(now=now)
        report.maintenance_started = said.started
        report.maintenance_ended = [ended.window.id for ended in said.ended]
        report.escalated = await self._db.run(lambda s: self.escalation.overdue(s, now))
        report.resolved = await self._db.run(lambda s: self._settle(s, now))
        report.pruned = await self._db.run(
            lambda s: q.prune_outbox(s, before=now - OUTBOX_KEEP, batch=OUTBOX_PRUNE_BATCH)
        )
        return report

    async def announce_maintenance(self, *, now: datetime | None = None) -> AnnounceReport:
        """Announce the maintenance windows that started or ended; open the incidents of
        covered instances still unhealthy when a window ends (what maintenance left broken
        pages, unless another window, a mute or a storm keeps it quiet)."""
        at = now or self._clock()

        async def write(session: AsyncSession) -> AnnounceReport:
            report = await self.maintenance.announce(session, at)
            for ended in report.ended:
                for row in ended.unhealthy:
                    instance = Instance.model_validate(
                        {"id": row.id, "name": row.name, "region": row.region, "status": row.status}
                    )
                    event = MonitorEvent(
                        EventKind.STATUS_CHANGED,
                        at,
                        instance=instance,
                        instance_id=row.id,
                        from_status=row.status,
                        to_status=row.status,
                        detail=f"still {row.status} when maintenance #{ended.window.id} ended",
                    )
                    await self.incidents.on_problem(session, event)
            return report

        return await self._db.run(write)

    async def _maintenance_changed(self) -> None:
        # Planned or cancelled just now: say so at once rather than at the next
        # housekeeping. Only the leader writes incidents, so others leave it to it.
        if self.is_leader:
            await self.announce_maintenance()

    async def expire_mutes(self, *, now: datetime | None = None) -> list[str]:
        """End every mute whose time is up, each with a notice in the channel."""
        return await self.silences.expire(now=now)

    async def _settle(self, session: AsyncSession, now: datetime) -> list[int]:
        resolved = await self.incidents.settle(session, now)
        fleet_id = await self.fleet.settle(session, now)
        if fleet_id is not None:
            resolved.append(fleet_id)
        return resolved
