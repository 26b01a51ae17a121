"""The incident message's buttons: Acknowledge, Restart now, Logs, Mute 1h, Reset restart
budget (and the diagnostics reply's "More logs", which is the Logs button).

Mounted on the Slack app by ``create_app`` (``ROUTES``) behind the listener pipeline
every Slack listener shares (``bot/slack/middleware.py``): acknowledged first, acted on
once (a repeated click delivery is ignored), done in a work slot, checked against the
clicker's role before anything acts (Acknowledge, Restart now, Mute and Reset restart
budget need an operator,
Logs a viewer), and written to the audit log whatever the outcome; errors are answered
there too.

Every button's value is the incident id; the instance comes from the incident. The
answers to the clicker are ephemeral; what the team should see (acknowledged by whom, a
restart by hand, a mute) goes through the alerts feature: the root message is edited and
the incident's thread gets a reply.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from functools import partial
from typing import Any, Protocol

from bot.alerts.records import AckResult, BudgetResetResult, IncidentView, MuteResult
from bot.backend.errors import BackendError
from bot.backend.models import Instance
from bot.blockkit.blocks import section
from bot.blockkit.ids import ActionId
from bot.blockkit.limits import reply
from bot.blockkit.mrkdwn import date, duration, escape, user
from bot.catalog import Subcommand
from bot.errors import UserError
from bot.instances import Actor, Busy, Failed, Hooks
from bot.slack import blocks as slack_blocks
from bot.slack.handlers import info
from bot.slack.handlers.lifecycle import CUT_SHORT_UPDATE_SECS, busy_text
from bot.slack.invocation import Invocation
from bot.slack.middleware import Route, Step
from bot.slack.parser import Command
from bot.slack.services import Services

log = logging.getLogger(__name__)

ACKNOWLEDGE = "acknowledge"
MUTE_BUTTON_SECS = 3600


class IncidentActions(Protocol):
    """What the buttons need from the alerts feature (``AlertService`` provides it)."""

    async def get_incident(self, incident_id: str | int) -> IncidentView | None:
        """One incident, or None."""
        ...

    async def acknowledge(self, incident_id: str | int, actor: str) -> AckResult:
        """Acknowledge; idempotent."""
        ...

    async def mute(self, instance_id: Any, until: Any, no_restart: bool, actor: str) -> MuteResult:
        """Mute alerts for the instance."""
        ...

    async def note_manual_restart(
        self, incident_id: str | int, actor: str, *, ok: bool, error: str | None = None
    ) -> None:
        """Say in the incident's thread that someone restarted the instance."""
        ...

    async def reset_restart_budget(
        self, instance_id: str, actor: str, *, source: str = "slack"
    ) -> BudgetResetResult:
        """Give the instance its auto-restart budget back."""
        ...


def _clicked(body: dict[str, Any]) -> dict[str, Any]:
    actions = body.get("actions") or [{}]
    first = actions[0]
    return first if isinstance(first, dict) else {}


def alerts_of(svc: Services) -> IncidentActions:
    """The alerts feature's incident actions, or a plain refusal when alerts are off."""
    alerts = svc.deps.alerts
    if alerts is None or not hasattr(alerts, "get_incident"):
        raise UserError("Alerts are not running in this bot, so incident buttons do nothing.")
    return alerts  # type: ignore[return-value]


def check_channel_of(svc: Services, inv: Invocation, incident: IncidentView) -> str | None:
    """The channel the role check sees: the incident's own channel counts as allowed."""
    allowed = svc.settings.access.channels
    if allowed and inv.channel_id is not None and inv.channel_id == incident.channel:
        # The bot chose this channel for the incident: its buttons work there even when
        # commands are limited to other channels. Roles still apply.
        return allowed[0]
    return None


async def plan_click(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """The clicked button's step, for the incident its value names."""
    clicked = _clicked(body)
    action, handler = HANDLERS[ActionId(str(clicked.get("action_id")))]
    value = str(clicked.get("value") or "")
    inv.draft.args = f"incident #{value[:20]}"
    incident = await alerts_of(svc).get_incident(value)
    if incident is None:
        raise UserError(f"Incident #{value[:20]} does not exist (any more).")
    inv.draft.instance_id = incident.instance_id
    if action != ACKNOWLEDGE:
        _instance_of(incident)  # a fleet-wide incident is said so before any role check
    return Step(
        action,
        partial(handler, svc, inv, incident),
        check_channel=check_channel_of(svc, inv, incident),
    )


def _instance_of(incident: IncidentView) -> str:
    if incident.instance_id is None:
        raise UserError("This is a fleet-wide incident: pick an instance with /starpod list.")
    return incident.instance_id


async def on_acknowledge(svc: Services, inv: Invocation, incident: IncidentView) -> None:
    """Acknowledge: the root message then shows who; a repeat says who already did."""
    alerts = alerts_of(svc)
    result = await alerts.acknowledge(incident.id, inv.user_id)
    label = escape(incident.label)
    if result.outcome == "already":
        inv.draft.detail = f"already acknowledged by {result.by}"
        when = f" at {date(result.at)}" if result.at is not None else ""
        text = (
            f"👀 Incident #{incident.id} ({label}) was already acknowledged by "
            f"{user(result.by)}{when}."
        )
    elif result.outcome == "resolved":
        inv.draft.detail = "already resolved"
        text = f"✅ Incident #{incident.id} ({label}) is already resolved."
    elif result.outcome == "not_found":
        raise UserError(f"Incident #{incident.id} does not exist (any more).")
    else:
        inv.draft.detail = "acknowledged"
        text = f"🟠 You acknowledged incident #{incident.id} ({label})."
    await inv.respond(reply(text, [section(text)]))


async def on_restart(svc: Services, inv: Invocation, incident: IncidentView) -> None:
    """Restart now: through the instance actions (locked, recorded), said in the thread."""
    alerts = alerts_of(svc)
    instance_id = _instance_of(incident)
    try:
        target = await svc.actions.resolve(instance_id)
    except BackendError:
        # Gone, or the backend is down: the restart is still asked for, so its failure is
        # recorded and said in the incident's thread like any other.
        target = Instance(id=instance_id, name=incident.instance_name, status="unknown")
    try:
        result = await svc.actions.restart(
            target,
            Actor.incident(inv.user_id),
            # The thread says what happened at once; the next sweep sees the instance recover.
            wait=False,
            hooks=Hooks(while_waiting=svc.work.waiting),
        )
    except asyncio.CancelledError:
        await _restart_cut_short(inv, incident, instance_id)
        raise
    if isinstance(result, Busy):
        inv.draft.fail("error", f"a {result.running.verb} is already in progress")
        text = busy_text(escape(incident.label), result)
        await inv.respond(reply(text, [section(text)]))
        return
    error = result.error if isinstance(result, Failed) else None
    await alerts.note_manual_restart(incident.id, inv.user_id, ok=error is None, error=error)
    if error is not None:
        inv.draft.fail("error", error)
        await inv.respond(
            slack_blocks.user_error_answer(
                f"Restarting {incident.label} failed: {error}. The incident's thread says so too."
            )
        )
        return
    inv.draft.detail = "restarted from the incident message"


async def _restart_cut_short(inv: Invocation, incident: IncidentView, instance_id: str) -> None:
    # Shutdown cut the backend call short: nothing failed that we saw, so nothing is
    # noted as failed in the thread; the user is told the outcome is unknown (the audit
    # row says "interrupted", written by the listener pipeline).
    text = (
        f"⚠️ Restart of {escape(incident.label)}: outcome unknown, the bot was stopped while "
        f"it waited for the backend. Check with `/starpod health {escape(instance_id)}`."
    )
    try:
        async with asyncio.timeout(CUT_SHORT_UPDATE_SECS):
            plain = (
                f"Restart of {incident.label}: outcome unknown (the bot was stopped while it "
                f"waited): check with /starpod health {instance_id}"
            )
            await inv.respond(reply(plain, [section(text)]))
    except Exception:
        log.warning("could not say that the restart of %s was cut short", incident.label)


async def on_logs(svc: Services, inv: Invocation, incident: IncidentView) -> None:
    """Logs: the last 50 lines, to the clicker only (the /starpod logs answer)."""
    instance_id = _instance_of(incident)
    await info.show_logs(svc, inv, Command(Subcommand.LOGS, ref=instance_id))


async def on_mute(svc: Services, inv: Invocation, incident: IncidentView) -> None:
    """Mute 1h: alerts for the instance go quiet for an hour (auto-restart stays on)."""
    alerts = alerts_of(svc)
    instance_id = _instance_of(incident)
    span = timedelta(seconds=MUTE_BUTTON_SECS)
    until = svc.deps.clock() + span
    await alerts.mute(instance_id, until, False, inv.user_id)
    inv.draft.detail = f"muted for {duration(span.total_seconds())} from the incident message"
    text = (
        f"🔕 Alerts for {escape(incident.label)} are muted until {date(until)}. "
        f"Undo with `/starpod unmute {instance_id[:8]}`."
    )
    await inv.respond(reply(text, [section(text)]))


async def on_budget_reset(svc: Services, inv: Invocation, incident: IncidentView) -> None:
    """Reset restart budget: the same service function as `/starpod budget reset`."""
    alerts = alerts_of(svc)
    instance_id = _instance_of(incident)
    await alerts.reset_restart_budget(instance_id, inv.user_id, source="incident")
    inv.draft.detail = f"restart budget reset from incident #{incident.id}"
    text = (
        f"♻️ You reset the auto-restart budget of {escape(incident.label)}; "
        "the incident's thread says so."
    )
    await inv.respond(reply(text, [section(text)]))


HANDLERS = {
    ActionId.INCIDENT_ACK: (ACKNOWLEDGE, on_acknowledge),
    ActionId.INCIDENT_RESTART: (Subcommand.RESTART.value, on_restart),
    ActionId.INCIDENT_LOGS: (Subcommand.LOGS.value, on_logs),
    ActionId.INCIDENT_MUTE: (Subcommand.MUTE.value, on_mute),
    ActionId.INCIDENT_BUDGET_RESET: (Subcommand.BUDGET.value, on_budget_reset),
}


ROUTES = tuple(
    Route("action", action_id, action, plan_click) for action_id, (action, _) in HANDLERS.items()
)
