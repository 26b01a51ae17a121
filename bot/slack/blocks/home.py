"""The App Home tab: the fleet at a glance, incidents, mutes, the user's role and actions.

Pure: :func:`home_view` takes what :mod:`bot.slack.home` gathered and returns the view for
``views.publish``. Instances that need attention (broken, then changing) come first, as in
`/starpod list`; the fleet is paged (``HOME_PER_PAGE`` rows), so a view of 50,000
instances still holds far fewer than Slack's 100 blocks.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.alerts.records import IncidentView
from bot.backend.models import Instance
from bot.blockkit.blocks import (
    Block,
    actions,
    button,
    context,
    divider,
    header,
    option,
    overflow,
    section,
)
from bot.blockkit.ids import ActionId, BlockId
from bot.blockkit.limits import MAX_OPTION_VALUE, fit_blocks
from bot.blockkit.mrkdwn import DASH, code, date, escape, user
from bot.blockkit.views import MAX_VIEW_BLOCKS, home
from bot.slack.blocks.fleet import fleet_order, row_text, status_counts

HOME_PER_PAGE = 20
MAX_HOME_INCIDENTS = 10
MAX_HOME_MUTES = 20
MAX_RECENT = 5


class HomeChoice(StrEnum):
    """The verbs of a Home row's ⋯ menu (values ``"<verb>:<instance id>"``)."""

    RESTART = "restart"
    PAUSE = "pause"
    LOGS = "logs"
    MUTE = "mute"  # opens the mute modal for the row's instance
    KILL = "kill"  # opens the kill confirmation modal


_MENU = (
    (HomeChoice.RESTART, "Restart"),
    (HomeChoice.PAUSE, "Pause"),
    (HomeChoice.LOGS, "Logs"),
    (HomeChoice.MUTE, "Mute…"),
    (HomeChoice.KILL, "Kill…"),
)


def parse_home_choice(value: str) -> tuple[HomeChoice, str] | None:
    """``"restart:<id>"`` → (RESTART, id); None for anything else."""
    verb, sep, instance_id = value.partition(":")
    if not sep or not instance_id:
        return None
    try:
        return HomeChoice(verb), instance_id
    except ValueError:
        return None


@dataclass(frozen=True)
class MuteLine:
    """One mute in force, as the Home shows it."""

    instance_id: str
    instance_name: str | None
    until: datetime
    no_restart: bool
    actor: str | None


@dataclass(frozen=True)
class RecentAction:
    """One of the user's latest audited actions."""

    at: datetime
    action: str
    instance_id: str | None
    result: str


@dataclass
class HomeData:
    """Everything one user's Home shows; gathered by ``bot.slack.home``."""

    user_id: str
    role: str | None  # "viewer", "operator", "admin"; None: no role
    now: datetime
    fleet: Sequence[Instance] | None  # None: the backend could not be read
    fleet_error: str | None = None
    page: int = 0
    incidents: Sequence[IncidentView] | None = None  # None: alerts are not running
    mutes: Sequence[MuteLine] | None = None
    # Maintenance windows running or planned, as `/starpod maintenance list` words them
    # (mrkdwn, escaped by the alerts feature); None: alerts are not wired.
    maintenance: Sequence[str] | None = None
    recent: Sequence[RecentAction] = field(default_factory=list)


def row_menu(instance: Instance) -> Block | None:
    """A Home row's ⋯ menu: Restart, Pause, Logs, Mute…, Kill…."""
    values = [f"{choice.value}:{instance.id}" for choice, _ in _MENU]
    if any(len(v) > MAX_OPTION_VALUE for v in values):
        return None
    return overflow(
        ActionId.HOME_ROW_MENU,
        [option(label, v) for (_, label), v in zip(_MENU, values, strict=True)],
    )


def home_view(data: HomeData) -> dict[str, Any]:
    """The Home view (``type: home``) for ``views.publish``; at most 100 blocks."""
    blocks: list[Block] = [header("Starpod fleet")]
    role = f"You are {_a(data.role)} *{data.role}*" if data.role else "You have no role"
    blocks.append(context(f"{role} · updated {date(data.now)}"))
    if data.role is None:
        blocks.append(
            section("Ask an admin of the bot to give you a role to see the fleet and act on it.")
        )
        return home(fit_blocks(blocks, max_blocks=MAX_VIEW_BLOCKS))
    blocks.extend(_fleet(data))
    blocks.extend(_incidents(data.incidents))
    blocks.extend(_mutes(data.mutes, data.maintenance))
    blocks.extend(_recent(data.recent))
    return home(fit_blocks(blocks, max_blocks=MAX_VIEW_BLOCKS))


def _a(role: str) -> str:
    return "an" if role[:1] in "aeiou" else "a"


