"""Tables of the alerts feature: incidents, the Slack outbox, and mutes.

``alert_incidents``
    One row per incident (an instance's, or one fleet-wide). ``open_key`` is the
    instance id (``"*fleet*"`` for the fleet incident) while the incident is open or
    acknowledged and NULL once resolved; its unique constraint is what guarantees at
    most one open incident per instance, on both dialects (NULLs never collide).
``alert_outbox``
    Every message the alerts feature wants to send or edit, written in the same
    transaction as the change that causes it, then delivered in ``id`` order per
    ``stream`` by :mod:`bot.alerts.delivery`. ``destination`` says where it goes: Slack
    (one stream per incident), PagerDuty's Events API or the outgoing webhook (one
    stream per incident and destination, so a paging outage never holds Slack back).
``alert_mutes``
    Mutes, kept after they end (``ended_at``) so ``/starpod audit`` and the expiry
    notice can say who muted what and for how long.

No foreign key points at ``instances``: an incident is the history of what the bot
said, and must outlive a manual clean-up of instance rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.base import Base, UtcDateTime
from bot.store.models import BigId

INCIDENT_SCOPES = ("instance", "fleet")
INCIDENT_KINDS = (
    "stale",
    "error",
    "health_unknown",
    "backend_unreachable",
    "restart_budget_exhausted",
)
INCIDENT_STATES = ("open", "acknowledged", "resolved")
OUTBOX_KINDS = ("root", "reply", "update", "notice", "diagnostics", "event")
OUTBOX_DESTINATIONS = ("slack", "pagerduty", "webhook")
PAGED_STATES = ("triggered", "acknowledged", "resolved")
OUTBOX_STATES = ("pending", "sent", "failed", "superseded")

FLEET_KEY = "*fleet*"
"""``open_key`` of the open fleet-wide incident (no instance id can contain ``*``)."""


class AlertIncident(Base):
    """One incident: what happened, its state, and where its Slack message lives."""

    __tablename__ = "alert_incidents"
    __table_args__ = (
        Index(None, "instance_id", "resolved_at"),
        Index(None, "state", "opened_at"),
        CheckConstraint(f"scope IN {INCIDENT_SCOPES!r}", name="scope"),
        CheckConstraint(f"kind IN {INCIDENT_KINDS!r}", name="kind"),
        CheckConstraint(f"state IN {INCIDENT_STATES!r}", name="state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16))
    # None for the fleet incident.
    instance_id: Mapped[str | None] = mapped_column(String(128))
    instance_name: Mapped[str | None] = mapped_column(String(255))
    region: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    # Set while open or acknowledged, NULL once resolved: one open incident per key.
    open_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    flapping: Mapped[bool] = mapped_column(Boolean, default=False)
    # False while nothing was (or will be) posted: muted, or no alert channel.
    announced: Mapped[bool] = mapped_column(Boolean, default=False)
    # The latest "what happened", one line.
    detail: Mapped[str] = mapped_column(Text, default="")
    # Health snapshot, heartbeat age, the action taken, storm members …: what the root
    # message shows, so it can be rebuilt for every edit without asking the backend.
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolved_note: Mapped[str | None] = mapped_column(Text)
    # When the on-call group was re-mentioned for being unresolved too long (once).
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # When the auto-restart budget ran out (escalates at once).
    exhausted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    restart_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Recurrences folded into this incident (flaps, reopenings, repeats while open).
    recurrences: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str | None] = mapped_column(String(64))
    root_ts: Mapped[str | None] = mapped_column(String(32))
    # The last incident state told to the paging destinations (PagerDuty, the webhook):
    # None until the incident is announced; then "triggered", "acknowledged", "resolved".
    paged_state: Mapped[str | None] = mapped_column(String(16))

    def __repr__(self) -> str:
        return (
            f"AlertIncident(id={self.id!r}, scope={self.scope!r}, "
            f"instance_id={self.instance_id!r}, kind={self.kind!r}, state={self.state!r})"
        )


class AlertOutbox(Base):
    """One Slack message to post or edit, delivered at least once, in order per stream."""

    __tablename__ = "alert_outbox"
    __table_args__ = (
        # Serves the delivery job: the oldest pending rows.
        Index(None, "state", "id"),
        Index(None, "incident_id", "state"),
        CheckConstraint(f"kind IN {OUTBOX_KINDS!r}", name="kind"),
        CheckConstraint(f"state IN {OUTBOX_STATES!r}", name="state"),
        CheckConstraint(f"destination IN {OUTBOX_DESTINATIONS!r}", name="destination"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("alert_incidents.id", ondelete="CASCADE")
    )
    # Rows of one stream go out strictly in id order: "incident:<id>" or "mute:<instance>".
    stream: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(16))
    # "slack", "pagerduty" or "webhook"; ``channel`` is the Slack channel (for the
    # others the incident's channel, which their links point at, or "").
    destination: Mapped[str] = mapped_column(String(16), default="slack", server_default="slack")
    channel: Mapped[str] = mapped_column(String(64))
    # Slack: {"text": …, "blocks": [...], "reply_broadcast": bool}; diagnostics:
    # {"instance_id": …}; event: {"event": "trigger" | …, "actor": …, "action": …}
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # A sender's lease on the row while its request is in flight (never a held lock).
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The ts Slack gave the posted message (or the edited root's ts).
    ts: Mapped[str | None] = mapped_column(String(32))

    def __repr__(self) -> str:
        return (
            f"AlertOutbox(id={self.id!r}, stream={self.stream!r}, kind={self.kind!r}, "
            f"state={self.state!r}, attempts={self.attempts!r})"
        )


class AlertMute(Base):
    """A mute of one instance's alerts (and, with ``no_restart``, its auto-restarts)."""

    __tablename__ = "alert_mutes"
    __table_args__ = (
        Index(None, "instance_id", "ended_at"),
        Index(None, "ended_at", "until"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(String(128))
    instance_name: Mapped[str | None] = mapped_column(String(255))
    until: Mapped[datetime] = mapped_column(UtcDateTime())
    no_restart: Mapped[bool] = mapped_column(Boolean, default=False)
    # Slack user id of who muted.
    actor: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # NULL while the mute is in force (until ``until`` passes and the expiry job ends it).
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # "expired", "unmuted" or "replaced"; with ``ended_by`` the user who unmuted.
    ended_how: Mapped[str | None] = mapped_column(String(16))
    ended_by: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return (
            f"AlertMute(instance_id={self.instance_id!r}, until={self.until.isoformat()}, "
            f"no_restart={self.no_restart!r}, ended_at={self.ended_at!r})"
        )
