"""The `/starpod health` answer: an instance card with figures, sparklines and actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.backend.models import HealthInfo, Instance
from bot.blockkit.blocks import (
    Block,
    actions,
    button,
    confirm_dialog,
    context,
    fields_section,
    section,
)
from bot.blockkit.ids import ActionId, BlockId, confirmed_block_id
from bot.blockkit.limits import MAX_BUTTON_VALUE, Reply, reply
from bot.blockkit.mrkdwn import DASH, duration, escape, megabytes
from bot.blockkit.sparkline import sparkline
from bot.slack.blocks.common import instance_label, status_emoji


@dataclass(frozen=True)
class HealthView:
    """Everything the card shows, gathered by the handler."""

    instance: Instance
    now: datetime
    stale_after_secs: float
    health: HealthInfo | None = None
    health_error: str | None = None  # why live health is missing (already a user message)
    cpu: list[float | None] = field(default_factory=list)  # last hour, bucketed
    memory: list[float | None] = field(default_factory=list)
    samples: int = 0
    uptime_24h: float | None = None  # 0..1, None: no history
    kill_token: str | None = None  # the card's kill confirmation (bot/store/kill_confirmations)


def heartbeat_text(health: HealthInfo, now: datetime, stale_after_secs: float) -> str:
    """``12 s ago`` or ``⚠️ 3 m 4 s ago (stale: over 90 s)``."""
    age = health.heartbeat_age(now)
    if age > stale_after_secs:
        return f"⚠️ {duration(age)} ago (stale: over {duration(stale_after_secs)})"
    return f"{duration(age)} ago"


def health_card(view: HealthView) -> Reply:
    """The card: status, live figures, last hour, uptime over 24 h, and action buttons."""
    inst = view.instance
    title = f"{status_emoji(inst.status)} {instance_label(inst)} is *{escape(inst.status_raw)}*"
    if inst.region:
        title += f" · {escape(inst.region)}"
    blocks: list[Block] = [section(title)]
    h = view.health
    if h is not None:
        blocks.append(
            fields_section(
                [
                    f"*CPU*\n{h.cpu_percent:.1f} %",
                    f"*Memory*\n{megabytes(h.memory_mb)}",
                    f"*Disk*\n{megabytes(h.disk_mb)}",
                    f"*Uptime*\n{duration(h.uptime_secs)}",
                    f"*Heartbeat*\n{heartbeat_text(h, view.now, view.stale_after_secs)}",
                    f"*Uptime 24 h*\n{_ratio(view.uptime_24h)}",
                ]
            )
        )
    else:
        reason = escape(view.health_error or "the backend sent no health data")
        blocks.append(
            section(f"No live health: {reason}\n*Uptime 24 h*: {_ratio(view.uptime_24h)}")
        )
    blocks.append(_history_block(view))
    blocks.append(_card_actions(inst, view.kill_token))
    text = f"{inst.label}: {inst.status_raw}"
    if h is not None:
        text += f", CPU {h.cpu_percent:.0f} %, memory {megabytes(h.memory_mb)}"
    return reply(text, blocks)


def _ratio(value: float | None) -> str:
    return "not enough history yet" if value is None else f"{value * 100:.1f} %"


def _history_block(view: HealthView) -> Block:
    if not view.samples:
        return context("Last hour: no stored samples yet (the monitor records one per sweep).")
    cpu, memory = list(view.cpu), list(view.memory)
    h = view.health
    if h is not None:
        # The live figures above are the line's last bar, and inside its range: stored
        # samples alone (one per sweep, averaged per bucket) may all lie below or above them.
        cpu.append(h.cpu_percent)
        memory.append(float(h.memory_mb))
    cpu_known = [v for v in cpu if v is not None]
    mem_known = [v for v in memory if v is not None]
    cpu_line = (
        f"CPU {sparkline(cpu, lo=0, hi=100)} {min(cpu_known):.0f}{DASH}{max(cpu_known):.0f} %"
    )
    mem_line = (
        f"Mem {sparkline(memory)} {megabytes(min(mem_known))}{DASH}{megabytes(max(mem_known))}"
    )
    now = ", the last bar is now" if h is not None else ""
    return section(f"*Last hour* ({view.samples} samples{now})\n```{cpu_line}\n{mem_line}```")


def _card_actions(inst: Instance, kill_token: str | None) -> Block:
    value = inst.id if len(inst.id) <= MAX_BUTTON_VALUE else inst.id[:MAX_BUTTON_VALUE]
    return actions(
        [
            button("Logs", ActionId.CARD_LOGS, value),
            button("History", ActionId.CARD_HISTORY, value),
            button("SSH", ActionId.CARD_SSH, value),
            button("Restart", ActionId.CARD_RESTART, value, style="primary"),
            button("Pause", ActionId.CARD_PAUSE, value),
            kill_button(inst),
        ],
        # The kill button's confirmation token rides in the block id (the value names the
        # instance): a kill runs only from a card or prompt the bot showed this user.
        block_id=confirmed_block_id(BlockId.CARD_ACTIONS, kill_token),
    )


def kill_button(inst: Instance, *, text: str = "Kill…") -> Block:
    """The danger button that kills, behind a Block Kit confirm dialog.

    The dialog names the instance once: its name (or short id) in the title, its full id
    in the text, so the user can check it is the one they mean.
    """
    dialog = confirm_dialog(
        f"Kill {inst.name or inst.short_id}?",
        f"This terminates the instance with id {inst.id}. It cannot be undone.",
        "Kill it",
    )
    return button(text, ActionId.KILL_CONFIRM, inst.id, style="danger", confirm=dialog)
