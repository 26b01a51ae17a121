"""The small vocabulary every Slack answer about instances shares: status emoji, labels.

The Block Kit primitives themselves (sections, buttons, …) live in :mod:`bot.blockkit.blocks`;
what is here knows the backend's :class:`~bot.backend.models.Instance`.
"""

from __future__ import annotations

from bot.backend.models import Instance
from bot.blockkit.mrkdwn import code, escape

STATUS_EMOJI = {
    "running": "🟢",
    "creating": "🔵",
    "paused": "⏸️",
    "stopped": "⚫",
    "error": "🔴",
}
TRANSITIONAL_EMOJI = "🟡"  # provisioning, restarting, deleting … anything we do not know


def status_emoji(status: str) -> str:
    """The emoji for a (lower-case) status; unknown and in-between statuses are yellow."""
    return STATUS_EMOJI.get(status, TRANSITIONAL_EMOJI)


def instance_label(instance: Instance) -> str:
    """``*pod-7* `a1b2c3d4``` in mrkdwn, the name escaped; the short id alone when unnamed."""
    if instance.name:
        return f"*{escape(instance.name)}* {code(instance.short_id)}"
    return code(instance.short_id)


def instance_plain(instance: Instance) -> str:
    """``pod-7 (a1b2c3d4)`` as plain text (headers, fallbacks, file names)."""
    return instance.label
