"""Slack's message limits, checked the way the Web API checks them.

Pure functions, no I/O. ``check_message_content`` answers the error name Slack would answer
(``no_text``, ``msg_too_long``, ``invalid_blocks``, ``invalid_blocks_format``) or our stricter
``missing_text`` (blocks without a ``text`` fallback), plus detail lines in Slack's format:
``must be less than 3001 characters [json-pointer:/blocks/0/text/text]``.

The numbers come from Slack's Block Kit reference (block and element pages); only the limits a
chat-ops bot can plausibly hit are checked, but every block and element type is recognised so
an unknown ``type`` fails as it does on Slack.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, TypeGuard

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000
MAX_SECTION_TEXT = 3_000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2_000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2_000
MAX_URL = 3_000
MAX_ID = 255  # action_id, block_id
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MIN_OVERFLOW_OPTIONS = 2
MAX_OVERFLOW_OPTIONS = 5
MAX_SELECT_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_PLACEHOLDER = 150
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONFIRM_BUTTON = 30
MAX_IMAGE_ALT = 2_000
MAX_MARKDOWN_BLOCK_TEXT = 12_000
MAX_INPUT_LABEL = 2_000

BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "context_actions",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)
SELECT_TYPES = frozenset(
    {
        "static_select",
        "multi_static_select",
        "external_select",
        "multi_external_select",
        "users_select",
        "multi_users_select",
        "conversations_select",
        "multi_conversations_select",
        "channels_select",
        "multi_channels_select",
    }
)
INTERACTIVE_TYPES = SELECT_TYPES | {
    "button",
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "overflow",
    "radio_buttons",
    "timepicker",
    "workflow_button",
    "feedback_buttons",
    "icon_button",
}
INPUT_ONLY_TYPES = frozenset(
    {
        "plain_text_input",
        "email_text_input",
        "number_input",
        "url_text_input",
        "rich_text_input",
        "file_input",
    }
)
TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})
BUTTON_STYLES = frozenset({"primary", "danger"})


@dataclass
class CheckResult:
    """The outcome of a content check: ``error`` is None when Slack would accept it."""

    error: str | None = None
    detail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return self.error is None


class _Problems:
    """Collects problems as Slack words them, each with the JSON pointer of the bad value."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, pointer: str, message: str) -> None:
        self.items.append(f"{message} [json-pointer:{pointer}]")


def truthy(value: Any) -> bool:
    """Slack's booleans arrive as JSON booleans or as form strings ("1", "true")."""
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true"))


def parse_json_list(value: Any) -> tuple[list[Any] | None, bool]:
    """Accept blocks/attachments as a list or a JSON string (form bodies send strings).

    Returns ``(items, well_formed)``; ``items`` is None when the value is absent or empty.
    """
    if value is None or value == "":
        return None, True
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None, False
    if not isinstance(value, list):
        return None, False
    return (value or None), True


