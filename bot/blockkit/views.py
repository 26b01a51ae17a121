"""Block Kit views: modals and the App Home tab, their inputs and Slack's limits on them.

Pure builders, like :mod:`bot.blockkit.blocks`. The limits are Slack's (Block Kit reference,
"View payloads" and each element's page): a view holds at most 100 blocks, a modal's title,
submit and close labels at most 24 characters, ``private_metadata`` at most 3,000, a select
at most 100 options, and a ``block_suggestion`` answer at most 100 options too.
"""

from __future__ import annotations

from typing import Any

from bot.blockkit.blocks import Block, plain
from bot.blockkit.limits import MAX_OPTION_TEXT, MAX_OPTION_VALUE, truncate

MAX_VIEW_BLOCKS = 100
MAX_MODAL_TITLE = 24
MAX_MODAL_BUTTON = 24
MAX_PRIVATE_METADATA = 3000
MAX_OPTIONS = 100
MAX_INPUT_LABEL = 2000
MAX_PLACEHOLDER = 150
MAX_TEXT_INPUT = 3000


def option(text: str, value: str, *, description: str | None = None) -> Block:
    """One option of a select, radio group or checkbox group (text and value truncated)."""
    made: Block = {
        "text": plain(text, limit=MAX_OPTION_TEXT),
        "value": value[:MAX_OPTION_VALUE],
    }
    if description:
        made["description"] = plain(description, limit=MAX_OPTION_TEXT)
    return made


def external_select(
    action_id: str,
    placeholder: str,
    *,
    initial: Block | None = None,
    min_query_length: int = 1,
) -> Block:
    """A select whose options the app answers (``block_suggestion``) as the user types."""
    element: Block = {
        "type": "external_select",
        "action_id": action_id,
        "placeholder": plain(placeholder, limit=MAX_PLACEHOLDER),
        "min_query_length": min_query_length,
    }
    if initial is not None:
        element["initial_option"] = initial
    return element


def static_select(
    action_id: str, placeholder: str, options: list[Block], *, initial: Block | None = None
) -> Block:
    """A select of fixed options (at most 100)."""
    element: Block = {
        "type": "static_select",
        "action_id": action_id,
        "placeholder": plain(placeholder, limit=MAX_PLACEHOLDER),
        "options": options[:MAX_OPTIONS],
    }
    if initial is not None:
        element["initial_option"] = initial
    return element


def text_input(
    action_id: str,
    *,
    placeholder: str | None = None,
    multiline: bool = False,
    max_length: int | None = None,
    initial: str | None = None,
) -> Block:
    """A plain-text input."""
    element: Block = {"type": "plain_text_input", "action_id": action_id, "multiline": multiline}
    if placeholder:
        element["placeholder"] = plain(placeholder, limit=MAX_PLACEHOLDER)
    if max_length is not None:
        element["max_length"] = min(max_length, MAX_TEXT_INPUT)
    if initial:
        element["initial_value"] = initial[:MAX_TEXT_INPUT]
    return element


def checkboxes(action_id: str, options: list[Block]) -> Block:
    """A group of checkboxes."""
    return {"type": "checkboxes", "action_id": action_id, "options": options[:10]}


def radio_buttons(action_id: str, options: list[Block], *, initial: Block | None = None) -> Block:
    """A group of radio buttons (at most 10)."""
    element: Block = {"type": "radio_buttons", "action_id": action_id, "options": options[:10]}
    if initial is not None:
        element["initial_option"] = initial
    return element


def input_block(
    block_id: str,
    label: str,
    element: Block,
    *,
    optional: bool = False,
    hint: str | None = None,
) -> Block:
    """An input block: the only block whose value reaches ``view_submission``."""
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": plain(label, limit=MAX_INPUT_LABEL),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = plain(hint, limit=MAX_INPUT_LABEL)
    return block


def modal(
    callback_id: str,
    title: str,
    blocks: list[Block],
    *,
    submit: str | None = None,
    close: str = "Cancel",
    private_metadata: str = "",
) -> dict[str, Any]:
    """A modal view; raises ``ValueError`` for metadata or blocks over Slack's limits (a bug)."""
    if len(private_metadata) > MAX_PRIVATE_METADATA:
        raise ValueError(f"private_metadata is {len(private_metadata)} > 3000 characters")
    if len(blocks) > MAX_VIEW_BLOCKS:
        raise ValueError(f"a view holds at most {MAX_VIEW_BLOCKS} blocks, not {len(blocks)}")
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(truncate(title, MAX_MODAL_TITLE)),
        "close": plain(truncate(close, MAX_MODAL_BUTTON)),
        "blocks": blocks,
        "private_metadata": private_metadata,
    }
    if submit is not None:
        view["submit"] = plain(truncate(submit, MAX_MODAL_BUTTON))
    return view


def home(blocks: list[Block]) -> dict[str, Any]:
    """An App Home view (at most 100 blocks: the caller pages what does not fit)."""
    if len(blocks) > MAX_VIEW_BLOCKS:
        raise ValueError(f"a view holds at most {MAX_VIEW_BLOCKS} blocks, not {len(blocks)}")
    return {"type": "home", "blocks": blocks}


def selected_value(values: dict[str, Any], block_id: str, action_id: str) -> str | None:
    """What the user chose or typed in one input of ``view.state.values`` (None: nothing).

    Reads every element kind the bot's modals use: selects and radios (``selected_option``),
    text inputs (``value``).
    """
    state = (values.get(block_id) or {}).get(action_id) or {}
    if not isinstance(state, dict):
        return None
    chosen = state.get("selected_option")
    if isinstance(chosen, dict) and isinstance(chosen.get("value"), str):
        return str(chosen["value"])
    value = state.get("value")
    return value if isinstance(value, str) and value.strip() else None


def checked_values(values: dict[str, Any], block_id: str, action_id: str) -> set[str]:
    """The values of the ticked checkboxes of one input."""
    state = (values.get(block_id) or {}).get(action_id) or {}
    chosen = state.get("selected_options") if isinstance(state, dict) else None
    return {
        str(o["value"])
        for o in chosen or []
        if isinstance(o, dict) and isinstance(o.get("value"), str)
    }
