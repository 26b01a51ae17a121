"""The emulated workspace's state: channels, user groups, messages, threads, ephemerals.

No I/O here; the HTTP layer in ``bot.sim.slack`` checks requests, then calls these methods.
Every change calls ``on_change`` so watchers (``SlackEmulator.events``) can wake up.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from bot.sim.slack_models import BOT_USER_ID, Message, MessageVersion


def default_channel_name(channel_id: str) -> str:
    """A readable name for an id: ``C0ALERTS`` → ``alerts``."""
    name = channel_id[2:] if channel_id[:2] in ("C0", "G0", "D0") else channel_id
    return name.lower() or channel_id.lower()


def is_conversation_id(value: str) -> bool:
    """True for conversation ids (``C…`` channel, ``G…`` group, ``D…`` DM, ``Z…``): the only
    ids ``files.completeUploadExternal`` accepts, as on Slack (which also wants 9+ characters;
    the emulator's short ids such as ``C0OPS`` are let through)."""
    return len(value) > 1 and value[0] in "CGDZ" and value[1:].isalnum() and value.isupper()


def dm_id_for(user_id: str) -> str:
    """The DM conversation id ``conversations.open`` gives for a user: ``U0OPS`` → ``D0OPS``."""
    return "D" + user_id[1:]


def is_user_id(value: str) -> bool:
    """True for user ids (``U…``/``W…``), which ``chat.postMessage`` accepts as DM targets."""
    return len(value) > 1 and value[0] in "UW" and value[1:].isalnum() and value.isupper()


class Workspace:
    """Messages by channel, with ts strictly increasing as on Slack."""

    def __init__(self, clock: Callable[[], float], on_change: Callable[[], None]) -> None:
        self._clock = clock
        self._on_change = on_change
        self.channels: dict[str, str] = {}  # id -> name
        self.usergroups: dict[str, list[str]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.dms: dict[str, str] = {}  # DM id (D…) -> user id, opened by conversations.open
        self.deleted: list[Message] = []
        self._top: dict[str, list[Message]] = {}
        self._by_key: dict[tuple[str, str], Message] = {}
        self._ephemeral: list[Message] = []
        self._last_micros = 0

    # -- ids -------------------------------------------------------------------------------

    def next_ts(self) -> str:
        """A fresh message ts from the clock, strictly greater than every earlier one."""
        micros = int(self._clock() * 1_000_000)
        if micros <= self._last_micros:
            micros = self._last_micros + 1
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def resolve_channel(self, channel: str) -> str | None:
        """Map a channel id, ``#name``/``name`` or user id (DM) to the id messages go under."""
        if channel in self.channels or channel in self.dms or is_user_id(channel):
            return channel
        name = channel.removeprefix("#")
        for channel_id, channel_name in self.channels.items():
            if channel_name == name:
                return channel_id
        return None

    # -- reading ---------------------------------------------------------------------------

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages of a channel, oldest first (replies live in ``.replies``)."""
        return list(self._top.get(channel, []))

    def find(self, channel: str, ts: str) -> Message | None:
        """A message (top-level or reply) by channel and ts, ephemerals excluded."""
        return self._by_key.get((channel, ts))

    def find_any(self, ts: str) -> Message | None:
        """A message, reply or ephemeral by ts (ts values are unique across the workspace)."""
        for (_, message_ts), message in self._by_key.items():
            if message_ts == ts:
                return message
        return next((m for m in self._ephemeral if m.ts == ts), None)

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The parent and its replies, in order ([] if the parent is unknown)."""
        parent = self.find(channel, ts)
        if parent is None:
            return []
        if parent.thread_ts is not None and parent.thread_ts != parent.ts:
            parent = self.find(channel, parent.thread_ts) or parent
        return [parent, *parent.replies]

    def ephemerals(self, user: str | None = None) -> list[Message]:
        """Ephemeral messages, all or only those shown to ``user``."""
        return [m for m in self._ephemeral if user is None or m.ephemeral_for == user]

    def thread_parent(self, channel: str, thread_ts: str) -> Message | None:
        """The thread's parent; a reply's ts is followed to its parent, as Slack does."""
        message = self.find(channel, thread_ts)
        if (
            message is not None
            and message.thread_ts is not None
            and message.thread_ts != message.ts
        ):
            return self.find(channel, message.thread_ts)
        return message

    # -- changing --------------------------------------------------------------------------

    def post(
        self,
        channel: str,
        *,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        user: str = BOT_USER_ID,
        **extra: Any,
    ) -> Message:
        """Store a new message; with ``thread_ts`` (a known parent) it becomes a reply."""
        message = Message(
            ts=self.next_ts(),
            channel=channel,
            text=text,
            blocks=copy.deepcopy(blocks or []),
            user=user,
            **extra,
        )
        parent = self.thread_parent(channel, thread_ts) if thread_ts else None
        if parent is not None:
            message.thread_ts = parent.ts
            parent.replies.append(message)
        else:
            self._top.setdefault(channel, []).append(message)
        self._by_key[(channel, message.ts)] = message
        self._on_change()
        return message

    def post_ephemeral(
        self,
        channel: str,
        user: str,
        *,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        **extra: Any,
    ) -> Message:
        """Store an ephemeral message that only ``user`` sees."""
        message = Message(
            ts=self.next_ts(),
            channel=channel,
            text=text,
            blocks=copy.deepcopy(blocks or []),
            thread_ts=thread_ts,
            ephemeral_for=user,
            **extra,
        )
        self._ephemeral.append(message)
        self._on_change()
        return message

    def replace(
        self,
        message: Message,
        *,
        text: str | None,
        blocks: list[dict[str, Any]] | None,
    ) -> Message:
        """Edit a message in place, keeping the previous version in ``edits``.

        ``None`` keeps that part as it was (``chat.update`` without ``blocks`` keeps them).
        """
        message.edits.append(
            MessageVersion(
                text=message.text, blocks=copy.deepcopy(message.blocks), replaced_at=self._clock()
            )
        )
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = copy.deepcopy(blocks)
        self._on_change()
        return message

    def delete(self, message: Message) -> None:
        """Remove a message (with its replies, if it is a parent)."""
        if message.ephemeral_for is not None:
            self._ephemeral = [m for m in self._ephemeral if m is not message]
        else:
            self._by_key.pop((message.channel, message.ts), None)
            for reply in message.replies:
                self._by_key.pop((reply.channel, reply.ts), None)
            parent = (
                self.find(message.channel, message.thread_ts)
                if message.thread_ts and message.thread_ts != message.ts
                else None
            )
            if parent is not None:
                parent.replies = [m for m in parent.replies if m is not message]
            else:
                top = self._top.get(message.channel, [])
                self._top[message.channel] = [m for m in top if m is not message]
        self.deleted.append(message)
        self._on_change()

    def touch(self) -> None:
        """Report a change made outside this class (views, files) to watchers."""
        self._on_change()

    def clear(self) -> None:
        """Forget every message, ephemeral and home view (channels and groups stay)."""
        self._top.clear()
        self._by_key.clear()
        self._ephemeral.clear()
        self.deleted.clear()
        self.home_views.clear()
        self._on_change()

    def snapshot(self) -> dict[str, Any]:
        """The whole workspace as JSON-serialisable data (for a UI or a debugging dump)."""
        return {
            "channels": [
                {
                    "id": channel_id,
                    "name": name,
                    "messages": [m.to_dict() for m in self._top.get(channel_id, [])],
                }
                for channel_id, name in self.channels.items()
            ],
            "direct_messages": {
                channel: [m.to_dict() for m in messages]
                for channel, messages in self._top.items()
                if channel not in self.channels
            },
            "ephemerals": [m.to_dict() for m in self._ephemeral],
            "usergroups": {key: list(users) for key, users in self.usergroups.items()},
            "home_views": copy.deepcopy(self.home_views),
        }
