"""Giving an instance its auto-restart budget back: the one function both entry points use.

``/starpod budget reset <id>`` and the incident's "Reset restart budget" button both call
:meth:`bot.alerts.service.AlertService.reset_restart_budget`, which runs
:func:`reset_budget` in one transaction: the reset is recorded (the monitor ignores the
auto-restarts before it from its next sweep on: :func:`bot.monitor.restarts.decide_restarts`),
and the instance's open incident forgets the exhaustion, says who reset it in its thread
and tells the paging destinations. Roles and the audit row are the Slack pipeline's.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts import blocks
from bot.alerts import queries as q
from bot.alerts.facts import update_facts
from bot.alerts.records import BudgetResetResult
from bot.blockkit.mrkdwn import user
from bot.store import queries as store_q

if TYPE_CHECKING:
    from bot.alerts.notify import Notifier

RESET_ACTION = "auto-restart budget reset"


async def reset_budget(
    session: AsyncSession,
    notifier: Notifier,
    *,
    instance_id: str,
    actor: str,
    source: str,
    now: datetime,
) -> BudgetResetResult:
    """Record the reset and tell the instance's open incident (if any)."""
    await store_q.record_budget_reset(
        session, instance_id=instance_id, at=now, actor=actor, source=source
    )
    incident = await q.open_incident(session, instance_id)
    if incident is None:
        return BudgetResetResult(instance_id, now)
    # A later exhaustion is a new one, paged again (bot.alerts.incidents.on_exhausted).
    incident.exhausted_at = None
    incident.updated_at = now
    update_facts(incident, action=RESET_ACTION, action_by=actor)
    await session.flush()
    note = blocks.thread_note(
        f"♻️ {user(actor)} reset the auto-restart budget: if the heartbeat is still stale, "
        "the next sweep restarts it again."
    )
    await notifier.follow_up(session, incident, now, note)
    await notifier.action_taken(session, incident, now, action=RESET_ACTION, actor=actor)
    return BudgetResetResult(instance_id, now, incident.id)
