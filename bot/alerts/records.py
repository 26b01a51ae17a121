"""Plain values the alerts feature hands out: incident views and the results of commands.

They are frozen dataclasses built from rows (never the ORM objects themselves), so the
Block Kit builders stay pure and a caller can keep them after the session closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from bot.alerts.facts import IncidentFacts
from bot.store.alert_models import AlertIncident

KIND_WORDS: dict[str, str] = {
    "stale": "heartbeat stale",
    "error": "in error",
    "health_unknown": "health check failing",
    "restart_budget_exhausted": "auto-restart budget exhausted",
    "backend_unreachable": "backend unreachable",
}
"""What each incident kind means, in a few words (plain text)."""


@dataclass(frozen=True, slots=True)
class IncidentView:
    """A snapshot of one incident, as the builders and ``/starpod status`` see it."""

    id: int
    scope: str
    instance_id: str | None
    instance_name: str | None
    region: str | None
    kind: str
    state: str
    flapping: bool
    announced: bool
    detail: str
    opened_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_note: str | None = None
    escalated_at: datetime | None = None
    exhausted_at: datetime | None = None
    restart_attempts: int = 0
    recurrences: int = 0
    channel: str | None = None
    root_ts: str | None = None
    facts: IncidentFacts = field(default_factory=IncidentFacts)

    @classmethod
    def from_row(cls, row: AlertIncident) -> IncidentView:
        """Copy an incident row (its ``facts`` are read into :class:`IncidentFacts`)."""
        return cls(
            id=row.id,
            scope=row.scope,
            instance_id=row.instance_id,
            instance_name=row.instance_name,
            region=row.region,
            kind=row.kind,
            state=row.state,
            flapping=bool(row.flapping),
            announced=bool(row.announced),
            detail=row.detail or "",
            opened_at=row.opened_at,
            updated_at=row.updated_at,
            acknowledged_at=row.acknowledged_at,
            acknowledged_by=row.acknowledged_by,
            resolved_at=row.resolved_at,
            resolved_note=row.resolved_note,
            escalated_at=row.escalated_at,
            exhausted_at=row.exhausted_at,
            restart_attempts=row.restart_attempts or 0,
            recurrences=row.recurrences or 0,
            channel=row.channel,
            root_ts=row.root_ts,
            facts=IncidentFacts.of(row),
        )

    @property
    def is_fleet(self) -> bool:
        """True for the fleet-wide incident (storm, backend unreachable)."""
        return self.scope == "fleet"

    @property
    def budget_spent(self) -> bool:
        """True when the instance's auto-restart budget ran out during this incident (and
        was not given back since)."""
        return self.exhausted_at is not None

    @property
    def short_id(self) -> str:
        """The first 8 characters of the instance id ("" for the fleet)."""
        return (self.instance_id or "")[:8]

    @property
    def label(self) -> str:
        """``pod-7 (a1b2c3d4)``, ``a1b2c3d4`` when unnamed, ``fleet`` for the fleet."""
        if self.is_fleet:
            return "fleet"
        if self.instance_name:
            return f"{self.instance_name} ({self.short_id})"
        return self.short_id

    @property
    def what(self) -> str:
        """What kind of trouble, in words (``heartbeat stale``, ``storm: 12 stale`` …)."""
        if self.is_fleet and self.kind == "stale":
            return f"storm: {len(self.facts.members)} instances stale"
        return KIND_WORDS.get(self.kind, self.kind)

    @property
    def summary(self) -> str:
        """One plain-text line for ``/starpod status``: ``#12 pod-7 (a1b2c3d4): heartbeat
        stale, open since 14:02 UTC``."""
        state = self.state
        if self.state == "acknowledged" and self.acknowledged_by:
            state = f"acknowledged by {self.acknowledged_by}"
        flap = ", flapping" if self.flapping else ""
        since = self.opened_at.strftime("%H:%M UTC")
        return f"#{self.id} {self.label}: {self.what}{flap}, {state} since {since}"


AckOutcome = Literal["acknowledged", "already", "resolved", "not_found"]


@dataclass(frozen=True, slots=True)
class AckResult:
    """What :meth:`AlertService.acknowledge` did.

    ``already``: someone (``by``, at ``at``) had acknowledged it; ``resolved``: nothing to
    acknowledge any more; ``not_found``: no such incident.
    """

    incident_id: int | None
    outcome: AckOutcome
    by: str | None = None
    at: datetime | None = None
    label: str = ""

    @property
    def ok(self) -> bool:
        """True when this call acknowledged the incident."""
        return self.outcome == "acknowledged"


@dataclass(frozen=True, slots=True)
class MuteResult:
    """A mute now in force; ``replaced`` when it replaced an earlier one."""

    instance_id: str
    instance_name: str | None
    until: datetime
    no_restart: bool
    replaced: bool


@dataclass(frozen=True, slots=True)
class MuteInForce:
    """A mute in force (the App Home lists them)."""

    instance_id: str
    instance_name: str | None
    until: datetime
    no_restart: bool
    actor: str | None


@dataclass(frozen=True, slots=True)
class UnmuteResult:
    """An unmute; ``was_muted`` False when there was no mute in force."""

    instance_id: str
    instance_name: str | None
    was_muted: bool


@dataclass(frozen=True, slots=True)
class BudgetResetResult:
    """A restart budget given back at ``at``; ``incident_id``: the open incident told."""

    instance_id: str
    at: datetime
    incident_id: int | None = None
