"""The delivery of a process and its paging senders, built from its settings (one home).

PagerDuty and the webhook share one ``httpx.AsyncClient`` (closed with the delivery);
both link to the incident's Slack thread with ``chat.getPermalink`` through the bot's
own Web API client. Keys are handed to the senders and to nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import httpx

from bot.alerts.pagerduty import PagerDutySender
from bot.alerts.paging import PAGERDUTY, WEBHOOK, PagingTargets
from bot.alerts.webhook import WebhookSender

if TYPE_CHECKING:
    from datetime import datetime

    import aiohttp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.alerts.delivery import OutboxDelivery
    from bot.alerts.sending import Sender
    from bot.backend.client import InstanceClient
    from bot.config import PagingSettings, SlackSettings
    from bot.store.database import Database

TIMEOUT_SECS = 10.0


def permalink_of(web: AsyncWebClient) -> Callable[[str, str], Awaitable[str | None]]:
    """``(channel, ts)`` → the message's permalink, asked of Slack."""

    async def permalink(channel: str, ts: str) -> str | None:
        answer = await web.chat_getPermalink(channel=channel, message_ts=ts)
        link = answer.get("permalink")
        return str(link) if link else None

    return permalink


def paging_senders(
    settings: PagingSettings, web: AsyncWebClient, *, http: httpx.AsyncClient | None = None
) -> tuple[dict[str, Sender], PagingTargets, list[Callable[[], Awaitable[None]]]]:
    """The senders, what they page, and what to close on shutdown."""
    key = settings.pagerduty_routing_key
    secret = settings.webhook_secret
    pagerduty = key is not None and bool(key.get_secret_value())
    webhook = settings.webhook_url is not None and secret is not None
    targets = PagingTargets(pagerduty=pagerduty, webhook=webhook)
    if not targets.destinations:
        return {}, targets, []
    closers: list[Callable[[], Awaitable[None]]] = []
    if http is None:
        http = httpx.AsyncClient(timeout=TIMEOUT_SECS, follow_redirects=False)
        closers.append(http.aclose)
    link = permalink_of(web)
    senders: dict[str, Sender] = {}
    if pagerduty and key is not None:
        senders[PAGERDUTY] = PagerDutySender(
            http,
            routing_key=key.get_secret_value(),
            url=settings.pagerduty_events_url,
            permalink=link,
        )
    if webhook and settings.webhook_url is not None and secret is not None:
        senders[WEBHOOK] = WebhookSender(
            http, url=settings.webhook_url, secret=secret.get_secret_value(), permalink=link
        )
    return senders, targets, closers


def delivery_from_settings(
    settings: PagingSettings,
    db: Database,
    web: AsyncWebClient,
    *,
    clock: Callable[[], datetime],
    holder: str,
    is_leader: Callable[[], bool] | None,
    client: InstanceClient | None,
) -> tuple[OutboxDelivery, PagingTargets]:
    """The outbox delivery as the runtime runs it: Slack, the paging senders of
    ``settings``, and the diagnostics reply when there is a backend ``client``."""
    from bot.alerts.delivery import OutboxDelivery
    from bot.alerts.diagnostics import Diagnostics

    senders, targets, closers = paging_senders(settings, web)
    delivery = OutboxDelivery(
        db,
        web,
        clock=clock,
        holder=holder,
        is_leader=is_leader,
        senders=senders,
        diagnostics=Diagnostics(db, client, clock=clock) if client is not None else None,
        on_close=closers,
    )
    return delivery, targets


def slack_web(settings: SlackSettings, session: aiohttp.ClientSession | None) -> AsyncWebClient:
    """The delivery's Web API client: the bot token, ``api_url``, no retry handlers (the
    delivery decides when to try again), on ``session`` when given (connections reused)."""
    from slack_sdk.web.async_client import AsyncWebClient

    token = settings.bot_token
    return AsyncWebClient(
        token=token.get_secret_value() if token else None,
        base_url=settings.api_url,
        timeout=15,
        session=session,
        retry_handlers=[],
    )
