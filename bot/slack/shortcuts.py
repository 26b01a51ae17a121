"""Shortcuts: the global "Act on an instance" and the message shortcut on an incident.

Both only open a modal (``modals.py`` reads what is submitted); like every listener they
are acked first, role-checked and audited. The message shortcut finds the incident in the
message's block ids (the incident message's ``starpod.incident.root:<id>``); on any other
message it says so, privately.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from bot.blockkit.ids import BlockId, CallbackId
from bot.catalog import Subcommand
from bot.errors import UserError
from bot.slack import incident_buttons, modals
from bot.slack.blocks import modals as views
from bot.slack.invocation import Invocation
from bot.slack.middleware import Route, Step
from bot.slack.services import Services

NOT_AN_INCIDENT = (
    "This shortcut works on the bot's incident messages only (the alerts with "
    "Acknowledge and Restart buttons)."
)


async def plan_act(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """The global shortcut: the first step of the modal (pick an instance)."""
    return Step(Subcommand.LIST.value, partial(modals.open_act, svc, inv))


def incident_id_of(message: dict[str, Any]) -> str | None:
    """The incident a message is about, from its block ids (None: not an incident message)."""
    for block in message.get("blocks") or []:
        block_id = str(block.get("block_id") or "") if isinstance(block, dict) else ""
        for prefix in (BlockId.INCIDENT_ROOT, BlockId.INCIDENT_ACTIONS):
            head, sep, incident_id = block_id.partition(":")
            if sep and head == prefix and incident_id:
                return incident_id
    return None


async def plan_incident(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """The message shortcut: the incident's actions in a modal."""
    message = body.get("message") or {}
    incident_id = incident_id_of(message if isinstance(message, dict) else {})
    if incident_id is None:
        raise UserError(NOT_AN_INCIDENT)
    incident = await incident_buttons.alerts_of(svc).get_incident(incident_id)
    if incident is None:
        raise UserError(f"Incident #{incident_id[:20]} does not exist (any more).")
    inv.draft.instance_id = incident.instance_id
    inv.draft.args = f"incident #{incident.id}"
    return Step(
        Subcommand.LIST.value,
        partial(modals.open_modal, svc, inv, views.incident_modal(incident)),
        # The incident's own channel counts as allowed, as for its buttons.
        check_channel=incident_buttons.check_channel_of(svc, inv, incident),
    )


ROUTES = (
    Route("shortcut", CallbackId.ACT_SHORTCUT, Subcommand.LIST.value, plan_act),
    Route("shortcut", CallbackId.INCIDENT_SHORTCUT, Subcommand.LIST.value, plan_incident),
)
