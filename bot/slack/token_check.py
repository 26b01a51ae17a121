"""Does Slack accept the bot token? ``auth.test`` at start and for the readiness probe.

(The app token of Socket Mode is checked where it is used: bot/slack/socket_mode.py.)
"""

from __future__ import annotations

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError, StarpodBotError


class SlackTokenRejected(ConfigError):
    """``auth.test`` refused the bot token: it is wrong, revoked, or for another workspace."""


class SlackAppTokenRejected(ConfigError):
    """``apps.connections.open`` refused ``SLACK_APP_TOKEN`` for good (Socket Mode)."""


class SlackUnreachable(StarpodBotError):
    """The Slack Web API did not answer ``auth.test``."""


async def slack_auth_problem(web: AsyncWebClient) -> str | None:
    """None when ``auth.test`` accepts the token, else a line saying what is wrong.

    Raises :class:`SlackUnreachable` when Slack does not answer at all.
    """
    from slack_sdk.errors import SlackApiError, SlackClientError

    try:
        await web.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        return (
            f"Slack rejected SLACK_BOT_TOKEN (auth.test: {error or 'unknown error'}): "
            "check the bot token of the installed app"
        )
    except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise SlackUnreachable(
            f"Slack Web API at {web.base_url} did not answer auth.test: {exc or type(exc).__name__}"
        ) from None
    return None


async def slack_auth_now(web: AsyncWebClient) -> str | None:
    """Like :func:`slack_auth_problem`, with an unreachable Slack as the problem's line."""
    try:
        return await slack_auth_problem(web)
    except SlackUnreachable as exc:
        return str(exc)
