"""Who may do what: viewer < operator < admin, from Slack user ids and user-group ids.

Configured in ``[access]`` (``settings.access``): lists of ``U…`` user ids or ``S…`` group
ids per role, and optionally the channels where commands are accepted. A user's role is
the highest list they appear in, directly or through a group. Group members come from
``usergroups.users.list``, cached for a few minutes; when Slack cannot be asked, the last
known members are used (or none, which only ever denies).

With no role lists configured, every member is an operator, and ``kill`` (admin when
access is configured) is allowed to operators too, still only after its confirmation:
that is what ``slack-ux.md`` promises for a fresh install.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blockkit.mrkdwn import channel
from bot.catalog import ACKNOWLEDGE_ROLE, SPECS, Role, Subcommand
from bot.config import AccessSettings
from bot.errors import AccessDenied

log = logging.getLogger(__name__)

DEFAULT_GROUP_TTL = 300.0


def needed_role(action: str, *, configured: bool) -> Role:
    """The role an action needs: a subcommand name, or ``acknowledge``."""
    if action == "acknowledge":
        return ACKNOWLEDGE_ROLE
    try:
        sub = Subcommand(action)
    except ValueError:
        return Role.ADMIN  # unknown actions are the most restricted
    role = SPECS[sub].role
    if not configured and role is Role.ADMIN:
        return Role.OPERATOR
    return role


@dataclass
class _Group:
    members: frozenset[str]
    fetched_at: float


class Access:
    """Resolves roles and refuses what a role does not allow."""

    def __init__(
        self,
        settings: AccessSettings,
        web: AsyncWebClient,
        *,
        group_ttl: float = DEFAULT_GROUP_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._web = web
        self._ttl = group_ttl
        self._monotonic = monotonic
        self._groups: dict[str, _Group] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def configured(self) -> bool:
        """True when any role list is set."""
        return self._settings.configured

    async def role_of(self, user_id: str) -> Role | None:
        """The user's highest role, or None when they have none."""
        if not self.configured:
            return Role.OPERATOR
        s = self._settings
        for role, ids in (
            (Role.ADMIN, s.admins),
            (Role.OPERATOR, s.operators),
            (Role.VIEWER, s.viewers),
        ):
            if user_id in ids:
                return role
        for role, ids in (
            (Role.ADMIN, s.admins),
            (Role.OPERATOR, s.operators),
            (Role.VIEWER, s.viewers),
        ):
            for group_id in ids:
                if group_id.startswith("S") and user_id in await self._members(group_id):
                    return role
        return None

    def channel_allowed(self, channel_id: str | None) -> bool:
        """True when commands are accepted in ``channel_id`` (no list: everywhere)."""
        allowed = self._settings.channels
        return not allowed or (channel_id is not None and channel_id in allowed)

    async def check(
        self, user_id: str, channel_id: str | None, action: str, *, anywhere: bool = False
    ) -> Role:
        """The user's role if it allows ``action`` here; otherwise AccessDenied saying why.

        ``anywhere``: the request comes from outside any channel (App Home, a modal, a
        global shortcut); the channel list limits where commands are typed in front of
        others, so it does not apply there. Roles always do.
        """
        needed = needed_role(action, configured=self.configured)
        if action != Subcommand.HELP and not anywhere and not self.channel_allowed(channel_id):
            where = ", ".join(channel(c) for c in self._settings.channels)
            raise AccessDenied(
                f"Starpod commands are accepted in {where} only.", needed_role=needed.label
            )
        role = await self.role_of(user_id)
        if role is None or role < needed:
            you = f"your role is {role.label}" if role is not None else "you have no role"
            raise AccessDenied(
                f"You need the {needed.label} role to {_verb(action)} ({you}). "
                "Ask an admin of the bot to add you.",
                needed_role=needed.label,
            )
        return role

    async def _members(self, group_id: str) -> frozenset[str]:
        cached = self._groups.get(group_id)
        if cached is not None and self._monotonic() - cached.fetched_at < self._ttl:
            return cached.members
        # One fetch per group at a time: a burst of clicks must not fan out to Slack.
        lock = self._locks.setdefault(group_id, asyncio.Lock())
        async with lock:
            cached = self._groups.get(group_id)
            if cached is not None and self._monotonic() - cached.fetched_at < self._ttl:
                return cached.members
            try:
                response = await self._web.usergroups_users_list(usergroup=group_id)
                members = frozenset(str(u) for u in response.get("users") or [])
            except (SlackApiError, SlackClientError, OSError, TimeoutError) as exc:
                log.warning("could not read members of user group %s: %s", group_id, exc)
                if cached is not None:
                    return cached.members  # stale beats nobody
                return frozenset()
            self._groups[group_id] = _Group(members, self._monotonic())
            return members


def _verb(action: str) -> str:
    if action == "acknowledge":
        return "acknowledge incidents"
    return f"use `/starpod {action}`"
