"""Slack's message limits, enforced in one place, and the :class:`Reply` every builder returns.

Builders page and split their own content (a list is paged, logs are split or uploaded);
:func:`fit_blocks` is the last guard before anything is sent. It never cuts silently:
oversized section text is split into several sections, and blocks past the 50th are
replaced by one visible line saying how many were left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.blockkit.mrkdwn import escape

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_ID = 255
MAX_CONTEXT_ELEMENTS = 10
MAX_CONFIRM_TEXT = 300
# The notification/fallback text: Slack allows 40,000; a phone preview shows far less.
MAX_FALLBACK_TEXT = 3000

ELLIPSIS = "…"


@dataclass(frozen=True)
class Reply:
    """A message ready to send: a ``text`` fallback (never empty) and Block Kit blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``chat.postMessage``/``chat.update``/``respond``.

        The blocks are shared, not copied: senders only serialise them (a deep copy per
        answer was the largest cost of a `/starpod list`).
        """
        return {"text": self.text, "blocks": self.blocks}


def truncate(text: str, limit: int) -> str:
    """Shorten a *label* (button, option, header) to ``limit`` with a visible ellipsis.

    Only for labels: content (logs, lists) is split or uploaded, never truncated.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def split_text(text: str, limit: int = MAX_SECTION_TEXT) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` characters, at line ends when possible.

    Joining the pieces with newlines gives the text back (a line longer than ``limit``
    is cut into several lines).
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        parts = [line[i : i + limit] for i in range(0, len(line), limit)] or [""]
        for part in parts:
            extra = len(part) + (1 if current else 0)
            if current and size + extra > limit:
                pieces.append("\n".join(current))
                current, size = [], 0
                extra = len(part)
            current.append(part)
            size += extra
    if current:
        pieces.append("\n".join(current))
    return pieces or [""]


def fallback(text: str) -> str:
    """A non-empty, escaped fallback ``text`` within the limit.

    Slack parses this text for mentions (it is what notifications show), so it is escaped
    here, exactly once: builders pass it plain, with names and errors as the backend sent
    them and users as ids, never mrkdwn (``mrkdwn.plain`` turns a section's mrkdwn into it).
    """
    clean = escape(" ".join(text.split()) or "starpod")
    return truncate(clean, MAX_FALLBACK_TEXT)


def reply(text: str, blocks: Iterable[dict[str, Any]] = ()) -> Reply:
    """A :class:`Reply` whose blocks pass :func:`fit_blocks` and whose text is never empty."""
    return Reply(fallback(text), fit_blocks(list(blocks)))


def fit_blocks(
    blocks: list[dict[str, Any]], *, max_blocks: int = MAX_BLOCKS
) -> list[dict[str, Any]]:
    """Return blocks that respect Slack's limits, without losing content silently.

    - a section whose text is too long becomes several sections (the accessory stays on
      the first);
    - labels (header, button, option text) are shortened with an ellipsis;
    - past ``max_blocks``, the tail is replaced by a context line saying what was left out.

    It takes ownership of ``blocks``: labels are shortened in place.
    """
    fitted: list[dict[str, Any]] = []
    for block in blocks:
        # Blocks come fresh from the builders, so fixing them in place is safe and cheap.
        fitted.extend(_fit_block(block))
    if len(fitted) > max_blocks:
        hidden = len(fitted) - (max_blocks - 1)
        fitted = fitted[: max_blocks - 1]
        fitted.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"{ELLIPSIS} {hidden} more blocks not shown: Slack shows at "
                        f"most {max_blocks} per message. Narrow the request to see them.",
                    }
                ],
            }
        )
    return fitted


def _fit_block(block: dict[str, Any]) -> list[dict[str, Any]]:
    kind = block.get("type")
    if kind == "header":
        _fit_text(block.get("text"), MAX_HEADER_TEXT)
        return [block]
    if kind == "section":
        return _fit_section(block)
    if kind == "context":
        for element in block.get("elements", []):
            _fit_text(element, MAX_SECTION_TEXT)
        block["elements"] = block.get("elements", [])[:MAX_CONTEXT_ELEMENTS]
        return [block]
    if kind == "actions":
        for element in block.get("elements", []):
            _fit_element(element)
        return [block]
    return [block]


def _fit_section(block: dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(block.get("accessory"), dict):
        _fit_element(block["accessory"])
    if "fields" in block:
        block["fields"] = block["fields"][:MAX_FIELDS]
        for item in block["fields"]:
            _fit_text(item, MAX_FIELD_TEXT)
    text_obj = block.get("text")
    if not isinstance(text_obj, dict) or len(text_obj.get("text", "")) <= MAX_SECTION_TEXT:
        return [block]
    pieces = split_text(text_obj["text"], MAX_SECTION_TEXT)
    first = dict(block, text=dict(text_obj, text=pieces[0]))
    rest = [
        {"type": "section", "text": {"type": text_obj.get("type", "mrkdwn"), "text": piece}}
        for piece in pieces[1:]
    ]
    if "block_id" in block:
        for index, extra in enumerate(rest, start=1):
            extra["block_id"] = truncate(f"{block['block_id']}.{index}", MAX_ID)
    return [first, *rest]


def _fit_element(element: dict[str, Any]) -> None:
    kind = element.get("type")
    if kind == "button":
        _fit_text(element.get("text"), MAX_BUTTON_TEXT)
    for option in element.get("options", []) or []:
        _fit_text(option.get("text"), MAX_OPTION_TEXT)
    confirm = element.get("confirm")
    if isinstance(confirm, dict):
        _fit_text(confirm.get("text"), MAX_CONFIRM_TEXT)


def _fit_text(obj: Any, limit: int) -> None:
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        obj["text"] = truncate(obj["text"], limit) if obj["text"] else " "
