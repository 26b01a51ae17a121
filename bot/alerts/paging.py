"""Paging beyond Slack: which events an incident's changes owe PagerDuty and the webhook.

Events are outbox rows (kind ``event``) written in the transaction of the change, like
every Slack message, so they share the outbox's guarantees: nothing lost, at least once,
retried with back-off, in order. Each incident has one stream per destination
(``pagerduty:incident:12``, ``webhook:incident:12``): a PagerDuty outage never holds the
Slack thread back, and PagerDuty still sees trigger → acknowledge → resolve in order.

The rule (:func:`events_owed`): an incident is *triggered* when it is announced (never
while muted); from then on its state is mirrored: acknowledged in Slack → ``acknowledge``,
resolved → ``resolve``, reopened → ``trigger`` again (the same ``dedup_key``).
``alert_incidents.paged_state`` remembers what was last told, so a restarted process or a
new leader owes nothing twice. The webhook also gets ``action`` events (auto-restarts,
restarts by hand, budget resets) for incidents it was told about.

The payload is a snapshot of the incident at the change; the senders
(:mod:`bot.alerts.pagerduty`, :mod:`bot.alerts.webhook`) add the link to the Slack
thread when they send.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts.outbox import EVENT, enqueue_raw
from bot.alerts.records import IncidentView
from bot.store.alert_models import AlertIncident

PAGERDUTY = "pagerduty"
WEBHOOK = "webhook"

TRIGGER = "trigger"
ACKNOWLEDGE = "acknowledge"
RESOLVE = "resolve"
ACTION = "action"

# What each incident state is, as told to the paging destinations.
PAGED_FOR_STATE = {"open": "triggered", "acknowledged": "acknowledged", "resolved": "resolved"}


@dataclass(frozen=True, slots=True)
class PagingTargets:
    """Which paging destinations are configured (their keys stay with the senders)."""

    pagerduty: bool = False
    webhook: bool = False

    @property
    def destinations(self) -> tuple[str, ...]:
        """The configured destinations, PagerDuty first."""
        return tuple(
            name for name, on in ((PAGERDUTY, self.pagerduty), (WEBHOOK, self.webhook)) if on
        )


def paging_stream(destination: str, incident_id: int) -> str:
    """The stream of one incident's events to one destination."""
    # Joined, not an f-string: its ":incident:" part would read as an emoji shortcode.
    return ":".join((destination, "incident", str(incident_id)))


def events_owed(paged: str | None, state: str, *, announce: bool) -> list[str]:
    """The events that bring a destination told ``paged`` to the incident's ``state``.

    Nothing is owed to an incident never triggered unless it is being announced now, and
    a resolved incident that was never triggered is owed nothing at all.
    """
    want = PAGED_FOR_STATE.get(state)
    if want is None or paged == want:
        return []
    if paged is None and not announce:
        return []
    if paged in (None, "resolved"):
        if want == "resolved":
            return []
        return [TRIGGER] if want == "triggered" else [TRIGGER, ACKNOWLEDGE]
    if want == "resolved":
        return [RESOLVE]
    if want == "acknowledged":
        return [ACKNOWLEDGE]
    return [TRIGGER]  # acknowledged → open again: a fresh trigger


def snapshot(incident: AlertIncident) -> dict[str, Any]:
    """The incident as the event tells it (plain JSON: the senders are pure about it)."""
    view = IncidentView.from_row(incident)
    return {
        "id": view.id,
        "scope": view.scope,
        "kind": view.kind,
        "state": view.state,
        "what": view.what,
        "label": view.label,
        "instance_id": view.instance_id,
        "instance_name": view.instance_name,
        "region": view.region,
        "detail": view.detail,
        "opened_at": view.opened_at.isoformat(),
        "acknowledged_by": view.acknowledged_by,
        "resolved_note": view.resolved_note,
        "restart_attempts": view.restart_attempts,
        "channel": view.channel,
    }


async def enqueue_event(
    session: AsyncSession,
    incident: AlertIncident,
    *,
    destination: str,
    event: str,
    now: datetime,
    actor: str | None = None,
    action: str | None = None,
) -> None:
    """One event row for ``destination`` in the incident's stream there."""
    await enqueue_raw(
        session,
        kind=EVENT,
        channel=incident.channel or "",
        payload={
            "event": event,
            "at": now.isoformat(),
            "actor": actor,
            "action": action,
            "incident": snapshot(incident),
        },
        now=now,
        stream=paging_stream(destination, incident.id),
        incident_id=incident.id,
        destination=destination,
    )


async def sync_pages(
    session: AsyncSession,
    incident: AlertIncident,
    targets: PagingTargets,
    now: datetime,
    *,
    announce: bool,
) -> bool:
    """Queue the events the incident's change owes each destination; True when any."""
    if not targets.destinations:
        return False
    owed = events_owed(incident.paged_state, incident.state, announce=announce)
    if not owed:
        return False
    actor = incident.acknowledged_by if incident.state == "acknowledged" else None
    for destination in targets.destinations:
        for event in owed:
            await enqueue_event(
                session,
                incident,
                destination=destination,
                event=event,
                now=now,
                actor=actor if event == ACKNOWLEDGE else None,
            )
    incident.paged_state = PAGED_FOR_STATE[incident.state]
    return True


async def action_taken(
    session: AsyncSession,
    incident: AlertIncident,
    targets: PagingTargets,
    now: datetime,
    *,
    action: str,
    actor: str | None,
) -> bool:
    """An ``action`` event for the webhook, about an incident it was told of."""
    if not targets.webhook or incident.paged_state is None:
        return False
    await enqueue_event(
        session, incident, destination=WEBHOOK, event=ACTION, now=now, actor=actor, action=action
    )
    return True
