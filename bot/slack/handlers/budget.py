"""`/starpod budget reset <id>`: give an instance its auto-restart budget back.

The same service function as the incident's "Reset restart budget" button
(``AlertService.reset_restart_budget``): it records the reset and tells the open incident.
The role check (operator) and the audit row are the listener pipeline's.
"""

from __future__ import annotations

from bot.blockkit.blocks import section
from bot.blockkit.limits import reply
from bot.blockkit.mrkdwn import user
from bot.errors import UserError
from bot.slack.blocks.common import instance_label
from bot.slack.handlers.common import resolve_past
from bot.slack.handlers.lifecycle import Announcement
from bot.slack.invocation import Invocation
from bot.slack.parser import Command
from bot.slack.services import Services

NOT_RUNNING = "Restart budgets belong to the alerts feature, which is not running in this bot."


async def reset(svc: Services, inv: Invocation, cmd: Command) -> None:
    """Reset the instance's restart budget; announced in the channel."""
    alerts = svc.deps.alerts
    if alerts is None or not hasattr(alerts, "reset_restart_budget"):
        raise UserError(NOT_RUNNING)
    assert cmd.ref is not None
    instance = await resolve_past(svc, inv, cmd.ref, cmd.subcommand)
    result = await alerts.reset_restart_budget(instance.id, inv.user_id, source="slack")
    incident = getattr(result, "incident_id", None)
    told = f" Incident #{incident} says so in its thread." if incident is not None else ""
    inv.draft.detail = "restart budget reset" + (f" (incident #{incident})" if incident else "")
    text = (
        f"♻️ {user(inv.user_id)} reset the auto-restart budget of {instance_label(instance)}: "
        f"earlier auto-restarts no longer count.{told}"
    )
    await Announcement(svc, inv).post(
        reply(f"Restart budget of {instance.label} reset", [section(text)])
    )
