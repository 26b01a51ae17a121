"""Block Kit for maintenance windows: the start and end notices, the incident note, the list.

Pure builders over :class:`~bot.alerts.maintenance.WindowView`; everything that came from a
person (target, reason) is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from bot.blockkit.blocks import context, section
from bot.blockkit.limits import Reply, reply
from bot.blockkit.mrkdwn import code, date, duration, escape, user

if TYPE_CHECKING:
    from bot.alerts.maintenance_records import WindowView


def target_words(view: WindowView) -> str:
    """``every instance`` or ``instances matching `web-*```` (mrkdwn)."""
    return "every instance" if view.target == "all" else f"instances matching {code(view.target)}"


def _restarts(view: WindowView) -> str:
    return "auto-restart is off" if view.no_restart else "auto-restart stays on"


def _reason(view: WindowView) -> str:
    return f" Reason: {escape(view.reason)}." if view.reason else ""


def span(view: WindowView) -> str:
    """``from … to … (2h)`` in Slack's local-time dates."""
    secs = (view.ends_at - view.starts_at).total_seconds()
    return f"from {date(view.starts_at)} to {date(view.ends_at)} ({duration(secs)})"


def started_notice(view: WindowView, matching: Sequence[str]) -> Reply:
    """``🛠 Maintenance #3 started for instances matching `web-*` until …``."""
    text = (
        f"🛠 Maintenance #{view.id} started for {target_words(view)} until "
        f"{date(view.ends_at)}, planned by {user(view.actor)}: no incident opens for them "
        f"until it ends, {_restarts(view)}.{_reason(view)}"
    )
    blocks = [section(text)]
    if matching:
        shown = ", ".join(escape(name) for name in matching[:20])
        more = f" and {len(matching) - 20} more" if len(matching) > 20 else ""
        blocks.append(context(f"Covers now: {shown}{more}"))
    return reply(f"Maintenance #{view.id} started", blocks)


def ended_notice(
    view: WindowView, *, cancelled_by: str | None, still_unhealthy: Sequence[str]
) -> Reply:
    """``🛠 Maintenance #3 ended …`` (or was cancelled), naming what is still unhealthy."""
    how = f"was cancelled by {user(cancelled_by)}" if cancelled_by else "ended"
    text = f"✅ Maintenance #{view.id} for {target_words(view)} {how}: incidents open again."
    if still_unhealthy:
        shown = ", ".join(escape(name) for name in still_unhealthy[:20])
        more = f" and {len(still_unhealthy) - 20} more" if len(still_unhealthy) > 20 else ""
        text += f" Still unhealthy, alerting again: {shown}{more}."
    return reply(
        f"Maintenance #{view.id} {'cancelled' if cancelled_by else 'ended'}", [section(text)]
    )


def incident_note(view: WindowView) -> Reply:
    """The reply in an open incident's thread when a window covering it starts."""
    text = (
        f"🛠 Maintenance #{view.id} started (by {user(view.actor)}) until {date(view.ends_at)}: "
        f"this incident stays open, {_restarts(view)}.{_reason(view)}"
    )
    return reply(f"Maintenance #{view.id} started", [section(text)])


def window_line(view: WindowView, now: datetime) -> str:
    """One line of ``/starpod maintenance list``."""
    state = view.state(now)
    marks = {
        "active": "🛠 now",
        "scheduled": "🗓 planned",
        "ended": "✔ ended",
        "cancelled": "✖ cancelled",
    }
    line = f"*#{view.id}* {marks[state]}: {target_words(view)} {span(view)}, {_restarts(view)}"
    line += f", by {user(view.actor)}"
    if view.cancelled_by:
        line += f", cancelled by {user(view.cancelled_by)}"
    if view.reason:
        line += f" — {escape(view.reason)}"
    return line


def windows_message(views: Sequence[WindowView], now: datetime) -> Reply:
    """The answer to ``/starpod maintenance list``."""
    if not views:
        return reply(
            "No maintenance windows",
            [section("No maintenance window is planned or running (nor ended in the last day).")],
        )
    lines = [window_line(view, now) for view in views]
    return reply(
        f"{len(views)} maintenance windows",
        [section("*Maintenance windows* (planned, running, and ended in the last day)")]
        + [section(line) for line in lines],
    )
