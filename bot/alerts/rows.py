"""Incident rows: opening one, finding the open one fast, resolving it.

A sweep dispatches thousands of events in one transaction, most about instances without
an incident; the keys that may have an open incident are loaded once per transaction
(``session.info``) so those events are answered without a query.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts import queries as q
from bot.alerts.policy import AlertPolicy
from bot.store.alert_models import FLEET_KEY, AlertIncident

_OPEN_KEYS = "starpod_alerts_open_keys"


async def open_keys(session: AsyncSession) -> set[str]:
    """Keys that may have an open incident in this transaction (a superset: loaded once
    per session, added to as incidents open, never removed from)."""
    keys: set[str] | None = session.info.get(_OPEN_KEYS)
    if keys is None:
        keys = set(await q.all_open_keys(session))
        session.info[_OPEN_KEYS] = keys
    return keys


def remember_open(session: AsyncSession, incident: AlertIncident) -> None:
    """Add a just-opened (or reopened) incident to the transaction's open keys."""
    keys = session.info.get(_OPEN_KEYS)
    if keys is not None and incident.open_key is not None:
        keys.add(incident.open_key)


async def open_incident(session: AsyncSession, instance_id: str) -> AlertIncident | None:
    """The instance's open (or acknowledged) incident, or None."""
    if instance_id not in await open_keys(session):
        return None
    return await q.open_incident(session, instance_id)


async def open_fleet_id(session: AsyncSession) -> int | None:
    """The id of the open fleet incident, or None."""
    if FLEET_KEY not in await open_keys(session):
        return None
    return await q.open_fleet_incident_id(session)


def new_incident(
    policy: AlertPolicy,
    *,
    scope: str,
    kind: str,
    at: datetime,
    instance_id: str | None = None,
    name: str | None = None,
    region: str | None = None,
    detail: str = "",
) -> AlertIncident:
    """A new open incident row (not added to the session), routed by ``policy``."""
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
        channel=policy.channel_for(name) if scope == "instance" else policy.channel,
    )


def resolve(incident: AlertIncident, at: datetime, note: str | None) -> None:
    """Mark the incident resolved (its open key freed for the next one)."""
    incident.state = "resolved"
    incident.resolved_at = at
    incident.resolved_note = note
    incident.open_key = None
    incident.updated_at = at