def _fleet(data: HomeData) -> list[Block]:
    tools = actions(
        [
            button("New instance", ActionId.HOME_CREATE, "create", style="primary"),
            button("Mute an instance", ActionId.HOME_MUTE, "mute"),
        ]
    )
    if data.fleet is None:
        why = escape(data.fleet_error or "unknown error")
        return [section(f"⚠️ The backend could not be read: {why}"), tools]
    fleet = data.fleet
    total = len(fleet)
    attention = sum(1 for i in fleet if i.status != "running")
    summary = f"*{total} instance{'s' if total != 1 else ''}*"
    if total:
        summary += f": {status_counts(fleet)}"
    if attention:
        summary += f"\n*{attention} need{'s' if attention == 1 else ''} attention* (listed first)"
    blocks = [section(summary, block_id=BlockId.HOME_SUMMARY), tools]
    pages = max(1, -(-total // HOME_PER_PAGE))
    page = min(max(data.page, 0), pages - 1)
    # Only the pages up to this one are ordered (a Home of 50,000 instances stays cheap).
    first_rows = heapq.nsmallest((page + 1) * HOME_PER_PAGE, fleet, key=fleet_order)
    rows = first_rows[page * HOME_PER_PAGE :]
    for instance in rows:
        blocks.append(
            section(
                row_text(instance, data.now),
                block_id=f"{BlockId.HOME_ROW}:{instance.id}"[:255],
                accessory=row_menu(instance),
            )
        )
    if pages > 1:
        first, last = page * HOME_PER_PAGE + 1, page * HOME_PER_PAGE + len(rows)
        blocks.append(context(f"Page {page + 1} of {pages} · instances {first}{DASH}{last}"))
        buttons = []
        if page > 0:
            buttons.append(button("◀ Previous", ActionId.HOME_PAGE_PREV, str(page - 1)))
        if page < pages - 1:
            buttons.append(button("Next page ▶", ActionId.HOME_PAGE_NEXT, str(page + 1)))
        blocks.append(actions(buttons, block_id=BlockId.HOME_PAGER))
    return blocks


def _incidents(incidents: Sequence[IncidentView] | None) -> list[Block]:
    if incidents is None:
        return []
    blocks: list[Block] = [divider(), header("Open incidents")]
    if not incidents:
        return [*blocks, context("No open incident.")]
    for incident in incidents[:MAX_HOME_INCIDENTS]:
        state = (
            f"acknowledged by {user(incident.acknowledged_by)}"
            if incident.acknowledged_by
            else "open"
        )
        text = (
            f"*#{incident.id}* {escape(incident.label)}: {escape(incident.kind)} · {state} · "
            f"since {date(incident.opened_at)}"
        )
        blocks.append(section(text))
        value = str(incident.id)
        buttons = [button("Acknowledge", ActionId.INCIDENT_ACK, value)]
        if incident.instance_id is not None:
            buttons.append(button("Restart now", ActionId.INCIDENT_RESTART, value))
            buttons.append(button("Mute 1h", ActionId.INCIDENT_MUTE, value))
        blocks.append(actions(buttons, block_id=f"{BlockId.HOME_INCIDENT}:{incident.id}"))
    hidden = len(incidents) - MAX_HOME_INCIDENTS
    if hidden > 0:
        blocks.append(context(f"… and {hidden} more: `/starpod status` lists them all."))
    return blocks


def _mutes(mutes: Sequence[MuteLine] | None, maintenance: Sequence[str] | None) -> list[Block]:
    if mutes is None and maintenance is None:
        return []
    blocks: list[Block] = [divider(), header("Mutes and maintenance in force")]
    lines = []
    for mute in (mutes or [])[:MAX_HOME_MUTES]:
        name = f"*{escape(mute.instance_name)}*" if mute.instance_name else ""
        name = f"{name} {code(mute.instance_id[:8])}".strip()
        extra = " · auto-restart off" if mute.no_restart else ""
        by = f" by {user(mute.actor)}" if mute.actor else ""
        lines.append(f"🔕 {name} until {date(mute.until)}{by}{extra}")
    hidden = len(mutes or []) - MAX_HOME_MUTES
    if hidden > 0:
        lines.append(f"… and {hidden} more")
    lines.extend(maintenance or [])
    if lines:
        blocks.append(section("\n".join(lines), block_id=BlockId.HOME_MUTES))
    else:
        blocks.append(context("Nothing is muted and no maintenance is planned."))
    return blocks


def _recent(recent: Sequence[RecentAction]) -> list[Block]:
    blocks: list[Block] = [divider(), header("Your recent actions")]
    if not recent:
        return [*blocks, context("Nothing yet.")]
    lines = []
    for entry in recent[:MAX_RECENT]:
        target = f" {code(entry.instance_id[:8])}" if entry.instance_id else ""
        mark = "✅" if entry.result == "ok" else "✖️"
        lines.append(
            f"{mark} {date(entry.at)} {escape(entry.action)}{target} ({escape(entry.result)})"
        )
    return [*blocks, section("\n".join(lines))]
