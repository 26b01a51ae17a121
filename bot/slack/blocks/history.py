"""The `/starpod history` answer: the latest status changes, why, and how long each lasted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from bot.backend.models import Instance
from bot.blockkit.blocks import Block, context, section
from bot.blockkit.limits import Reply, reply
from bot.blockkit.mrkdwn import date, duration, escape, user
from bot.slack.blocks.common import instance_label, status_emoji


class StatusChangeLike(Protocol):
    """What a history row needs (``bot.store.models.StatusChange`` has it)."""

    at: datetime
    from_status: str | None
    to_status: str
    cause: str
    actor: str | None
    reason: str | None


def cause_text(cause: str, actor: str | None) -> str:
    """``by @ana``, ``by the monitor`` or ``by the backend``."""
    if cause == "user":
        return f"by {user(actor)}"
    if cause == "monitor":
        return "by the monitor"
    if cause == "backend":
        return "by the backend"
    return f"by {escape(cause)}"


def history_message(
    instance: Instance, changes: Sequence[StatusChangeLike], *, now: datetime, limit: int = 20
) -> Reply:
    """Newest first; each row says how long the instance then stayed in that status."""
    label = instance_label(instance)
    if not changes:
        text = (
            f"🕘 No recorded status changes for {label} yet. The monitor records them as "
            "it sees them; actions taken from Slack are recorded too."
        )
        return reply(f"No history for {instance.label}", [section(text)])
    rows = []
    newer_at = now
    for index, change in enumerate(changes[:limit]):
        lasted = duration((newer_at - change.at).total_seconds())
        span = f"{lasted} so far" if index == 0 else f"lasted {lasted}"
        origin = f" from {escape(change.from_status)}" if change.from_status else ""
        row = (
            f"{date(change.at)} {status_emoji(change.to_status.lower())} "
            f"*{escape(change.to_status)}*{origin} · "
            f"{cause_text(change.cause, change.actor)} · {span}"
        )
        if change.reason:
            row += f"\n      _{escape(change.reason)}_"
        rows.append(row)
        newer_at = change.at
    blocks: list[Block] = [section(f"🕘 Status history of {label}, newest first")]
    blocks.append(section("\n".join(rows)))
    blocks.append(context(f"Latest {min(len(changes), limit)} changes · times in your time zone"))
    return reply(f"Status history of {instance.label}", blocks)
