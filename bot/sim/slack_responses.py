"""``response_url`` endpoints: where an app answers a slash command or a click later.

Slack's rules, applied here: a response_url works at most 5 times and for 30 minutes; the
body is a message (``text``, ``blocks``, ``thread_ts``) plus ``response_type``
(``ephemeral``, the default, or ``in_channel``), ``replace_original`` or ``delete_original``
(both about the message the click came from). The same content checks as ``chat.postMessage``
apply. The immediate answer to a slash command (the HTTP body of the ack) is a message too,
handled by ``apply`` with ``counted=False``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.sim.slack_checks import check_message_content, parse_json_list, truthy
from bot.sim.slack_models import Message
from bot.sim.slack_workspace import Workspace

RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_LIFETIME_S = 30 * 60


@dataclass
class ResponseUrlContext:
    """Where a response_url's messages go: the channel, the user and the clicked message."""

    token: str
    channel_id: str
    user_id: str
    created_at: float
    message_ts: str | None = None
    uses: int = 0


@dataclass
class ResponseOutcome:
    """How a post to a response_url was answered: HTTP status, error name and the message."""

    status: int
    error: str | None
    detail: list[str]
    message: Message | None = None

    @property
    def ok(self) -> bool:
        """True when the post was accepted."""
        return self.error is None


class ResponseUrls:
    """Issues response_url tokens and applies posts to them to the workspace."""

    def __init__(self, workspace: Workspace, clock: Callable[[], float]) -> None:
        self._workspace = workspace
        self._clock = clock
        self._contexts: dict[str, ResponseUrlContext] = {}

    def issue(self, *, channel_id: str, user_id: str, message_ts: str | None) -> ResponseUrlContext:
        """A fresh, unguessable response_url token for this channel, user and message."""
        token = secrets.token_urlsafe(12)
        context = ResponseUrlContext(
            token=token,
            channel_id=channel_id,
            user_id=user_id,
            created_at=self._clock(),
            message_ts=message_ts,
        )
        self._contexts[token] = context
        return context

    def get(self, token: str) -> ResponseUrlContext | None:
        """The context behind a token, if the emulator issued it."""
        return self._contexts.get(token)

    def clear(self) -> None:
        """Forget every issued token."""
        self._contexts.clear()

    def post(self, token: str, body: dict[str, Any]) -> ResponseOutcome:
        """Apply one POST to the response_url ``token``, counting it against the URL's limits."""
        context = self._contexts.get(token)
        if context is None:
            return ResponseOutcome(404, "no_service", ["this response_url was never issued"])
        if self._clock() - context.created_at > RESPONSE_URL_LIFETIME_S:
            return ResponseOutcome(404, "expired_url", ["response_url is older than 30 minutes"])
        if context.uses >= RESPONSE_URL_MAX_USES:
            return ResponseOutcome(404, "used_url", ["response_url was already used 5 times"])
        outcome = self.apply(context, body)
        if outcome.ok:
            context.uses += 1
        return outcome

    def apply(self, context: ResponseUrlContext, body: dict[str, Any]) -> ResponseOutcome:
        """Turn a response body into a workspace change (new, replaced or deleted message)."""
        original = (
            self._workspace.find_any(context.message_ts) if context.message_ts is not None else None
        )
        if truthy(body.get("delete_original")):
            if original is None:
                return ResponseOutcome(404, "message_not_found", ["no original message to delete"])
            self._workspace.delete(original)
            return ResponseOutcome(200, None, [], original)
        check = check_message_content(
            text=body.get("text"), blocks=body.get("blocks"), attachments=body.get("attachments")
        )
        if not check.ok:
            return ResponseOutcome(400, check.error, check.detail)
        blocks, _ = parse_json_list(body.get("blocks"))
        text = body.get("text") or ""
        if truthy(body.get("replace_original")) and original is not None:
            # A replacement is the whole new message: blocks left out are gone.
            message = self._workspace.replace(original, text=text, blocks=blocks or [])
            return ResponseOutcome(200, None, [], message)
        thread_ts = body.get("thread_ts") or None
        if body.get("response_type") == "in_channel":
            parent = (
                self._workspace.thread_parent(context.channel_id, thread_ts) if thread_ts else None
            )
            if thread_ts and parent is None:
                return ResponseOutcome(404, "thread_not_found", [f"no message {thread_ts}"])
            message = self._workspace.post(
                context.channel_id,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                source="response_url",
            )
        else:
            message = self._workspace.post_ephemeral(
                context.channel_id,
                context.user_id,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                source="response_url",
            )
        return ResponseOutcome(200, None, [], message)
