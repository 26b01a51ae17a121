"""Reading the modals' submitted forms: pure, so every rule is tested without Slack.

Each reader takes ``view.state.values`` (and ``private_metadata``) and returns what was
asked for, or the errors Slack shows under the inputs (``response_action: errors``,
keyed by the input's ``block_id``). Error texts are plain text (Slack shows them as is).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.blockkit.ids import ActionId, BlockId
from bot.blockkit.views import checked_values, selected_value
from bot.slack.blocks.modals import MAX_NAME, MAX_REASON, NO_RESTART
from bot.slack.parser import parse_duration

Errors = dict[str, str]
_REGION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class CreateForm:
    name: str | None
    region: str | None


@dataclass(frozen=True)
class MuteForm:
    instance_id: str
    mute_for: timedelta
    no_restart: bool
    reason: str | None


def _plain(text: str) -> str:
    # parse_duration's messages are mrkdwn (backticks); errors under an input are plain.
    return text.replace("`", "")


def read_create(values: dict[str, Any]) -> CreateForm | Errors:
    """Name (optional, at most 100 characters) and region: picked, typed, or neither."""
    errors: Errors = {}
    name = selected_value(values, BlockId.CREATE_NAME, ActionId.CREATE_NAME)
    name = name.strip() if name else None
    if name and len(name) > MAX_NAME:
        errors[BlockId.CREATE_NAME] = f"A name has at most {MAX_NAME} characters."
    picked = selected_value(values, BlockId.CREATE_REGION, ActionId.CREATE_REGION)
    typed = selected_value(values, BlockId.CREATE_REGION_TYPED, ActionId.CREATE_REGION_TYPED)
    typed = typed.strip() if typed else None
    if picked and typed:
        errors[BlockId.CREATE_REGION_TYPED] = "Pick a region from the list or type one, not both."
    elif typed and (len(typed) > MAX_NAME or not _REGION.fullmatch(typed)):
        errors[BlockId.CREATE_REGION_TYPED] = (
            "A region is letters, digits, dots and dashes, such as eu-west-1."
        )
    if errors:
        return errors
    return CreateForm(name=name or None, region=picked or typed or None)


def read_mute(values: dict[str, Any]) -> MuteForm | Errors:
    """Instance, a duration picked or typed (1 minute to 30 days), no-restart, reason."""
    errors: Errors = {}
    instance_id = selected_value(values, BlockId.INSTANCE, ActionId.INSTANCE_PICK)
    if not instance_id:
        errors[BlockId.INSTANCE] = "Pick the instance to mute."
    picked = selected_value(values, BlockId.MUTE_DURATION, ActionId.MUTE_DURATION)
    typed = selected_value(values, BlockId.MUTE_DURATION_TYPED, ActionId.MUTE_DURATION_TYPED)
    mute_for: timedelta | None = None
    if picked and typed:
        errors[BlockId.MUTE_DURATION_TYPED] = "Pick a duration or type one, not both."
    elif not picked and not typed:
        errors[BlockId.MUTE_DURATION] = "Pick how long to mute, or type a duration below."
    else:
        block = BlockId.MUTE_DURATION if picked else BlockId.MUTE_DURATION_TYPED
        parsed = parse_duration(picked or typed or "")
        if isinstance(parsed, str):
            errors[block] = _plain(parsed)
        else:
            mute_for = parsed
    reason = selected_value(values, BlockId.MUTE_REASON, ActionId.MUTE_REASON)
    reason = reason.strip() if reason else None
    if reason and len(reason) > MAX_REASON:
        errors[BlockId.MUTE_REASON] = f"A reason has at most {MAX_REASON} characters."
    if errors or instance_id is None or mute_for is None:
        return errors
    no_restart = NO_RESTART in checked_values(values, BlockId.MUTE_OPTIONS, ActionId.MUTE_OPTIONS)
    return MuteForm(instance_id, mute_for, no_restart, reason or None)


def read_choice(values: dict[str, Any]) -> str | None:
    """The radio choice of an act or incident modal."""
    return selected_value(values, BlockId.ACT_VERB, ActionId.ACT_VERB)


def read_picked_instance(values: dict[str, Any]) -> tuple[str, str | None] | None:
    """The picked instance's id and its option text (for a pre-filled picker)."""
    state = (values.get(BlockId.INSTANCE) or {}).get(ActionId.INSTANCE_PICK) or {}
    chosen = state.get("selected_option") if isinstance(state, dict) else None
    if not isinstance(chosen, dict) or not isinstance(chosen.get("value"), str):
        return None
    text = (chosen.get("text") or {}).get("text")
    return str(chosen["value"]), text if isinstance(text, str) else None


def read_metadata(view: dict[str, Any]) -> dict[str, Any]:
    """The view's ``private_metadata`` as the JSON object the bot put there ({} if not)."""
    raw = view.get("private_metadata")
    try:
        data = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
