"""Block Kit primitives: text objects, sections, buttons, menus and dialogs (pure, no I/O).

Every builder of the bot (Slack answers and incident messages) assembles its blocks from
these; :func:`bot.blockkit.limits.fit_blocks` enforces Slack's limits on the result.
"""

from __future__ import annotations

from typing import Any

from bot.blockkit.limits import MAX_BUTTON_TEXT, MAX_OPTION_TEXT, truncate

Block = dict[str, Any]


def mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object."""
    return {"type": "mrkdwn", "text": text or " "}


def plain(text: str, *, limit: int | None = None) -> dict[str, Any]:
    """A plain_text text object (emoji shortcodes on), shortened to ``limit`` when given."""
    value = text or " "
    if limit is not None:
        value = truncate(value, limit)
    return {"type": "plain_text", "text": value, "emoji": True}


def section(text: str, *, block_id: str | None = None, accessory: Block | None = None) -> Block:
    """A section with mrkdwn text and an optional accessory."""
    block: Block = {"type": "section", "text": mrkdwn(text)}
    if block_id:
        block["block_id"] = block_id
    if accessory is not None:
        block["accessory"] = accessory
    return block


def fields_section(items: list[str], *, block_id: str | None = None) -> Block:
    """A section of up to 10 two-column mrkdwn fields."""
    block: Block = {"type": "section", "fields": [mrkdwn(item) for item in items[:10]]}
    if block_id:
        block["block_id"] = block_id
    return block


def header(text: str) -> Block:
    """A header block (plain text, at most 150 characters)."""
    return {"type": "header", "text": plain(text, limit=150)}


def context(*texts: str) -> Block:
    """A context line (small grey text)."""
    return {"type": "context", "elements": [mrkdwn(t) for t in texts[:10]]}


def divider() -> Block:
    """A horizontal rule."""
    return {"type": "divider"}


def actions(elements: list[Block], *, block_id: str | None = None) -> Block:
    """A row of interactive elements."""
    block: Block = {"type": "actions", "elements": elements[:25]}
    if block_id:
        block["block_id"] = block_id
    return block


def button(
    text: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    confirm: Block | None = None,
) -> Block:
    """A button; ``style`` is ``primary`` or ``danger``."""
    element: Block = {
        "type": "button",
        "text": plain(text, limit=MAX_BUTTON_TEXT),
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    if confirm is not None:
        element["confirm"] = confirm
    return element


def option(text: str, value: str) -> Block:
    """One option of an overflow menu or select."""
    return {"text": plain(text, limit=MAX_OPTION_TEXT), "value": value}


def overflow(action_id: str, options: list[Block]) -> Block:
    """An overflow (⋯) menu: Slack allows 2 to 5 options."""
    return {"type": "overflow", "action_id": action_id, "options": options[:5]}


def confirm_dialog(title: str, text: str, confirm: str, deny: str = "Cancel") -> Block:
    """A Block Kit ``confirm`` dialog with the danger style."""
    return {
        "title": plain(title, limit=100),
        "text": plain(text, limit=300),
        "confirm": plain(confirm, limit=30),
        "deny": plain(deny, limit=30),
        "style": "danger",
    }
