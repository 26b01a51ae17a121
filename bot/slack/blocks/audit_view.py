"""The `/starpod audit` answer: who did what, where, with which result, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from bot.blockkit.blocks import Block, context, section
from bot.blockkit.limits import Reply, reply
from bot.blockkit.mrkdwn import channel, code, date, escape, user

RESULT_EMOJI = {"ok": "✅", "refused": "🔒", "error": "❌", "usage": "⚠️"}


class AuditEntryLike(Protocol):
    """What an audit row needs (``bot.store.slack_models.AuditEntry`` has it)."""

    at: datetime
    user_id: str
    channel_id: str | None
    source: str
    action: str
    instance_id: str | None
    args: str | None
    result: str
    detail: str | None
    duration_ms: int | None


def audit_row(entry: AuditEntryLike) -> str:
    """One line (two with a detail): time, who, what, on what, result, how long, from where."""
    emoji = RESULT_EMOJI.get(entry.result, "•")
    target = f" on {code(entry.instance_id[:8])}" if entry.instance_id else ""
    took = f" · {entry.duration_ms} ms" if entry.duration_ms is not None else ""
    where = f" in {channel(entry.channel_id)}" if entry.channel_id else ""
    line = (
        f"{emoji} {date(entry.at)} {user(entry.user_id)} {code(entry.action)}{target} → "
        f"{escape(entry.result)}{took} · {escape(entry.source)}{where}"
    )
    if entry.detail and entry.result != "ok":
        detail = " ".join(entry.detail.split())
        line += f"\n      _{escape(detail[:200])}_"
    return line


def audit_message(entries: Sequence[AuditEntryLike], *, instance_ref: str | None = None) -> Reply:
    """The latest entries (the caller limits them to 20)."""
    scope = f" for {code(instance_ref)}" if instance_ref else ""
    if not entries:
        return reply("No audit entries", [section(f"📒 No audit entries{scope} yet.")])
    blocks: list[Block] = [section(f"📒 Audit log{scope}, newest first")]
    blocks.append(section("\n".join(audit_row(e) for e in entries)))
    blocks.append(context(f"{len(entries)} latest entries · times in your time zone"))
    return reply(f"Audit log{' for ' + instance_ref if instance_ref else ''}", blocks)
