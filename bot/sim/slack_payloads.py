"""Bodies of the requests Slack sends to an app, shaped like Slack's own samples.

Pure builders (no I/O): slash commands (``SlashCommandPayload.json``), block actions
(``BlockActionPayload.json``) and view submissions (``ViewSubmissionPayload.json``).
"""

from __future__ import annotations

import copy
from typing import Any

from bot.sim.slack_models import APP_ID, BOT_ID, TEAM_DOMAIN, TEAM_ID, Message

VERIFICATION_TOKEN = "emulator-verification-token"  # the legacy field Slack still sends


def slash_command_fields(
    *,
    command: str,
    text: str,
    user_id: str,
    user_name: str,
    channel_id: str,
    channel_name: str,
    team_id: str,
    response_url: str,
    trigger_id: str,
) -> dict[str, str]:
    """The form fields of a slash command request, as Slack posts them."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def find_element(
    message: Message, action_id: str, block_id: str | None
) -> tuple[str, dict[str, Any]] | None:
    """The interactive element with ``action_id`` in a message, and its block's id.

    Blocks sent without a ``block_id`` get a stable stand-in (``"b<index>"``), the way Slack
    fills in an id of its own.
    """
    for index, block in enumerate(message.blocks):
        this_block_id = block.get("block_id") or f"b{index}"
        if block_id is not None and this_block_id != block_id:
            continue
        elements: list[Any] = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        if isinstance(block.get("element"), dict):
            elements.append(block["element"])
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return this_block_id, element
    return None


def action_entry(
    *,
    action_id: str,
    block_id: str,
    action_type: str,
    action_ts: str,
    value: str | None,
    selected_option_value: str | None,
    element: dict[str, Any] | None,
) -> dict[str, Any]:
    """One entry of ``actions``: what the user clicked or picked."""
    entry: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "type": action_type,
        "action_ts": action_ts,
    }
    if element is not None:
        for key in ("text", "style", "confirm", "url", "placeholder"):
            if key in element:
                entry[key] = copy.deepcopy(element[key])
    if selected_option_value is not None:
        option = _find_option(element, selected_option_value) if element else None
        entry["selected_option"] = copy.deepcopy(option) or {
            "text": {"type": "plain_text", "text": selected_option_value, "emoji": True},
            "value": selected_option_value,
        }
    elif value is not None:
        entry["value"] = value
    return entry


def _find_option(element: dict[str, Any], value: str) -> dict[str, Any] | None:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return next((o for o in options if isinstance(o, dict) and o.get("value") == value), None)


def option_values(element: dict[str, Any]) -> list[str]:
    """Every option value an overflow or select element offers."""
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return [str(o.get("value")) for o in options if isinstance(o, dict)]


def block_actions_payload(
    *,
    user_id: str,
    user_name: str,
    channel_id: str,
    channel_name: str,
    message: Message | None,
    message_ts: str | None,
    is_ephemeral: bool,
    response_url: str,
    trigger_id: str,
    action: dict[str, Any],
) -> dict[str, Any]:
    """A ``block_actions`` payload, as Slack posts it in the ``payload`` form field.

    Slack leaves ``message`` out when the clicked message is ephemeral.
    """
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel_id,
        "is_ephemeral": is_ephemeral,
    }
    if message is not None and message.thread_ts is not None:
        container["thread_ts"] = message.thread_ts
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }
    if message is not None and not is_ephemeral:
        payload["message"] = message.to_api()
    return payload


def view_submission_payload(
    *,
    user_id: str,
    user_name: str,
    view_id: str,
    callback_id: str,
    values: dict[str, dict[str, Any]],
    private_metadata: str,
    trigger_id: str,
    title: str,
) -> dict[str, Any]:
    """A ``view_submission`` payload; ``values`` is ``state.values`` (block → action → value)."""
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": "modal",
            "title": {"type": "plain_text", "text": title, "emoji": True},
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": copy.deepcopy(values)},
            "hash": f"{view_id}.hash",
            "app_id": APP_ID,
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        },
        "is_enterprise_install": False,
        "response_urls": [],
    }
