"""The root's live readings (heartbeat age, health) and the digest of everything else.

Every edit of an incident's root shows the instance's heartbeat age counted to the
moment of the edit and the newest health the monitor stored (its heartbeat samples), not
the values of the event that opened the incident.

Those readings change on every sweep, so they are left out of the root's *digest*: the
hash of what the root says otherwise (state, what happened, action, notes, buttons).
:func:`bot.alerts.outbox.refresh_root` queues an edit only when the digest differs from
the root Slack already shows, so a restart that replays the same facts edits nothing,
while any edit made for a real change carries fresh readings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts import blocks
from bot.alerts.facts import HealthSnapshot, IncidentFacts, update_facts
from bot.alerts.records import IncidentView
from bot.store.alert_models import AlertIncident
from bot.store.heartbeats.reads import latest_heartbeat

# The facts that change with every sweep; the digest ignores them.
LIVE_FIELDS = ("health", "heartbeat_age_secs", "last_heartbeat", "sampled_at")


async def refresh_readings(session: AsyncSession, incident: AlertIncident, now: datetime) -> None:
    """Bring the incident's health to the newest stored sample and its heartbeat age to
    ``now`` (a fleet incident has neither)."""
    if incident.instance_id is None:
        return
    facts = IncidentFacts.of(incident)
    sample = await latest_heartbeat(session, incident.instance_id)
    changes: dict[str, object] = {}
    last_heartbeat = facts.last_heartbeat
    if sample is not None and (facts.sampled_at is None or sample.sampled_at > facts.sampled_at):
        last_heartbeat = sample.last_heartbeat
        changes.update(
            health=HealthSnapshot(
                cpu_percent=sample.cpu_percent,
                memory_mb=sample.memory_mb,
                disk_mb=sample.disk_mb,
                uptime_secs=sample.uptime_secs,
            ),
            last_heartbeat=sample.last_heartbeat,
            sampled_at=sample.sampled_at,
        )
    if last_heartbeat is not None:
        changes["heartbeat_age_secs"] = round(max(0.0, (now - last_heartbeat).total_seconds()), 1)
    if changes:
        update_facts(incident, **changes)


def root_digest(incident: AlertIncident, *, mention: str | None) -> str:
    """A short hash of the root message without its live readings."""
    view = IncidentView.from_row(incident)
    steady = view.facts.with_(**dict.fromkeys(LIVE_FIELDS))
    message = blocks.root_message(replace(view, facts=steady), mention=mention)
    body = json.dumps(message.kwargs(), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:24]
