"""Typed incident facts: what an incident's root message shows, kept on the incident row.

They are stored in the ``alert_incidents.facts`` JSON column, as they always were: a
row written before these models existed loads unchanged (every field is optional, keys
this code does not know are ignored), and :meth:`IncidentFacts.dump` writes the same
keys back, leaving out the ones still at their default so an instance incident carries
no empty fleet fields.

Instance incidents use ``status``, ``action``, ``health`` and ``heartbeat_age_secs``
(with ``last_heartbeat`` and ``sampled_at``, so every edit can bring the age and the
health up to date: :mod:`bot.alerts.live`);
the fleet incident uses ``action``, ``members`` (instance ids), ``names`` (id → name),
``recovered``, ``backend_down`` and ``running``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from bot.backend.models import HealthInfo
    from bot.store.alert_models import AlertIncident


class HealthSnapshot(BaseModel):
    """The instance's health when the incident last heard of it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    cpu_percent: float | None = None
    memory_mb: float | None = None
    disk_mb: float | None = None
    uptime_secs: float | None = None


class IncidentFacts(BaseModel):
    """The facts of one incident (instance or fleet); immutable, changed with :meth:`with_`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    # instance incidents
    status: str | None = None
    health: HealthSnapshot | None = None
    heartbeat_age_secs: float | None = None
    # The instance's last heartbeat and when the health above was read (by the monitor).
    last_heartbeat: datetime | None = None
    sampled_at: datetime | None = None
    # both: what the bot did about it, in words
    action: str | None = None
    # the user id of the person who took ``action`` (None: the bot did)
    action_by: str | None = None
    # the fleet incident
    members: list[str] = []
    names: dict[str, str] = {}
    recovered: int = 0
    backend_down: bool = False
    running: int | None = None

    @classmethod
    def load(cls, raw: dict[str, Any] | None) -> IncidentFacts:
        """Facts from the stored JSON (``None`` or ``{}``: no facts yet)."""
        return cls.model_validate(raw or {})

    @classmethod
    def of(cls, incident: AlertIncident) -> IncidentFacts:
        """The facts of an incident row."""
        return cls.load(incident.facts)

    def dump(self) -> dict[str, Any]:
        """The JSON to store: every field that differs from its default."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def with_(self, **changes: Any) -> IncidentFacts:
        """A copy with ``changes`` applied (validated, like a load)."""
        return self.model_validate({**self.model_dump(), **changes})


def update_facts(incident: AlertIncident, **changes: Any) -> IncidentFacts:
    """Apply ``changes`` to the facts stored on ``incident``; returns the new facts.

    The column gets a new dict: SQLAlchemy does not see changes made inside a JSON value.
    A new ``action`` without ``action_by`` was taken by the bot: the previous actor goes.
    """
    if "action" in changes:
        changes.setdefault("action_by", None)
    facts = IncidentFacts.of(incident).with_(**changes)
    incident.facts = facts.dump()
    return facts


def health_facts(health: HealthInfo | None, at: datetime) -> dict[str, Any]:
    """The health fields for :func:`update_facts` (none when the sweep had no health)."""
    if health is None:
        return {}
    return {
        "health": HealthSnapshot(
            cpu_percent=health.cpu_percent,
            memory_mb=health.memory_mb,
            disk_mb=health.disk_mb,
            uptime_secs=health.uptime_secs,
        ),
        "heartbeat_age_secs": round(health.heartbeat_age(at), 1),
        "last_heartbeat": health.last_heartbeat,
        "sampled_at": at,
    }
