"""The modals: create, mute, kill confirmation, "Act on an instance", incident actions.

Pure builders returning ``views.open`` / ``response_action: update`` views. Every instance
picker is an ``external_select`` with the one ``ActionId.INSTANCE_PICK``, answered by the
bot's ``block_suggestion`` listener (``bot/slack/suggestions.py``). Names from the backend
are escaped in mrkdwn; plain_text fields are shown as typed (Slack does not parse them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Any

from bot.alerts.records import IncidentView
from bot.backend.models import Instance
from bot.blockkit.blocks import Block, context, section
from bot.blockkit.ids import ActionId, BlockId, CallbackId
from bot.blockkit.mrkdwn import duration, escape
from bot.blockkit.views import (
    checkboxes,
    external_select,
    input_block,
    modal,
    option,
    radio_buttons,
    static_select,
    text_input,
)
from bot.slack.blocks.common import instance_label, status_emoji

MAX_NAME = 100  # the slash command's --name limit (parser.MAX_NAME_LENGTH)
MAX_REASON = 500
NO_RESTART = "no_restart"
MUTE_PRESETS = (
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    timedelta(days=1),
    timedelta(days=3),
    timedelta(days=7),
)


class ActVerb(StrEnum):
    """What the "Act on an instance" modal offers once an instance is picked."""

    HEALTH = "health"
    LOGS = "logs"
    RESTART = "restart"
    PAUSE = "pause"
    MUTE = "mute"
    KILL = "kill"


ACT_LABELS = {
    ActVerb.HEALTH: "Health card",
    ActVerb.LOGS: "Last 50 log lines",
    ActVerb.RESTART: "Restart",
    ActVerb.PAUSE: "Pause",
    ActVerb.MUTE: "Mute alerts…",
    ActVerb.KILL: "Kill…",
}


class IncidentVerb(StrEnum):
    """What the incident message shortcut offers."""

    ACKNOWLEDGE = "acknowledge"
    RESTART = "restart"
    MUTE = "mute"


INCIDENT_LABELS = {
    IncidentVerb.ACKNOWLEDGE: "Acknowledge",
    IncidentVerb.RESTART: "Restart the instance now",
    IncidentVerb.MUTE: "Mute its alerts…",
}


def instance_option(instance: Instance) -> Block:
    """The option an instance picker shows: ``🟢 web-1 (a1b2c3d4) · running``."""
    return option(
        f"{status_emoji(instance.status)} {instance.label} · {instance.status}", instance.id
    )


def instance_picker(*, initial: Block | None = None) -> Block:
    """The input every modal picks an instance with (answered as the user types)."""
    return input_block(
        BlockId.INSTANCE,
        "Instance",
        external_select(ActionId.INSTANCE_PICK, "Type part of a name or id", initial=initial),
        hint="Names and ids that contain what you type.",
    )


def duration_label(span: timedelta) -> str:
    """``30m``, ``1h``, ``1d``: a preset's value, as `/starpod mute` takes it."""
    seconds = int(span.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


def create_modal(regions: Sequence[str]) -> dict[str, Any]:
    """Create: a name, and a region picked from the known ones or typed."""
    blocks: list[Block] = [
        input_block(
            BlockId.CREATE_NAME,
            "Name",
            text_input(ActionId.CREATE_NAME, placeholder="web-1", max_length=MAX_NAME),
            optional=True,
            hint="Leave empty and the backend picks one.",
        ),
    ]
    known = [option(r, r) for r in regions[:100]]
    if known:
        blocks.append(
            input_block(
                BlockId.CREATE_REGION,
                "Region",
                static_select(ActionId.CREATE_REGION, "A region the fleet uses", known),
                optional=True,
            )
        )
    blocks.append(
        input_block(
            BlockId.CREATE_REGION_TYPED,
            "Or type a region" if known else "Region",
            text_input(ActionId.CREATE_REGION_TYPED, placeholder="eu-west-1", max_length=MAX_NAME),
            optional=True,
            hint="Leave both empty and the backend picks one.",
        )
    )
    return modal(CallbackId.CREATE, "New instance", blocks, submit="Create")


def mute_modal(*, initial: Block | None = None) -> dict[str, Any]:
    """Mute: an instance, a duration (picked or typed), no-restart, a reason."""
    presets = [option(duration(p.total_seconds()), duration_label(p)) for p in MUTE_PRESETS]
    blocks: list[Block] = [
        instance_picker(initial=initial),
        input_block(
            BlockId.MUTE_DURATION,
            "For",
            static_select(ActionId.MUTE_DURATION, "How long", presets),
            optional=True,
        ),
        input_block(
            BlockId.MUTE_DURATION_TYPED,
            "Or type a duration",
            text_input(ActionId.MUTE_DURATION_TYPED, placeholder="90m, 2h30m, 3d", max_length=40),
            optional=True,
        ),
        input_block(
            BlockId.MUTE_OPTIONS,
            "Auto-restart",
            checkboxes(
                ActionId.MUTE_OPTIONS,
                [option("Do not restart it either while muted", NO_RESTART)],
            ),
            optional=True,
        ),
        input_block(
            BlockId.MUTE_REASON,
            "Reason",
            text_input(
                ActionId.MUTE_REASON,
                placeholder="Why (shown in the announcement)",
                multiline=True,
                max_length=MAX_REASON,
            ),
            optional=True,
        ),
    ]
    return modal(CallbackId.MUTE, "Mute alerts", blocks, submit="Mute")


def kill_modal(instance: Instance, token: str, uptime_secs: float | None) -> dict[str, Any]:
    """The kill confirmation, naming what is lost; the token is spent on submit."""
    details = [escape(instance.status_raw)]
    if instance.region:
        details.append(escape(instance.region))
    if uptime_secs is not None:
        details.append(f"up {duration(uptime_secs)}")
    lost = (
        "*What is lost, for good:*\n"
        "• the instance and everything on its disk that is not stored elsewhere\n"
        "• its running processes and any open SSH sessions\n"
        "• its logs and health on the backend (the bot keeps its status history and audit)"
    )
    blocks = [
        section(f"⚠️ Kill {instance_label(instance)} ({', '.join(details)})?"),
        section(lost),
        context("This cannot be undone. Nothing happens until you press Kill."),
    ]
    metadata = json.dumps({"i": instance.id, "t": token}, separators=(",", ":"))
    return modal(CallbackId.KILL, "Kill instance", blocks, submit="Kill", private_metadata=metadata)


def act_modal() -> dict[str, Any]:
    """The global shortcut, step 1: which instance."""
    return modal(CallbackId.ACT, "Act on an instance", [instance_picker()], submit="Next")


def act_choice_modal(instance: Instance) -> dict[str, Any]:
    """Step 2: the picked instance as it is now, and what to do with it."""
    options = [option(ACT_LABELS[v], v.value) for v in ActVerb]
    blocks = [
        section(
            f"{status_emoji(instance.status)} {instance_label(instance)} is "
            f"{escape(instance.status_raw)}"
            + (f" in {escape(instance.region)}" if instance.region else "")
        ),
        input_block(BlockId.ACT_VERB, "What to do", radio_buttons(ActionId.ACT_VERB, options)),
    ]
    metadata = json.dumps({"i": instance.id, "n": instance.label[:200]}, separators=(",", ":"))
    return modal(
        CallbackId.ACT_CHOICE, "Act on an instance", blocks, submit="Go", private_metadata=metadata
    )


def incident_modal(incident: IncidentView) -> dict[str, Any]:
    """The message shortcut on an incident: acknowledge, restart or mute."""
    verbs = [IncidentVerb.ACKNOWLEDGE]
    if incident.instance_id is not None:
        verbs += [IncidentVerb.RESTART, IncidentVerb.MUTE]
    options = [option(INCIDENT_LABELS[v], v.value) for v in verbs]
    state = "acknowledged" if incident.acknowledged_by else "open"
    blocks = [
        section(
            f"*Incident #{incident.id}*: {escape(incident.label)} · "
            f"{escape(incident.kind)} · {state}"
        ),
        input_block(BlockId.ACT_VERB, "What to do", radio_buttons(ActionId.ACT_VERB, options)),
    ]
    return modal(
        CallbackId.INCIDENT,
        f"Incident #{incident.id}",
        blocks,
        submit="Go",
        private_metadata=json.dumps({"incident": incident.id}),
    )


def working_modal(title: str, text: str) -> dict[str, Any]:
    """What a submitted modal shows while the bot works (replaced by the result)."""
    return modal(CallbackId.RESULT, title, [section(f"⏳ {text}")], close="Close")


def result_modal(title: str, text: str, *, ok: bool) -> dict[str, Any]:
    """The outcome, in place of the working view (``views.update``)."""
    mark = "✅" if ok else "✖️"
    block_id = f"{BlockId.MODAL_OUTCOME}:{'ok' if ok else 'failed'}"
    return modal(
        CallbackId.RESULT, title, [section(f"{mark} {text}", block_id=block_id)], close="Close"
    )
