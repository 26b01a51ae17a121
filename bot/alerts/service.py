"""AlertService: turns monitor events into incidents and outbox rows; mutes; acknowledgements.

How incidents behave
--------------------
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
  has been steady (no change for a whole window, and healthy) — see :meth:`run_housekeeping`.
- **Resolve**: the instance leaves the problem status (recovered, or paused/stopped by
  someone). A recovery reply is posted only for an announced incident.
- **Fleet**: a storm (``storm`` event) or an unreachable backend opens the one fleet
  incident instead; the stale instances of that sweep get no incident of their own (and
  the monitor restarts none of them in a storm sweep). While it is open, instances that
  go stale are covered by it too, quietly. Its members are recounted from the store in
  one query (every housekeeping run, and when the backend answers again): instances in a
  problem status without an incident of their own. It resolves when the backend answers
  and no member is left; its restarts and exhausted budgets are counted, and the first
  exhausted budget re-mentions the on-call group once.
- **Mute**: a muted instance's incidents are recorded but not announced (``announced``
  False); edits of an already-announced root still happen (they notify nobody), thread
  replies do not. When the mute ends, the channel is told, and an incident still open
  that was never announced is announced then.
- **Escalate**: the budget running out re-mentions the on-call group in the thread at
  once; an incident still open (not acknowledged) after ``escalate_after_mins`` is
  re-mentioned once by :meth:`run_housekeeping`.

Every message is an outbox row written in the caller's transaction; see
:mod:`bot.alerts.outbox` and :mod:`bot.alerts.delivery`.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts import blocks
from bot.alerts import queries as q
from bot.alerts.delivery import OutboxDelivery
from bot.alerts.outbox import (
    NOTICE,
    REPLY,
    ROOT,
    enqueue,
    incident_stream,
    mute_stream,
    refresh_root,
)
from bot.alerts.records import KIND_WORDS, AckResult, IncidentView, MuteResult, UnmuteResult
from bot.blockkit.limits import Reply
from bot.blockkit.mrkdwn import duration, escape, user
from bot.monitor.events import EventKind, MonitorEvent
from bot.store.alert_models import FLEET_KEY, AlertIncident, AlertMute

if TYPE_CHECKING:
    import aiohttp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.backend.models import HealthInfo
    from bot.config import AlertSettings, Settings
    from bot.monitor.monitor import HealthMonitor
    from bot.store.database import Database

log = logging.getLogger(__name__)

PROBLEM_STATUSES = frozenset({"error", "unknown"})
GUARD_CACHE_SECS = 1.0
# Finished outbox rows (sent, superseded, failed: all logged when it happened) are kept a
# week for debugging, then deleted a batch per housekeeping run; pending ones never are.
OUTBOX_KEEP = timedelta(days=7)
OUTBOX_PRUNE_BATCH = 1000
_NUDGE_KEY = "starpod_alerts_nudge"
_OPEN_KEYS = "starpod_alerts_open_keys"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """The alert settings the service works with (see :class:`bot.config.AlertSettings`)."""

    channel: str | None = None
    mention: str | None = None
    routes: dict[str, str] = field(default_factory=dict)
    escalate_after: timedelta = timedelta(minutes=30)
    flap_changes: int = 4
    flap_window: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: AlertSettings) -> AlertPolicy:
        """Build from the typed settings."""
        return cls(
            channel=settings.channel or None,
            mention=settings.mention or None,
            routes=dict(settings.routes),
            escalate_after=timedelta(minutes=settings.escalate_after_mins),
            flap_changes=settings.flap_changes,
            flap_window=timedelta(minutes=settings.flap_window_mins),
        )

    def channel_for(self, instance_name: str | None) -> str | None:
        """The channel of an instance: the first route whose glob matches its name."""
        if instance_name:
            for pattern, channel in self.routes.items():
                if fnmatch.fnmatchcase(instance_name, pattern):
                    return channel
        return self.channel


@dataclass(slots=True)
class HousekeepingReport:
    """What one :meth:`AlertService.run_housekeeping` did."""

    escalated: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    mutes_ended: list[str] = field(default_factory=list)
    pruned: int = 0


def _health_facts(health: HealthInfo | None, at: datetime) -> dict[str, Any]:
    if health is None:
        return {}
    return {
        "health": {
            "cpu_percent": health.cpu_percent,
            "memory_mb": health.memory_mb,
            "disk_mb": health.disk_mb,
            "uptime_secs": health.uptime_secs,
        },
        "heartbeat_age_secs": round(health.heartbeat_age(at), 1),
    }


def _incident_kind(event: MonitorEvent) -> str:
    if event.kind == EventKind.STALE:
        return "stale"
    if event.kind == EventKind.HEALTH_UNKNOWN or (event.to_status or "").lower() == "unknown":
        return "health_unknown"
    return "error"


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
    ) -> None:
        self._db = db
        self._is_leader = is_leader
        self.policy = policy or AlertPolicy()
        self.delivery = delivery
        self._clock = clock
        self._nudge = nudge
        # The stale ids of the storm announced in the sweep at ``_storm_at``: their own
        # stale events (dispatched right after, in the same transaction) are folded in.
        self._storm_at: datetime | None = None
        self._storm_ids: frozenset[str] = frozenset()
        self._guard_cache: dict[str, datetime] | None = None
        self._guard_loaded_at: datetime | None = None
        self._warned_no_store = False

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
    ) -> AlertService:
        """The service with its delivery, as the runtime builds it.

        ``web`` defaults to an ``AsyncWebClient`` with the bot token, ``slack.api_url``
        and no retry handlers (the delivery job retries), on ``session`` when given (the
        runtime's aiohttp session: connections are reused). ``is_leader`` should be the
        monitor's ``lambda: monitor.is_leader`` so only the leader sends.
        """
        if web is None:
            from slack_sdk.web.async_client import AsyncWebClient

            token = settings.slack.bot_token
            web = AsyncWebClient(
                token=token.get_secret_value() if token else None,
                base_url=settings.slack.api_url,
                timeout=15,
                session=session,
                retry_handlers=[],
            )
        if not settings.alerts.channel and not settings.alerts.routes:
            log.warning(
                "no alert channel (STARPOD_ALERT_CHANNEL): incidents are recorded, "
                "nothing is posted"
            )
        if holder is None:
            from bot.store.leader import default_holder

            holder = default_holder()
        delivery = OutboxDelivery(db, web, clock=clock, holder=holder, is_leader=is_leader)
        return cls(
            db,
            policy=AlertPolicy.from_settings(settings.alerts),
            delivery=delivery,
            clock=clock,
            nudge=nudge,
            is_leader=is_leader,
        )

    def attach(self, monitor: HealthMonitor) -> HealthMonitor:
        """Wire into ``monitor``: its events (``on_event``) and its restarts
        (``with_restart_guard``); returns the monitor."""
        return monitor.on_event(self.handle_event).with_restart_guard(self.restart_guard)

    @property
    def is_leader(self) -> bool:
        """True when this replica should run the periodic work (no leadership: always)."""
        return self._is_leader is None or self._is_leader()

    # -- plumbing ----------------------------------------------------------------------------

    def _nudge_after_commit(self, session: AsyncSession) -> None:
        """Wake the delivery once ``session``'s transaction commits (not before: a nudge
        before the commit would find nothing to send)."""
        if not self._nudge or self.delivery is None or session.info.get(_NUDGE_KEY):
            return
        session.info[_NUDGE_KEY] = True
        delivery = self.delivery

        def after_commit(_session: object) -> None:
            delivery.nudge()

        sa_event.listen(session.sync_session, "after_commit", after_commit, once=True)

    def _root(self, incident: AlertIncident) -> Reply:
        return blocks.root_message(IncidentView.from_row(incident), mention=self.policy.mention)

    async def _post_root(
        self, session: AsyncSession, incident: AlertIncident, now: datetime
    ) -> None:
        if incident.channel is None:
            return
        incident.announced = True
        await session.flush()
        await enqueue(
            session,
            kind=ROOT,
            channel=incident.channel,
            message=self._root(incident),
            now=now,
            stream=incident_stream(incident.id),
            incident_id=incident.id,
        )
        self._nudge_after_commit(session)

    async def _refresh(self, session: AsyncSession, incident: AlertIncident, now: datetime) -> None:
        if not incident.announced or incident.channel is None:
            return
        await session.flush()
        await refresh_root(
            session,
            incident_id=incident.id,
            channel=incident.channel,
            message=self._root(incident),
            now=now,
        )
        self._nudge_after_commit(session)

    async def _reply(
        self,
        session: AsyncSession,
        incident: AlertIncident,
        message: Reply,
        now: datetime,
        *,
        broadcast: bool = False,
    ) -> None:
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

    async def _follow_up(
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
        await self._refresh(session, incident, at)
        if message is not None:
            await self._reply(session, incident, message, at, broadcast=broadcast)

    async def _notice(
        self, session: AsyncSession, channel: str | None, message: Reply, now: datetime, stream: str
    ) -> None:
        if channel is None:
            return
        await enqueue(
            session, kind=NOTICE, channel=channel, message=message, now=now, stream=stream
        )
        self._nudge_after_commit(session)

    @staticmethod
    def _set_facts(incident: AlertIncident, **values: Any) -> None:
        # A new dict: SQLAlchemy does not see changes made inside a JSON value.
        incident.facts = {**(incident.facts or {}), **values}

    @staticmethod
    def _resolve(incident: AlertIncident, at: datetime, note: str | None) -> None:
        incident.state = "resolved"
        incident.resolved_at = at
        incident.resolved_note = note
        incident.open_key = None
        incident.updated_at = at

    def _new_incident(
        self,
        *,
        scope: str,
        kind: str,
        at: datetime,
        instance_id: str | None = None,
        name: str | None = None,
        region: str | None = None,
        detail: str = "",
    ) -> AlertIncident:
        return AlertIncident(
            scope=scope,
            instance_id=instance_id,
            instance_name=name,
            region=region,
            kind=kind,
            state="open",
            open_key=instance_id if scope == "instance" else FLEET_KEY,
            flapping=False,
            announced=False,
            detail=detail,
            facts={},
            opened_at=at,
            updated_at=at,
            restart_attempts=0,
            recurrences=0,
            channel=self.policy.channel_for(name) if scope == "instance" else self.policy.channel,
        )

    async def _open_keys(self, session: AsyncSession) -> set[str]:
        """Keys that may have an open incident in this transaction (a superset: loaded once
        per session, added to as incidents open, never removed from).

        A sweep dispatches thousands of events in one transaction; most are about
        instances without an incident, and this answers those without a query.
        """
        keys = session.info.get(_OPEN_KEYS)
        if keys is None:
            keys = set(await q.all_open_keys(session))
            session.info[_OPEN_KEYS] = keys
        return keys

    @staticmethod
    def _remember_open(session: AsyncSession, incident: AlertIncident) -> None:
        keys = session.info.get(_OPEN_KEYS)
        if keys is not None and incident.open_key is not None:
            keys.add(incident.open_key)

    async def _open_incident(self, session: AsyncSession, instance_id: str) -> AlertIncident | None:
        if instance_id not in await self._open_keys(session):
            return None
        return await q.open_incident(session, instance_id)

    async def _open_fleet_id(self, session: AsyncSession) -> int | None:
        if FLEET_KEY not in await self._open_keys(session):
            return None
        return await q.open_fleet_incident_id(session)

    async def _muted(self, session: AsyncSession, instance_id: str, at: datetime) -> bool:
        return await q.active_mute(session, instance_id, now=at) is not None

    # -- the monitor's events ----------------------------------------------------------------

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
            await self._on_storm(session, event)
        elif kind == EventKind.BACKEND_UNREACHABLE:
            await self._on_backend_down(session, event)
        elif kind == EventKind.BACKEND_RECOVERED:
            await self._on_backend_up(session, event)
        elif event.instance_id is None:
            return
        elif event.is_status_change:
            if (event.to_status or "").lower() in PROBLEM_STATUSES:
                await self._on_problem(session, event)
            else:
                await self._on_healthy(session, event)
        elif kind in (EventKind.RESTART_ATTEMPTED, EventKind.RESTART_FAILED):
            await self._on_restart(session, event)
        elif kind == EventKind.RESTART_DEFERRED:
            await self._on_deferred(session, event)
        elif kind == EventKind.RESTART_BUDGET_EXHAUSTED:
            await self._on_exhausted(session, event)

    async def _recount_fleet(
        self, session: AsyncSession, fleet: AlertIncident, at: datetime, *, quiet: bool = False
    ) -> None:
        """Recompute the fleet incident's members from the store; resolve it when none are
        left and the backend answers.

        Members are the instances in a problem status without an open incident of their
        own: whatever went stale while the fleet incident was open is covered by it, and
        whatever recovered has left it. Recomputing in one query (housekeeping, backend
        recovery) instead of writing per event keeps a 10,000-instance storm cheap.
        """
        facts = fleet.facts or {}
        before: list[str] = list(facts.get("members", []))
        problem = await q.problem_instance_ids(session)
        own = await q.open_keys_among(session, problem)
        now_members = [i for i in problem if i not in own]
        if set(now_members) != set(before):
            kept = [m for m in before if m in set(now_members)]
            joined = [m for m in now_members if m not in set(before)]
            names = {k: v for k, v in dict(facts.get("names", {})).items() if k in set(kept)}
            names.update(await q.instance_names(session, joined))
            recovered = int(facts.get("recovered", 0)) + len(before) - len(kept)
            self._set_facts(fleet, members=kept + joined, names=names, recovered=recovered)
            fleet.updated_at = at
            await session.flush()
            if not quiet:
                await self._refresh(session, fleet, at)
        await self._maybe_resolve_fleet(session, fleet, at)

    async def _on_problem(self, session: AsyncSession, event: MonitorEvent) -> None:
        instance_id = event.instance_id
        assert instance_id is not None
        at = event.at
        if self._storm_at == at and instance_id in self._storm_ids:
            return  # part of the storm announced in this very sweep
        incident = await self._open_incident(session, instance_id)
        if (
            incident is None
            and event.kind == EventKind.STALE
            and await self._open_fleet_id(session) is not None
        ):
            # A storm (or the backend outage) is on: this instance is covered by it; the
            # fleet message lists it after the next recount (housekeeping).
            return
        inst = event.instance
        muted = await self._muted(session, instance_id, at)
        changes = await q.changes_since(session, instance_id, since=at - self.policy.flap_window)
        flapping_now = changes > self.policy.flap_changes
        kind = _incident_kind(event)
        created = reopened = False
        if incident is None:
            incident = await q.recently_resolved(
                session, instance_id, since=at - self.policy.flap_window
            )
            if incident is not None:
                reopened = True
                incident.state = "acknowledged" if incident.acknowledged_by else "open"
                incident.open_key = instance_id
                incident.resolved_at = None
                incident.resolved_note = None
                incident.recurrences = (incident.recurrences or 0) + 1
                self._remember_open(session, incident)
            else:
                created = True
                incident = self._new_incident(
                    scope="instance",
                    kind=kind,
                    at=at,
                    instance_id=instance_id,
                    name=inst.name if inst is not None else None,
                    region=inst.region if inst is not None else None,
                    detail=event.detail,
                )
                session.add(incident)
                self._remember_open(session, incident)
        else:
            incident.recurrences = (incident.recurrences or 0) + 1
        previous_kind = incident.kind
        incident.kind = kind
        incident.detail = event.detail or incident.detail
        incident.updated_at = at
        action = (
            "auto-restart due" if kind == "stale" else "none: only stale instances are restarted"
        )
        if kind == "stale" and await self._no_restart(session, instance_id, at):
            action = "none: muted with --no-restart"
        self._set_facts(
            incident, status=event.to_status, action=action, **_health_facts(event.health, at)
        )
        became_flapping = flapping_now and not incident.flapping
        if became_flapping:
            incident.flapping = True
        await session.flush()

        if muted:
            if incident.announced:
                await self._refresh(session, incident, at)
            return
        if created or not incident.announced:
            await self._post_root(session, incident, at)
            return
        message: Reply | None = None
        if became_flapping:
            window = duration(self.policy.flap_window.total_seconds())
            message = blocks.thread_note(
                f"〰️ Flapping: {changes} status changes in {window}. This stays one "
                f"incident and goes quiet until the instance has been steady for {window}."
            )
        elif not incident.flapping:
            again = "again" if reopened or previous_kind == kind else "now"
            message = blocks.thread_note(
                f"⚠️ {escape(KIND_WORDS.get(kind, kind))} {again}: {escape(event.detail)}"
            )
        await self._follow_up(session, incident, at, message)

    async def _no_restart(self, session: AsyncSession, instance_id: str, at: datetime) -> bool:
        mute = await q.active_mute(session, instance_id, now=at)
        return mute is not None and bool(mute.no_restart)

    async def _on_healthy(self, session: AsyncSession, event: MonitorEvent) -> None:
        instance_id = event.instance_id
        assert instance_id is not None
        at = event.at
        incident = await self._open_incident(session, instance_id)
        if incident is None:
            return  # a fleet member leaves the fleet incident at its next recount
        incident.updated_at = at
        self._set_facts(incident, status=event.to_status, **_health_facts(event.health, at))
        if incident.flapping:
            # Flapping incidents resolve only once steady (housekeeping), quietly meanwhile.
            await self._refresh(session, incident, at)
            return
        note = event.detail or f"now {event.to_status}"
        self._resolve(incident, at, note)
        await session.flush()
        message: Reply | None = None
        if not await self._muted(session, instance_id, at):
            after = (at - incident.opened_at).total_seconds()
            message = blocks.recovered_note(IncidentView.from_row(incident), note, after_secs=after)
        await self._follow_up(session, incident, at, message)

    async def _maybe_resolve_fleet(
        self, session: AsyncSession, fleet: AlertIncident, at: datetime
    ) -> None:
        facts = fleet.facts or {}
        if facts.get("members") or facts.get("backend_down"):
            return
        recovered = int(facts.get("recovered", 0))
        note = f"all {recovered} stale instances recovered" if recovered else "the backend answers"
        self._resolve(fleet, at, note)
        await session.flush()
        after = (at - fleet.opened_at).total_seconds()
        await self._follow_up(
            session,
            fleet,
            at,
            blocks.thread_note(f"✅ Resolved after {duration(after)}: {escape(note)}"),
        )

    async def _on_restart(self, session: AsyncSession, event: MonitorEvent) -> None:
        instance_id = event.instance_id
        assert instance_id is not None
        at = event.at
        ok = event.kind == EventKind.RESTART_ATTEMPTED
        incident = await self._open_incident(session, instance_id)
        if incident is None:
            # A fleet member (restarted once the storm is over): counted, shown at the
            # fleet message's next edit; one SQL update, the members list stays untouched.
            await q.count_fleet_restart(session)
            return
        incident.restart_attempts = (incident.restart_attempts or 0) + 1
        incident.updated_at = at
        self._set_facts(incident, action=event.detail)
        await session.flush()
        quiet = incident.flapping or await self._muted(session, instance_id, at)
        await self._follow_up(
            session, incident, at, None if quiet else blocks.restart_note(event.detail, ok=ok)
        )

    async def _on_deferred(self, session: AsyncSession, event: MonitorEvent) -> None:
        assert event.instance_id is not None
        incident = await self._open_incident(session, event.instance_id)
        if incident is None:
            return
        self._set_facts(incident, action=event.detail)
        await self._refresh(session, incident, event.at)

    async def _on_exhausted(self, session: AsyncSession, event: MonitorEvent) -> None:
        instance_id = event.instance_id
        assert instance_id is not None
        at = event.at
        muted = await self._muted(session, instance_id, at)
        incident = await self._open_incident(session, instance_id)
        if incident is None:
            fleet_id = await self._open_fleet_id(session)
            if fleet_id is not None:
                # A fleet member: the on-call group hears it once per fleet incident.
                fleet = await q.incident_by_id(session, fleet_id)
                if fleet is not None and fleet.exhausted_at is None:
                    fleet.exhausted_at = at
                    self._set_facts(fleet, action="auto-restart gave up on some instances")
                    label = event.instance.label if event.instance is not None else instance_id
                    message = blocks.escalation_note(
                        self.policy.mention,
                        f"Auto-restart gave up on {escape(label)} (and maybe more): "
                        f"{escape(event.detail)}",
                    )
                    await self._follow_up(session, fleet, at, message, broadcast=True)
                return
            inst = event.instance
            incident = self._new_incident(
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
            self._remember_open(session, incident)
            self._set_facts(
                incident, action=_exhausted(event.detail), **_health_facts(event.health, at)
            )
            await session.flush()
            if not muted:
                await self._post_root(session, incident, at)
            return
        incident.exhausted_at = at
        incident.updated_at = at
        self._set_facts(incident, action=_exhausted(event.detail))
        await session.flush()
        escalation = blocks.escalation_note(
            self.policy.mention, f"Auto-restart gave up: {escape(event.detail)}"
        )
        await self._follow_up(session, incident, at, None if muted else escalation, broadcast=True)

    async def _on_storm(self, session: AsyncSession, event: MonitorEvent) -> None:
        at = event.at
        ids = list(event.stale_ids)
        self._storm_at, self._storm_ids = at, frozenset(ids)
        own = await q.open_keys_among(session, ids)
        members = [i for i in ids if i not in own]
        fleet = await q.open_fleet_incident(session)
        if fleet is not None:
            self._set_facts(fleet, action="no per-instance restarts during the storm")
            fleet.detail = event.detail
            await self._recount_fleet(session, fleet, at, quiet=True)
            await self._follow_up(
                session, fleet, at, blocks.thread_note(f"🌩️ Storm: {escape(event.detail)}")
            )
            return
        fleet = self._new_incident(scope="fleet", kind="stale", at=at, detail=event.detail)
        fleet.facts = {
            "members": members,
            "names": await q.instance_names(session, members),
            "action": "no per-instance restarts during the storm",
        }
        session.add(fleet)
        self._remember_open(session, fleet)
        await session.flush()
        await self._post_root(session, fleet, at)

    async def _on_backend_down(self, session: AsyncSession, event: MonitorEvent) -> None:
        at = event.at
        fleet = await q.open_fleet_incident(session)
        if fleet is not None:
            self._set_facts(fleet, backend_down=True)
            fleet.updated_at = at
            await session.flush()
            await self._follow_up(
                session, fleet, at, blocks.thread_note(f"🚨 {escape(event.detail)}")
            )
            return
        fleet = self._new_incident(
            scope="fleet", kind="backend_unreachable", at=at, detail=event.detail
        )
        fleet.facts = {
            "members": [],
            "backend_down": True,
            "action": "sweeps continue; nothing is restarted while the backend is unreachable",
        }
        session.add(fleet)
        self._remember_open(session, fleet)
        await session.flush()
        await self._post_root(session, fleet, at)

    async def _on_backend_up(self, session: AsyncSession, event: MonitorEvent) -> None:
        at = event.at
        fleet = await q.open_fleet_incident(session)
        if fleet is None:
            return
        self._set_facts(fleet, backend_down=False)
        fleet.updated_at = at
        await self._recount_fleet(session, fleet, at, quiet=True)
        if fleet.state != "resolved":
            members = (fleet.facts or {}).get("members", [])
            await self._follow_up(
                session,
                fleet,
                at,
                blocks.thread_note(
                    f"🟢 {escape(event.detail)}; {len(members)} instances are still stale."
                ),
            )

    # -- restart guard -----------------------------------------------------------------------

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

    # -- commands and buttons ----------------------------------------------------------------

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
                await self._reply(
                    session,
                    incident,
                    blocks.mute_started_notice(
                        _label(instance_id, name), until, actor=actor, no_restart=no_restart
                    ),
                    now,
                )
            return MuteResult(instance_id, name, until, no_restart, replaced)

        result = await self._db.run(write)
        self._forget_guard()
        return result

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
            await self._mute_ended(
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

    async def _mute_ended(
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
        row = await q.instance_row(session, instance_id)
        incident = await q.open_incident(session, instance_id)
        announce = incident is not None and not incident.announced and incident.channel is not None
        await self._notice(
            session,
            self.policy.channel_for(name),
            blocks.mute_ended_notice(
                _label(instance_id, name),
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
            await self._post_root(session, incident, now)

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

        async def write(session: AsyncSession) -> AckResult:
            incident = await q.incident_by_id(session, parsed)
            if incident is None:
                return AckResult(parsed, "not_found")
            label = IncidentView.from_row(incident).label
            if incident.state == "resolved":
                return AckResult(parsed, "resolved", label=label)
            if incident.state == "acknowledged":
                return AckResult(
                    parsed,
                    "already",
                    by=incident.acknowledged_by,
                    at=incident.acknowledged_at,
                    label=label,
                )
            incident.state = "acknowledged"
            incident.acknowledged_by = actor
            incident.acknowledged_at = now
            incident.updated_at = now
            await self._refresh(session, incident, now)
            return AckResult(parsed, "acknowledged", by=actor, at=now, label=label)

        return await self._db.run(write)

    async def note_manual_restart(
        self, incident_id: str | int, actor: str, *, ok: bool, error: str | None = None
    ) -> None:
        """Say in the incident's thread that ``actor`` restarted the instance (or failed to)."""
        parsed = _parse_incident_id(incident_id)
        if parsed is None:
            return
        now = self._clock()

        async def write(session: AsyncSession) -> None:
            incident = await q.incident_by_id(session, parsed)
            if incident is None:
                return
            if ok:
                text = f"🔄 {user(actor)} restarted it by hand."
                self._set_facts(incident, action=f"restarted by hand by {actor}")
            else:
                text = f"❌ {user(actor)} tried to restart it: {escape(error or 'failed')}"
            incident.updated_at = now
            await self._follow_up(session, incident, now, blocks.thread_note(text))

        await self._db.run(write)

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
        report.escalated = await self._db.run(lambda s: self._escalate(s, now))
        report.resolved = await self._db.run(lambda s: self._settle(s, now))
        report.pruned = await self._db.run(
            lambda s: q.prune_outbox(s, before=now - OUTBOX_KEEP, batch=OUTBOX_PRUNE_BATCH)
        )
        return report

    async def expire_mutes(self, *, now: datetime | None = None) -> list[str]:
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
                await self._mute_ended(
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

    async def _escalate(self, session: AsyncSession, now: datetime) -> list[int]:
        escalated: list[int] = []
        for incident in await q.due_for_escalation(
            session, opened_before=now - self.policy.escalate_after
        ):
            incident.escalated_at = now
            if incident.instance_id and await self._muted(session, incident.instance_id, now):
                continue
            open_for = duration((now - incident.opened_at).total_seconds())
            await self._reply(
                session,
                incident,
                blocks.escalation_note(
                    self.policy.mention,
                    f"Incident #{incident.id} is still open after {open_for} and nobody "
                    "has acknowledged it.",
                ),
                now,
                broadcast=True,
            )
            escalated.append(incident.id)
        return escalated

    async def _settle(self, session: AsyncSession, now: datetime) -> list[int]:
        resolved: list[int] = []
        window = self.policy.flap_window
        for incident in await q.flapping_incidents(session):
            if incident.instance_id is None:
                continue
            if await q.changes_since(session, incident.instance_id, since=now - window) > 0:
                continue
            row = await q.instance_row(session, incident.instance_id)
            if row is None or row.status.lower() in PROBLEM_STATUSES:
                continue
            note = f"steady for {duration(window.total_seconds())}"
            self._resolve(incident, now, note)
            await session.flush()
            quiet = await self._muted(session, incident.instance_id, now)
            message = blocks.thread_note(f"✅ Stopped flapping: {note}.")
            await self._follow_up(session, incident, now, None if quiet else message)
            resolved.append(incident.id)
        fleet = await q.open_fleet_incident(session)
        if fleet is not None:
            await self._recount_fleet(session, fleet, now)
            if fleet.state == "resolved":
                resolved.append(fleet.id)
        return resolved


def _exhausted(detail: str) -> str:
    return f"auto-restart budget exhausted: {detail}" if detail else "auto-restart budget exhausted"


def _label(instance_id: str, name: str | None) -> str:
    return f"{name} ({instance_id[:8]})" if name else instance_id[:8]
