"""The `/starpod list` answer: counts by status, one row per instance, paged."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.backend.models import Instance
from bot.blockkit.blocks import Block, actions, button, context, option, overflow, section
from bot.blockkit.ids import ActionId, BlockId, MenuChoice, menu_value, row_block_id
from bot.blockkit.limits import MAX_OPTION_VALUE, Reply, reply
from bot.blockkit.mrkdwn import DASH, code, duration, escape
from bot.slack.blocks.common import instance_label, status_emoji

DEFAULT_PER_PAGE = 20  # 20 rows + 4 blocks of frame stays far under Slack's 50
# Attention first: what is broken, then what is changing, then the calm ones.
_STATUS_ORDER = {"error": 0, "creating": 2, "running": 3, "paused": 4, "stopped": 5}
_MENU = (
    (MenuChoice.HEALTH, "Health"),
    (MenuChoice.LOGS, "Logs"),
    (MenuChoice.SSH, "SSH"),
    (MenuChoice.RESTART, "Restart"),
    (MenuChoice.KILL, "Kill…"),
)


@dataclass(frozen=True)
class ListQuery:
    """Filters and page of a list; travels in the pager buttons' value."""

    status: str | None = None
    region: str | None = None
    page: int = 0

    def to_value(self) -> str:
        """The compact JSON a pager button carries."""
        data: dict[str, Any] = {"p": self.page}
        if self.status:
            data["s"] = self.status
        if self.region:
            data["r"] = self.region
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_value(cls, value: str | None) -> ListQuery:
        """Read a pager value back; anything malformed is the first, unfiltered page."""
        try:
            data = json.loads(value or "{}")
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        page = data.get("p", 0)
        status, region = data.get("s"), data.get("r")
        return cls(
            status=status if isinstance(status, str) else None,
            region=region if isinstance(region, str) else None,
            page=page if isinstance(page, int) and page >= 0 else 0,
        )

    def describe(self) -> str:
        """``--status running --region eu-west-1`` (empty when unfiltered)."""
        parts = []
        if self.status:
            parts.append(f"--status {self.status}")
        if self.region:
            parts.append(f"--region {self.region}")
        return " ".join(parts)


def filter_instances(instances: Sequence[Instance], query: ListQuery) -> list[Instance]:
    """Instances matching the query's status and region (case-insensitive), sorted."""
    region = query.region.lower() if query.region else None
    matched = [
        i
        for i in instances
        if (query.status is None or i.status == query.status)
        and (region is None or (i.region or "").lower() == region)
    ]
    return sorted(matched, key=_sort_key)


def _sort_key(instance: Instance) -> tuple[int, str, str]:
    return (_STATUS_ORDER.get(instance.status, 1), (instance.name or "").lower(), instance.id)


def fleet_order(instance: Instance) -> tuple[int, str, str]:
    """The list's order: attention first (broken, changing), then by name and id."""
    return _sort_key(instance)


def status_counts(instances: Sequence[Instance]) -> str:
    """``🟢 8 running · ⏸️ 2 paused`` (most common first)."""
    counts = Counter(i.status for i in instances)
    ordered = sorted(counts.items(), key=lambda kv: (_STATUS_ORDER.get(kv[0], 1), kv[0]))
    return " · ".join(f"{status_emoji(s)} {n} {escape(s)}" for s, n in ordered)


def row_text(instance: Instance, now: datetime) -> str:
    """Two short lines: label, then region · status · uptime or CPU."""
    details = [escape(instance.region or "no region"), escape(instance.status_raw)]
    health = instance.health
    if health is not None:
        if instance.is_running:
            details.append(f"up {duration(health.uptime_secs)}")
        details.append(f"CPU {health.cpu_percent:.0f} %")
    elif instance.updated_at is not None:
        details.append(f"for {duration((now - instance.updated_at).total_seconds())}")
    return f"{status_emoji(instance.status)} {instance_label(instance)}\n" + " · ".join(details)


def row_menu(instance: Instance) -> Block | None:
    """The row's ⋯ menu (Slack allows 5 options: Pause lives on the Health card)."""
    values = [menu_value(choice, instance.id) for choice, _ in _MENU]
    if any(len(v) > MAX_OPTION_VALUE for v in values):
        return None  # an id too long for a menu value: the row still shows, without menu
    options = [option(label, v) for (_, label), v in zip(_MENU, values, strict=True)]
    return overflow(ActionId.ROW_MENU, options)


def list_page(
    instances: Sequence[Instance],
    query: ListQuery,
    *,
    now: datetime,
    per_page: int = DEFAULT_PER_PAGE,
) -> Reply:
    """One page of the fleet: counts on top, ``per_page`` rows, and Previous/Next buttons."""
    matched = filter_instances(instances, query)
    pages = max(1, -(-len(matched) // per_page))
    page = min(query.page, pages - 1)
    rows = matched[page * per_page : (page + 1) * per_page]
    total = len(instances)
    summary = f"*{total} instance{'s' if total != 1 else ''}*"
    if total:
        summary += f": {status_counts(instances)}"
    filters = query.describe()
    if filters:
        summary += f"\nShowing {len(matched)} matching {code(filters)}"
    blocks: list[Block] = [section(summary, block_id=BlockId.LIST_SUMMARY)]
    if not matched:
        empty = "No instances yet." if not total else f"No instance matches {code(filters)}."
        blocks.append(section(empty))
    for instance in rows:
        blocks.append(
            section(
                row_text(instance, now),
                block_id=row_block_id(instance.id),
                accessory=row_menu(instance),
            )
        )
    if pages > 1:
        first, last = page * per_page + 1, page * per_page + len(rows)
        blocks.append(
            context(f"Page {page + 1} of {pages} · instances {first}{DASH}{last} of {len(matched)}")
        )
        buttons = []
        if page > 0:
            prev_query = ListQuery(query.status, query.region, page - 1)
            buttons.append(button("◀ Previous", ActionId.LIST_PAGE_PREV, prev_query.to_value()))
        if page < pages - 1:
            next_query = ListQuery(query.status, query.region, page + 1)
            buttons.append(
                button(
                    "Next page ▶", ActionId.LIST_PAGE_NEXT, next_query.to_value(), style="primary"
                )
            )
        blocks.append(actions(buttons, block_id=BlockId.LIST_PAGER))
    text = f"{total} instances" + (f", {len(matched)} matching {filters}" if filters else "")
    return reply(text, blocks)
