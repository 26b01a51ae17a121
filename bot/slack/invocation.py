"""One request from Slack as the handlers see it: who, where, how to answer, what to audit.

Answers go through :class:`Responder`: the request's ``response_url`` first (ephemeral,
or replacing the clicked message), and ``chat.postEphemeral`` when that URL fails (it
expires after 30 minutes and 5 uses), so a slow action still reaches its user.

Requests from surfaces outside any channel (App Home, modals, a global shortcut, an
instance picker's suggestions) are *private*: they carry no ``response_url`` and no
channel, so their private answers go to the user's messages with the app (a
``chat.postMessage`` to the user id), and what the team should see is announced in the
``announce_channel`` the caller names (the alert channel), if any.
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
        private: bool = False,
    ) -> None:
        self._web = web
        self._response_url = response_url
        self._channel_id = channel_id
        self._user_id = user_id
        self._private = private

    async def send(self, reply: Reply, *, replace: bool = False) -> bool:
        """Show ``reply`` to the user (``replace``: in place of the clicked message)."""
        if self._response_url and await self._via_response_url(reply, replace):
            return True
        if self._private:
            return await self._via_direct_message(reply)
        return await self._via_post_ephemeral(reply)

    async def _via_direct_message(self, reply: Reply) -> bool:
        # A post to the user id lands in the app's Messages tab: only that user reads it.
        try:
            await self._web.chat_postMessage(
                channel=self._user_id, unfurl_links=False, unfurl_media=False, **reply.kwargs()
            )
        except (SlackApiError, SlackClientError, OSError, TimeoutError) as exc:
            log.error("could not answer user %s in their messages: %s", self._user_id, exc)
            return False
        return True

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
    # App Home, a modal, a global shortcut, a suggestion: no channel the user is in (the
    # role check skips the channel list); ``channel_id`` is then where actions are announced.
    private: bool = False
    trigger_id: str | None = None
    # What an answer given in the ack (a validated form) hands on to the listener's work.
    prepared: Any = None
    # True when the request only showed something (a form, a prompt): open App Homes need
    # no refresh for it even when its action is one that changes things.
    changes_nothing: bool = False

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
        announce_channel: str | None = None,
    ) -> Invocation:
        """Read user, channel and response_url from a slash command, interaction or event.

        ``announce_channel``: where a private surface's actions are announced.
        """
        if surface_of(body) is not None:
            return cls._private(web, body, action, started, announce_channel)
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
        trigger = body.get("trigger_id")
        return cls(
            user_id or "unknown",
            channel_id,
            source,
            responder,
            draft,
            trigger_id=trigger if isinstance(trigger, str) else None,
        )

    @classmethod
    def _private(
        cls,
        web: AsyncWebClient,
        body: dict[str, Any],
        action: str,
        started: float | None,
        announce_channel: str | None,
    ) -> Invocation:
        surface = surface_of(body) or "app"
        user = body.get("user")
        if isinstance(user, dict):
            user_id = str(user.get("id") or "")
        else:  # an Events API callback: the user is in the event
            user_id = str((body.get("event") or {}).get("user") or "")
        # The audit row says which surface; there is no channel to record.
        draft = AuditDraft(
            user_id=user_id or "unknown",
            channel_id=None,
            source="button",
            action=action,
            args=surface,
            started=started if started is not None else time.perf_counter(),
        )
        responder = Responder(
            web, response_url=None, channel_id=None, user_id=user_id, private=True
        )
        trigger = body.get("trigger_id")
        return cls(
            user_id or "unknown",
            announce_channel,
            "button",
            responder,
            draft,
            private=True,
            trigger_id=trigger if isinstance(trigger, str) else None,
        )


def surface_of(body: dict[str, Any]) -> str | None:
    """``home``, ``modal``, ``shortcut`` or ``suggest`` for a request from a private surface
    (outside any channel); None for a slash command or a click on a message."""
    kind = body.get("type")
    if kind == "event_callback" or isinstance(body.get("event"), dict):
        return "home"
    if kind == "shortcut":
        return "shortcut"
    if kind in ("view_submission", "view_closed"):
        return "modal"
    container = body.get("container") or {}
    view = body.get("view") or {}
    in_view = isinstance(container, dict) and container.get("type") == "view"
    if kind == "block_suggestion":
        return "suggest"
    if kind == "block_actions" and (in_view or (isinstance(view, dict) and view.get("id"))):
        return "home" if isinstance(view, dict) and view.get("type") == "home" else "modal"
    return None
