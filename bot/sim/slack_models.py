"""Records kept by the Slack emulator: calls, messages, response_url posts, uploads.

Every record is a plain dataclass with a ``to_dict()`` that returns JSON-serialisable data,
so a test can assert on attributes and a web playground can render the same state as JSON.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0EMULATOR"
TEAM_ID = "T0EMULATOR"
TEAM_DOMAIN = "emulator"


class SlackAckTimeout(TimeoutError):
    """The bot did not answer a request from "Slack" within the 3 s Slack waits."""


@dataclass
class ApiCall:
    """One Web API request as the emulator received and answered it.

    ``args`` merges query string, form fields and JSON body (the token is left out).
    ``injected`` marks answers forced by ``fail_next``/``set_fault_rate``: those are not the
    caller's fault, so ``violations()`` skips them.
    """

    seq: int
    method: str
    args: dict[str, Any]
    ok: bool
    error: str | None
    at: float
    status: int = 200
    injected: bool = False
    detail: list[str] = field(default_factory=list)
    response: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the call as JSON-serialisable data."""
        return {
            "seq": self.seq,
            "method": self.method,
            "args": _jsonable(self.args),
            "ok": self.ok,
            "error": self.error,
            "at": self.at,
            "status": self.status,
            "injected": self.injected,
            "detail": list(self.detail),
        }


@dataclass
class MessageVersion:
    """A message's content before one edit (``chat.update`` or ``replace_original``)."""

    text: str
    blocks: list[dict[str, Any]]
    replaced_at: float

    def to_dict(self) -> dict[str, Any]:
        """Return the version as JSON-serialisable data."""
        return {
            "text": self.text,
            "blocks": copy.deepcopy(self.blocks),
            "replaced_at": self.replaced_at,
        }


def _texts(value: Any, *, only_type: str | None) -> list[str]:
    """Every ``text`` string in a block tree (of ``only_type`` text objects when given)."""
    found: list[str] = []
    if isinstance(value, dict):
        text = value.get("text")
        if isinstance(text, str) and (only_type is None or value.get("type") == only_type):
            found.append(text)
        for item in value.values():
            if isinstance(item, dict | list):
                found.extend(_texts(item, only_type=only_type))
    elif isinstance(value, list):
        for item in value:
            found.extend(_texts(item, only_type=only_type))
    return found


@dataclass
class Message:
    """A message as the emulated workspace stores it.

    ``thread_ts`` is set on replies (the parent's ts); a parent keeps its replies in ``replies``.
    ``ephemeral_for`` is the only user who sees an ephemeral message (None: everyone).
    ``edits`` holds previous versions, oldest first.
    """

    ts: str
    channel: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    user: str = BOT_USER_ID
    edits: list[MessageVersion] = field(default_factory=list)
    replies: list[Message] = field(default_factory=list)
    ephemeral_for: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    reply_broadcast: bool = False
    metadata: dict[str, Any] | None = None
    source: str = "api"  # "api" (chat.*), "response_url" or "file_share"

    def visible_text(self) -> str:
        """Everything a user can read: the fallback text and every text in the blocks."""
        return "\n".join([self.text, *_texts(self.blocks, only_type=None)])

    def mrkdwn_text(self) -> str:
        """What Slack parses for mentions and links: the fallback and every mrkdwn object."""
        return "\n".join([self.text, *_texts(self.blocks, only_type="mrkdwn")])

    @property
    def edited(self) -> bool:
        """True once the message was changed after posting."""
        return bool(self.edits)

    def to_api(self) -> dict[str, Any]:
        """Return the message the way Slack's API shows it (in answers and payloads)."""
        data: dict[str, Any] = {
            "type": "message",
            "user": self.user,
            "ts": self.ts,
            "text": self.text,
            "team": TEAM_ID,
        }
        if self.user == BOT_USER_ID:
            data["bot_id"] = BOT_ID
            data["app_id"] = APP_ID
        if self.blocks:
            data["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments:
            data["attachments"] = copy.deepcopy(self.attachments)
        if self.files:
            data["files"] = copy.deepcopy(self.files)
            data["upload"] = False
        if self.thread_ts is not None:
            data["thread_ts"] = self.thread_ts
        if self.replies:
            data["thread_ts"] = self.ts
            data["reply_count"] = len(self.replies)
            data["latest_reply"] = self.replies[-1].ts
        if self.edits:
            data["edited"] = {"user": self.user, "ts": self.ts}
        if self.metadata is not None:
            data["metadata"] = copy.deepcopy(self.metadata)
        return data

    def to_dict(self) -> dict[str, Any]:
        """Return the full stored state (including replies and edit history) as plain data."""
        return {
            "ts": self.ts,
            "channel": self.channel,
            "text": self.text,
            "blocks": copy.deepcopy(self.blocks),
            "thread_ts": self.thread_ts,
            "user": self.user,
            "edits": [version.to_dict() for version in self.edits],
            "replies": [reply.to_dict() for reply in self.replies],
            "ephemeral_for": self.ephemeral_for,
            "files": copy.deepcopy(self.files),
            "attachments": copy.deepcopy(self.attachments),
            "reply_broadcast": self.reply_broadcast,
            "source": self.source,
        }


@dataclass
class ResponsePost:
    """One POST to a ``response_url`` served by the emulator."""

    seq: int
    token: str
    body: dict[str, Any]
    ok: bool
    error: str | None
    at: float
    status: int = 200
    detail: list[str] = field(default_factory=list)
    message: Message | None = None  # the message it created or replaced, if any

    def to_dict(self) -> dict[str, Any]:
        """Return the post as JSON-serialisable data."""
        return {
            "seq": self.seq,
            "token": self.token,
            "body": _jsonable(self.body),
            "ok": self.ok,
            "error": self.error,
            "at": self.at,
            "status": self.status,
            "detail": list(self.detail),
            "message_ts": self.message.ts if self.message else None,
        }


@dataclass
class UploadedFile:
    """A file whose upload finished with ``files.completeUploadExternal``."""

    file_id: str
    filename: str
    title: str
    content: bytes
    channel_id: str | None
    thread_ts: str | None
    initial_comment: str | None
    at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the file's metadata as plain data (content as text, replaced if not UTF-8)."""
        return {
            "file_id": self.file_id,
            "filename": self.filename,
            "title": self.title,
            "size": len(self.content),
            "content": self.content.decode("utf-8", errors="replace"),
            "channel_id": self.channel_id,
            "thread_ts": self.thread_ts,
            "initial_comment": self.initial_comment,
            "at": self.at,
        }


@dataclass
class BotReply:
    """What the bot answered to a request the emulator sent it (slash command, click, view).

    Shaped like ``httpx.Response`` where it matters: ``status_code``, ``text``, ``headers``,
    ``json()``.
    """

    status_code: int
    text: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def status(self) -> int:
        """The HTTP status (aiohttp's name for it)."""
        return self.status_code

    def json(self) -> Any:
        """Parse the body as JSON (an empty body is ``None``)."""
        return json.loads(self.text) if self.text.strip() else None


def _jsonable(value: Any) -> Any:
    """Turn recorded request arguments into JSON-serialisable data (bytes become text)."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
