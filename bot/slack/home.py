"""The App Home tab: gathered, published with ``views.publish``, refreshed on change.

A user's Home is published when they open it (``app_home_opened``) or page it, and again
when something it shows changes: an action through the bot (the listener pipeline calls
:meth:`HomeService.changed` after each one that changes an instance, a mute or an
incident) or a status change the health monitor records. Refreshes are debounced: the
changes of one window (``slack.home_refresh_secs``) refresh each open Home once, and
publishes are spaced to stay within Slack's ``views.publish`` rate (Tier 4: 100 a minute).

Only the Homes this process published are refreshed (the most recent ``MAX_VIEWERS``
users): another replica refreshes its own; a Home nobody reopens for a long time simply
shows its "updated" time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts.maintenance_blocks import window_line
from bot.backend.errors import BackendError
from bot.slack.access import Access
from bot.slack.blocks.home import HomeData, MuteLine, RecentAction, home_view
from bot.slack.deps import SlackDeps
from bot.store.audit import AuditLog

log = logging.getLogger(__name__)

#: Slack's Tier 4 allows 100+ ``views.publish`` a minute per workspace; stay at 100.
PUBLISH_PER_MINUTE = 100
MAX_VIEWERS = 500
#: Maintenance windows shown: running and planned ones (ended and cancelled are history).
SHOWN_WINDOW_STATES = ("active", "scheduled")
#: Audit actions after which open Homes are refreshed (what a Home shows changed).
CHANGING_ACTIONS = frozenset(
    {"create", "pause", "restart", "kill", "mute", "unmute", "acknowledge"}
)


class PublishPacer:
    """Spaces publishes ``60 / per_minute`` seconds apart (the first goes at once)."""

    def __init__(self, per_minute: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._gap = 60.0 / per_minute
        self._monotonic = monotonic
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Wait for this publish's turn."""
        async with self._lock:
            delay = self._next - self._monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = self._monotonic() + self._gap


class HomeService:
    """Publishes users' Homes; remembers who has one open so changes refresh it."""

    def __init__(
        self,
        deps: SlackDeps,
        access: Access,
        audit: AuditLog,
        *,
        refresh_secs: float,
        per_minute: int = PUBLISH_PER_MINUTE,
    ) -> None:
        self._deps = deps
        self._access = access
        self._audit = audit
        self._refresh_secs = refresh_secs
        self._pacer = PublishPacer(per_minute)
        self._viewers: OrderedDict[str, int] = OrderedDict()  # user id → page shown
        self._pending: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.published = 0  # views.publish calls that succeeded (tests, metrics)

    @property
    def web(self) -> AsyncWebClient:
        """The Web API client the Home is published with."""
        return self._deps.web

    def page_of(self, user_id: str) -> int:
        """The fleet page ``user_id`` is looking at."""
        return self._viewers.get(user_id, 0)

    async def show(self, user_id: str, *, page: int | None = None) -> bool:
        """Publish ``user_id``'s Home now (they opened it or paged it); False: Slack refused."""
        self._remember(user_id, self.page_of(user_id) if page is None else max(page, 0))
        self._pending.discard(user_id)
        return await self.publish(user_id)

    def changed(self) -> None:
        """Something a Home shows changed: refresh every open Home once, debounced."""
        if not self._viewers:
            return
        self._pending.update(self._viewers)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._refresh_soon(), name="starpod-home-refresh"
            )

    def on_status_change(self, _instance_id: str, _status: str, _health: Any) -> None:
        """The monitor's status-change callback: a Home shows statuses."""
        self.changed()

    async def aclose(self) -> None:
        """Stop a pending refresh (shutdown)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def publish(self, user_id: str) -> bool:
        """Gather and publish ``user_id``'s Home; False (logged) when Slack refused it."""
        view = home_view(await self.gather(user_id))
        await self._pacer.wait()
        try:
            await self._deps.web.views_publish(user_id=user_id, view=view)
        except (SlackApiError, SlackClientError, OSError, TimeoutError) as exc:
            log.warning("could not publish the App Home of %s: %s", user_id, exc)
            return False
        self.published += 1
        return True

    async def gather(self, user_id: str) -> HomeData:
        """What ``user_id``'s Home shows, read now (the fleet from the short fleet cache)."""
        deps = self._deps
        role = await self._access.role_of(user_id)
        data = HomeData(
            user_id=user_id,
            role=role.label if role is not None else None,
            now=deps.clock(),
            fleet=None,
            page=self.page_of(user_id),
        )
        if role is None:
            return data
        try:
            data.fleet, _ = await deps.backend.fleet.get()
        except BackendError as exc:
            data.fleet_error = str(exc)
        alerts = deps.alerts
        if alerts is not None:
            data.incidents = list(await alerts.open_incidents())
            mutes_in_force = getattr(getattr(alerts, "silences", None), "in_force", None)
            if callable(mutes_in_force):
                data.mutes = [
                    MuteLine(m.instance_id, m.instance_name, m.until, m.no_restart, m.actor)
                    for m in await mutes_in_force()
                ]
            windows = getattr(getattr(alerts, "maintenance", None), "listing", None)
            if callable(windows):
                data.maintenance = [
                    window_line(w, data.now)
                    for w in await windows()
                    if w.state(data.now) in SHOWN_WINDOW_STATES
                ]
        data.recent = _recent(await self._audit.latest(user_id=user_id, limit=5))
        return data

    def _remember(self, user_id: str, page: int) -> None:
        self._viewers[user_id] = page
        self._viewers.move_to_end(user_id)
        while len(self._viewers) > MAX_VIEWERS:
            self._viewers.popitem(last=False)

    async def _refresh_soon(self) -> None:
        # Changes keep arriving while a round publishes: loop until a window stays quiet.
        while self._pending:
            await asyncio.sleep(self._refresh_secs)
            users, self._pending = self._pending, set()
            # The change is what the Home must show: not a fleet list from before it.
            self._deps.backend.fleet.invalidate()
            for user_id in users:
                try:
                    await self.publish(user_id)
                except Exception:
                    log.exception("refreshing the App Home of %s failed", user_id)


def _recent(entries: Sequence[Any]) -> list[RecentAction]:
    return [
        RecentAction(at=_aware(e.at), action=e.action, instance_id=e.instance_id, result=e.result)
        for e in entries
    ]


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored as UTC).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
