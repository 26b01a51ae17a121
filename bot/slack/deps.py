"""What the Slack app needs from the rest of the bot, passed in (never imported globally).

``SlackDeps`` is built by the runtime once the database, backend client and monitor are
open; ``create_app(settings, deps)`` wires them into the Bolt app. ``Alerts`` is the seam
the alerts feature plugs into; until it does, mute/unmute/incidents say so plainly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot import __version__

if TYPE_CHECKING:
    from bot.backend.client import InstanceClient
    from bot.config import Settings
    from bot.instances import InstanceActions
    from bot.slack.blocks.status import MonitorStatusLike
    from bot.store.database import Database
    from bot.store.ssh_links import SshLinkService

Clock = Callable[[], datetime]

WIRE_LOGGER = "bot.slack.wire"


def wire_logger() -> logging.Logger:
    """The logger slack-sdk clients get: INFO unless someone deliberately lowers it.

    At DEBUG, slack-sdk logs every request body, and ssh answers carry one-time key links;
    operators who want wire traces set ``bot.slack.wire`` to DEBUG knowingly.
    """
    logger = logging.getLogger(WIRE_LOGGER)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return logger


def utc_now() -> datetime:
    """The default clock: the current time, timezone-aware UTC."""
    return datetime.now(UTC)


@runtime_checkable
class Alerts(Protocol):
    """The alerts feature, as the Slack commands and buttons use it.

    Results are free-form (the alerts service returns its own result objects); the Slack
    side reads ``was_muted`` (unmute) and ``replaced`` (mute) when they are there.
    """

    async def mute(self, instance_id: str, until: datetime, no_restart: bool, actor: str) -> Any:
        """Silence alerts for ``instance_id`` until ``until`` (and skip auto-restarts)."""

    async def unmute(self, instance_id: str, actor: str) -> Any:
        """Alerts on again for ``instance_id``."""

    async def open_incidents(self) -> Sequence[Any]:
        """Open incidents; each shown by its ``summary``/``title`` attribute or ``str()``."""

    async def acknowledge(self, incident_id: str, actor: str) -> Any:
        """Mark an incident acknowledged by ``actor``."""

    async def reset_restart_budget(self, instance_id: str, actor: str, *, source: str) -> Any:
        """Give the instance its auto-restart budget back (``incident_id``: the one told)."""


class MonitorLike(Protocol):
    """The health monitor, as `/starpod status` reads it."""

    def status(self) -> MonitorStatusLike:
        """The monitor's own state (``bot.monitor.events.MonitorStatus``)."""


@dataclass
class SlackDeps:
    """Everything the Slack app talks to.

    ``web`` must be the same client Bolt uses (``create_app`` passes it as ``client=``);
    build it with :func:`build_web_client`. ``clock`` returns aware datetimes.
    ``action_poll_interval``/``action_poll_timeout`` bound how long an announcement waits
    for the backend to reach the new status before saying it is still in progress.
    ``actions`` is the process's instance-action service when the runtime shares one
    (default: one built on ``backend`` and ``db``).
    """

    backend: InstanceClient
    db: Database
    web: AsyncWebClient
    ssh_links: SshLinkService
    clock: Clock = utc_now
    monitor: MonitorLike | None = None
    alerts: Alerts | None = None
    action_poll_interval: float = 1.0
    action_poll_timeout: float = 30.0
    list_page_size: int = 20
    group_cache_secs: float = 300.0
    # Requests doing their work at once (acks never wait for this): see bot/slack/slots.py.
    work_slots: int = 8
    version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict)
    actions: InstanceActions | None = None


def build_web_client(
    settings: Settings,
    *,
    session: aiohttp.ClientSession | None = None,
    max_rate_limit_retries: int = 3,
) -> AsyncWebClient:
    """The Slack Web API client: bot token, ``settings.slack.api_url``, and retries.

    It retries rate limits (429, waiting ``Retry-After``), server errors (500/503) and
    dropped connections with slack-sdk's built-in handlers. Pass an ``aiohttp`` session
    opened by the runtime to reuse connections (one per process).
    """
    token = settings.slack.bot_token.get_secret_value() if settings.slack.bot_token else None
    return AsyncWebClient(
        token=token,
        base_url=settings.slack.api_url,
        session=session,
        logger=wire_logger(),
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=max_rate_limit_retries),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )
