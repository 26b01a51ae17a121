"""One request from Slack as the handlers see it: who, where, how to answer, what to audit.

Answers go through :class:`Responder`: the request's ``response_url`` first (ephemeral,
or replacing the clicked message), and ``chat.postEphemeral`` when that URL fails (it
expires after 30 minutes and 5 uses), so a slow action still reaches its user.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.blockkit.limits import Reply
from bot.slack.deps import wire_logger
from bot.store.audit import AuditDraft

log = logging.getLogger(__name__)

MAX_AUDIT_ARGS = 500


class Responder:
    """Sends ephemeral answers to the user who asked."""

    def __init__(
        self,
        web: AsyncWebClient,
        *,
        response_url: str | None,
        channel_id: str | None,
        user_id: str,
    ) -> None:
        self._web = web
        self._response_url = response_url
        self._channel_id = channel_id
        self._user_id = user_id

    async def send(self, reply: Reply, *, replace: bool = False) -> bool:
        """Show ``reply`` to the user (``replace``: in place of the clicked message)."""
        if self._response_url and await self._via_response_url(reply, replace):
            return True
        return await self._via_post_ephemeral(reply)

    async def _via_response_url(self, reply: Reply, replace: bool) -> bool:
        assert self._response_url is not None
        client = AsyncWebhookClient(
            url=self._response_url,
            session=self._web.session,
            logger=wire_logger(),
            retry_handlers=[AsyncConnectionErrorRetryHandler(), AsyncServerErrorRetryHandler()],
        )
        body: dict[str, Any] = {
            **reply.kwargs(),
            "response_type": "ephemeral",
            "replace_original": replace,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        try:
            response = await client.send_dict(body)
        except (SlackClientError, OSError, TimeoutError) as exc:
            log.warning("response_url post failed: %s", exc)
            return False
        if response.status_code != 200:
            log.warning("response_url answered %s: %s", response.status_code, response.body[:200])
            return False
        return True

    async def _via_post_ephemeral(self, reply: Reply) -> bool:
        if not self._channel_id:
            log.error("could not answer user %s: no response_url and no channel", self._user_id)
            return False
        try:
            await self._web.chat_postEphemeral(
                channel=self._channel_id, user=self._user_id, **reply.kwargs()
            )
        except (SlackApiError, SlackClientError, OSError, TimeoutError) as exc:
            log.error("could not answer user %s in %s: %s", self._user_id, self._channel_id, exc)
            return False
        return True


@dataclass
class Invocation:
    """Who asked, where, how to answer them, and the audit row being filled in."""

    user_id: str
    channel_id: str | None
    source: str  # "slash" or "button"
    responder: Responder
    draft: AuditDraft

    async def respond(self, reply: Reply, *, replace: bool = False) -> bool:
        """Answer the user privately."""
        return await self.responder.send(reply, replace=replace)

    @classmethod
    def from_body(
        cls,
        web: AsyncWebClient,
        body: dict[str, Any],
        *,
        action: str,
        started: float | None = None,
    ) -> Invocation:
        """Read user, channel and response_url from a slash command or interaction body."""
        user = body.get("user")
        if isinstance(user, dict):  # interactions
            user_id = str(user.get("id") or "")
            channel = body.get("channel") or {}
            channel_id = channel.get("id") if isinstance(channel, dict) else None
            container = body.get("container") or {}
            channel_id = channel_id or container.get("channel_id")
            source = "button"
            args = None
        else:  # slash commands
            user_id = str(body.get("user_id") or "")
            channel_id = body.get("channel_id")
            source = "slash"
            args = str(body.get("text") or "")[:MAX_AUDIT_ARGS] or None
        draft = AuditDraft(
            user_id=user_id or "unknown",
            channel_id=channel_id,
            source=source,
            action=action,
            args=args,
            started=started if started is not None else time.perf_counter(),
        )
        responder = Responder(
            web, response_url=body.get("response_url"), channel_id=channel_id, user_id=user_id
        )
        return cls(user_id or "unknown", channel_id, source, responder, draft)