def parse_json_object(value: Any) -> dict[str, Any] | None:
    """Accept an object (views, metadata) as a dict or a JSON string; None when malformed."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def check_message_content(
    *,
    text: Any,
    blocks: Any,
    attachments: Any = None,
    require_fallback: bool = True,
    text_required: bool = True,
) -> CheckResult:
    """Check a message's ``text`` and ``blocks`` as ``chat.postMessage`` does.

    ``require_fallback`` is our house rule: when blocks are given, ``text`` must be too
    (Slack only warns). ``text_required=False`` is for ``chat.update``, where leaving both
    out keeps the old content of whichever is left out.
    """
    parsed_blocks, blocks_ok = parse_json_list(blocks)
    if not blocks_ok:
        return CheckResult("invalid_blocks_format", ["blocks must be a JSON array"])
    parsed_attachments, attachments_ok = parse_json_list(attachments)
    if not attachments_ok:
        return CheckResult("invalid_attachments", ["attachments must be a JSON array"])
    text_value = "" if text is None else text
    if not isinstance(text_value, str):
        return CheckResult("invalid_arguments", ["text must be a string"])
    has_text = text_value.strip() != ""
    if text_required and not has_text and not parsed_blocks and not parsed_attachments:
        return CheckResult("no_text")
    if len(text_value) > MAX_MESSAGE_TEXT:
        return CheckResult("msg_too_long", [f"text has {len(text_value)} characters"])
    if parsed_blocks:
        problems = validate_blocks(parsed_blocks, max_blocks=MAX_MESSAGE_BLOCKS)
        if problems:
            return CheckResult("invalid_blocks", problems)
        if require_fallback and not has_text:
            return CheckResult(
                "missing_text", ["blocks were given without a text fallback (house rule)"]
            )
    return CheckResult()


def validate_blocks(blocks: list[Any], *, max_blocks: int, pointer: str = "/blocks") -> list[str]:
    """Return every problem Slack would report for ``blocks`` (empty list: valid)."""
    problems = _Problems()
    if len(blocks) > max_blocks:
        problems.add(pointer, f"no more than {max_blocks} items allowed")
    seen_block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        here = f"{pointer}/{index}"
        if not isinstance(block, dict):
            problems.add(here, "must provide an object")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not block_id:
                problems.add(f"{here}/block_id", "must be a non-empty string")
            elif len(block_id) > MAX_ID:
                problems.add(f"{here}/block_id", f"must be less than {MAX_ID + 1} characters")
            elif block_id in seen_block_ids:
                problems.add(f"{here}/block_id", f"duplicate block_id: {block_id}")
            else:
                seen_block_ids.add(block_id)
        _check_block(block, here, problems)
    return problems.items


def _check_block(block: dict[str, Any], here: str, problems: _Problems) -> None:
    kind = block.get("type")
    if kind not in BLOCK_TYPES:
        problems.add(f"{here}/type", f"unsupported type: {kind}")
        return
    if kind == "section":
        _check_section(block, here, problems)
    elif kind == "header":
        _check_text(block.get("text"), f"{here}/text", problems, MAX_HEADER_TEXT, plain_only=True)
    elif kind == "context":
        _check_context(block, here, problems)
    elif kind == "actions":
        elements = block.get("elements")
        if _check_list(elements, f"{here}/elements", problems, 1, MAX_ACTIONS_ELEMENTS):
            _check_elements(elements, f"{here}/elements", problems, INTERACTIVE_TYPES)
    elif kind == "image":
        _check_image(block, here, problems)
    elif kind == "input":
        _check_text(block.get("label"), f"{here}/label", problems, MAX_INPUT_LABEL, True)
        element = block.get("element")
        if not isinstance(element, dict):
            problems.add(f"{here}/element", "must provide an object")
        else:
            allowed = INTERACTIVE_TYPES | INPUT_ONLY_TYPES
            _check_element(element, f"{here}/element", problems, allowed)
    elif kind == "markdown":
        text = block.get("text")
        if not isinstance(text, str) or not text:
            problems.add(f"{here}/text", "must be a non-empty string")
        elif len(text) > MAX_MARKDOWN_BLOCK_TEXT:
            problems.add(
                f"{here}/text", f"must be less than {MAX_MARKDOWN_BLOCK_TEXT + 1} characters"
            )
    elif kind == "rich_text" and not isinstance(block.get("elements"), list):
        problems.add(f"{here}/elements", "must provide an array")


def _check_section(block: dict[str, Any], here: str, problems: _Problems) -> None:
    text = block.get("text")
    fields = block.get("fields")
    if text is None and fields is None:
        problems.add(here, "must provide either text or fields")
    if text is not None:
        _check_text(text, f"{here}/text", problems, MAX_SECTION_TEXT)
    if fields is not None and _check_list(
        fields, f"{here}/fields", problems, 1, MAX_SECTION_FIELDS
    ):
        for index, item in enumerate(fields):
            _check_text(item, f"{here}/fields/{index}", problems, MAX_FIELD_TEXT)
    accessory = block.get("accessory")
    if accessory is not None:
        if not isinstance(accessory, dict):
            problems.add(f"{here}/accessory", "must provide an object")
        else:
            allowed = INTERACTIVE_TYPES | {"image"}
            _check_element(accessory, f"{here}/accessory", problems, allowed)


def _check_context(block: dict[str, Any], here: str, problems: _Problems) -> None:
    elements = block.get("elements")
    if not _check_list(elements, f"{here}/elements", problems, 1, MAX_CONTEXT_ELEMENTS):
        return
    for index, element in enumerate(elements):
        where = f"{here}/elements/{index}"
        if not isinstance(element, dict):
            problems.add(where, "must provide an object")
        elif element.get("type") == "image":
            _check_image(element, where, problems)
        else:
            _check_text(element, where, problems, MAX_SECTION_TEXT)


def _check_image(image: dict[str, Any], here: str, problems: _Problems) -> None:
    url = image.get("image_url")
    if url is None and image.get("slack_file") is None:
        problems.add(here, "must provide image_url or slack_file")
    if url is not None and (not isinstance(url, str) or len(url) > MAX_URL):
        problems.add(f"{here}/image_url", f"must be a string of at most {MAX_URL} characters")
    alt = image.get("alt_text")
    if not isinstance(alt, str) or not alt:
        problems.add(f"{here}/alt_text", "must be a non-empty string")
    elif len(alt) > MAX_IMAGE_ALT:
        problems.add(f"{here}/alt_text", f"must be less than {MAX_IMAGE_ALT + 1} characters")
    if image.get("title") is not None:
        _check_text(image.get("title"), f"{here}/title", problems, MAX_IMAGE_ALT, plain_only=True)


def _check_elements(
    elements: list[Any], here: str, problems: _Problems, allowed: Collection[str]
) -> None:
    seen_action_ids: set[str] = set()
    for index, element in enumerate(elements):
        where = f"{here}/{index}"
        if not isinstance(element, dict):
            problems.add(where, "must provide an object")
            continue
        _check_element(element, where, problems, allowed)
        action_id = element.get("action_id")
        if isinstance(action_id, str):
            if action_id in seen_action_ids:
                problems.add(f"{where}/action_id", f"duplicate action_id: {action_id}")
            seen_action_ids.add(action_id)


def _check_element(
    element: dict[str, Any], here: str, problems: _Problems, allowed: Collection[str]
) -> None:
    kind = element.get("type")
    if kind not in allowed:
        problems.add(f"{here}/type", f"unsupported type: {kind}")
        return
    action_id = element.get("action_id")
    if action_id is not None and (
        not isinstance(action_id, str) or not action_id or len(action_id) > MAX_ID
    ):
        problems.add(f"{here}/action_id", f"must be a string of 1 to {MAX_ID} characters")
    if element.get("confirm") is not None:
        _check_confirm(element["confirm"], f"{here}/confirm", problems)
    if kind == "image":
        _check_image(element, here, problems)
    elif kind == "button":
        _check_button(element, here, problems)
    elif kind == "overflow":
        options = element.get("options")
        if _check_list(
            options, f"{here}/options", problems, MIN_OVERFLOW_OPTIONS, MAX_OVERFLOW_OPTIONS
        ):
            _check_options(options, f"{here}/options", problems, allow_url=True)
    elif kind in ("static_select", "multi_static_select"):
        _check_placeholder(element, here, problems)
        if element.get("options") is None and element.get("option_groups") is None:
            problems.add(here, "must provide options or option_groups")
        if element.get("options") is not None and _check_list(
            element["options"], f"{here}/options", problems, 1, MAX_SELECT_OPTIONS
        ):
            _check_options(element["options"], f"{here}/options", problems)
    elif kind in ("radio_buttons", "checkboxes"):
        options = element.get("options")
        if _check_list(options, f"{here}/options", problems, 1, 10):
            _check_options(options, f"{here}/options", problems, plain_only=False)
    elif kind in SELECT_TYPES:
        _check_placeholder(element, here, problems)


def _check_button(element: dict[str, Any], here: str, problems: _Problems) -> None:
    _check_text(element.get("text"), f"{here}/text", problems, MAX_BUTTON_TEXT, plain_only=True)
    value = element.get("value")
    if value is not None and (not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE):
        problems.add(f"{here}/value", f"must be a string of at most {MAX_BUTTON_VALUE} characters")
    url = element.get("url")
    if url is not None and (not isinstance(url, str) or len(url) > MAX_URL):
        problems.add(f"{here}/url", f"must be a string of at most {MAX_URL} characters")
    style = element.get("style")
    if style is not None and style not in BUTTON_STYLES:
        problems.add(f"{here}/style", "must be one of: primary, danger")


def _check_placeholder(element: dict[str, Any], here: str, problems: _Problems) -> None:
    if element.get("placeholder") is not None:
        _check_text(element["placeholder"], f"{here}/placeholder", problems, MAX_PLACEHOLDER, True)


def _check_options(
    options: list[Any],
    here: str,
    problems: _Problems,
    *,
    allow_url: bool = False,
    plain_only: bool = True,
) -> None:
    for index, option in enumerate(options):
        where = f"{here}/{index}"
        if not isinstance(option, dict):
            problems.add(where, "must provide an object")
            continue
        _check_text(option.get("text"), f"{where}/text", problems, MAX_OPTION_TEXT, plain_only)
        value = option.get("value")
        if not isinstance(value, str) or not value or len(value) > MAX_OPTION_VALUE:
            problems.add(
                f"{where}/value", f"must be a string of 1 to {MAX_OPTION_VALUE} characters"
            )
        if option.get("description") is not None:
            _check_text(
                option["description"], f"{where}/description", problems, MAX_OPTION_TEXT, plain_only
            )
        if option.get("url") is not None and not allow_url:
            problems.add(f"{where}/url", "url is only allowed in overflow menus")


def _check_confirm(confirm: Any, here: str, problems: _Problems) -> None:
    if not isinstance(confirm, dict):
        problems.add(here, "must provide an object")
        return
    _check_text(confirm.get("title"), f"{here}/title", problems, MAX_CONFIRM_TITLE, True)
    _check_text(confirm.get("text"), f"{here}/text", problems, MAX_CONFIRM_TEXT)
    _check_text(confirm.get("confirm"), f"{here}/confirm", problems, MAX_CONFIRM_BUTTON, True)
    _check_text(confirm.get("deny"), f"{here}/deny", problems, MAX_CONFIRM_BUTTON, True)
    style = confirm.get("style")
    if style is not None and style not in BUTTON_STYLES:
        problems.add(f"{here}/style", "must be one of: primary, danger")


def _check_text(
    obj: Any, here: str, problems: _Problems, max_len: int, plain_only: bool = False
) -> None:
    """Check a text composition object: its type, and 1..max_len characters."""
    if not isinstance(obj, dict):
        problems.add(here, "must provide an object")
        return
    kind = obj.get("type")
    allowed = {"plain_text"} if plain_only else TEXT_TYPES
    if kind not in allowed:
        problems.add(f"{here}/type", f"must be one of: {', '.join(sorted(allowed))}")
    text = obj.get("text")
    if not isinstance(text, str):
        problems.add(f"{here}/text", "must be a string")
    elif len(text) == 0:
        problems.add(f"{here}/text", "must be more than 0 characters")
    elif len(text) > max_len:
        problems.add(f"{here}/text", f"must be less than {max_len + 1} characters")


def _check_list(
    value: object, here: str, problems: _Problems, min_items: int, max_items: int
) -> TypeGuard[list[Any]]:
    """Check an array's length; False when it is not an array at all."""
    if not isinstance(value, list):
        problems.add(here, "must provide an array")
        return False
    if len(value) < min_items:
        problems.add(here, f"must provide at least {min_items} items")
    if len(value) > max_items:
        problems.add(here, f"no more than {max_items} items allowed")
    return True
