"""The App Home's listeners: ``app_home_opened``, its pager, its row menus and buttons.

Each is a listener step like any command (acked first, role-checked, audited once); the
actions on instances are the same handlers `/starpod restart` and the list's menu use,
so they go through ``bot.instances``' service. Answers go to the user's messages with
the app (a Home has no ``response_url``); announcements to the alert channel. The
incident buttons on the Home are the incident message's own (``incident_buttons``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from bot.blockkit.ids import ActionId
from bot.catalog import Subcommand
from bot.slack import blocks, modals
from bot.slack.blocks.home import HomeChoice, parse_home_choice
from bot.slack.handlers import info, lifecycle
from bot.slack.handlers.common import resolve
from bot.slack.invocation import Invocation
from bot.slack.middleware import Route, Step
from bot.slack.parser import Command
from bot.slack.services import Services

HOME = "home"


async def plan_home_opened(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """The user opened the app's Home tab: publish it (the Messages tab needs nothing)."""
    event = body.get("event") or {}
    if event.get("tab") != "home":
        # Opening the Messages tab shows nothing of ours: no row for it.
        inv.draft.counted_elsewhere()
        return Step(HOME, _nothing, check_role=False)
    # Anyone may open it: the Home itself shows only what the user's role allows.
    return Step(HOME, partial(_show, svc, inv, None), check_role=False)


async def _nothing() -> None:
    return None


async def _show(svc: Services, inv: Invocation, page: int | None) -> None:
    published = await svc.home.show(inv.user_id, page=page)
    inv.draft.detail = f"page {svc.home.page_of(inv.user_id) + 1}" + (
        "" if published else "; Slack refused the view"
    )


def _clicked(body: dict[str, Any]) -> dict[str, Any]:
    actions = body.get("actions") or [{}]
    first = actions[0]
    return first if isinstance(first, dict) else {}


async def plan_page(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """Previous/Next under the Home's fleet."""
    raw = str(_clicked(body).get("value") or "0")
    page = int(raw) if raw.isdigit() and len(raw) < 7 else 0
    return Step(Subcommand.LIST.value, partial(_show, svc, inv, page))


async def plan_row_menu(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """A Home row's ⋯ menu: restart, pause, logs, or the mute / kill modal."""
    value = str((_clicked(body).get("selected_option") or {}).get("value") or "")
    parsed = parse_home_choice(value)
    if parsed is None:
        return Step("menu", partial(_unknown, inv, value), check_role=False)
    choice, instance_id = parsed
    command = Command(Subcommand(choice.value), ref=instance_id)
    act = {
        HomeChoice.RESTART: partial(lifecycle.restart, svc, inv, command),
        HomeChoice.PAUSE: partial(lifecycle.pause, svc, inv, command),
        HomeChoice.LOGS: partial(info.show_logs, svc, inv, command),
        HomeChoice.MUTE: partial(_open_mute_for, svc, inv, instance_id),
        HomeChoice.KILL: partial(modals.open_kill, svc, inv, instance_id),
    }[choice]
    return Step(choice.value, act, instance_id=instance_id)


async def _open_mute_for(svc: Services, inv: Invocation, instance_id: str) -> None:
    await modals.open_mute(svc, inv, await resolve(svc, inv, instance_id, Subcommand.MUTE))


async def _unknown(inv: Invocation, value: str) -> None:
    inv.draft.fail("usage", f"unknown menu value {value[:60]!r}")
    await inv.respond(
        blocks.user_error_answer("That menu entry is not one I know. Open the Home tab again.")
    )


async def plan_create(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """ "New instance": the create form."""
    return Step(Subcommand.CREATE.value, partial(modals.open_create, svc, inv))


async def plan_mute(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """ "Mute an instance": the mute form."""
    return Step(Subcommand.MUTE.value, partial(modals.open_mute, svc, inv, None))


ROUTES = (
    Route("event", "app_home_opened", HOME, plan_home_opened),
    Route("action", ActionId.HOME_PAGE_PREV, Subcommand.LIST.value, plan_page),
    Route("action", ActionId.HOME_PAGE_NEXT, Subcommand.LIST.value, plan_page),
    Route("action", ActionId.HOME_ROW_MENU, "menu", plan_row_menu),
    Route("action", ActionId.HOME_CREATE, Subcommand.CREATE.value, plan_create),
    Route("action", ActionId.HOME_MUTE, Subcommand.MUTE.value, plan_mute),
)
