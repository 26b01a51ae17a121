"""Buttons and menus: the list's row menu and pager, the health card, the kill confirmation.

Each click is read into the step it asks for; the listener pipeline (``middleware.py``)
acknowledges it, acts on it once (Slack may deliver the same click twice: same
``action_ts``), re-checks the clicker's role (a message can be seen by people who may
not act on it) and writes it to the audit log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from bot.blockkit.ids import (
    ActionId,
    BlockId,
    MenuChoice,
    parse_menu_value,
    split_confirmed_block_id,
)
from bot.blockkit.mrkdwn import code
from bot.catalog import Subcommand
from bot.slack import blocks
from bot.slack.blocks.fleet import ListQuery
from bot.slack.handlers import info, lifecycle, ssh
from bot.slack.invocation import Invocation
from bot.slack.middleware import Route, Step
from bot.slack.parser import Command
from bot.slack.services import Services

CARD_CHOICES = {
    ActionId.CARD_LOGS: MenuChoice.LOGS,
    ActionId.CARD_HISTORY: MenuChoice.HISTORY,
    ActionId.CARD_SSH: MenuChoice.SSH,
    ActionId.CARD_RESTART: MenuChoice.RESTART,
    ActionId.CARD_PAUSE: MenuChoice.PAUSE,
}

ChoiceHandler = Callable[[Services, Invocation, Command], Awaitable[None]]
CHOICE_HANDLERS: dict[MenuChoice, tuple[Subcommand, ChoiceHandler]] = {
    MenuChoice.HEALTH: (Subcommand.HEALTH, info.show_health),
    MenuChoice.LOGS: (Subcommand.LOGS, info.show_logs),
    MenuChoice.HISTORY: (Subcommand.HISTORY, info.show_history),
    MenuChoice.SSH: (Subcommand.SSH, ssh.show_ssh),
    MenuChoice.RESTART: (Subcommand.RESTART, lifecycle.restart),
    MenuChoice.PAUSE: (Subcommand.PAUSE, lifecycle.pause),
    # From a menu, Kill… only shows the confirmation; the danger button kills.
    MenuChoice.KILL: (Subcommand.KILL, lifecycle.kill_prompt),
}


def _action(body: dict[str, Any]) -> dict[str, Any]:
    actions = body.get("actions") or [{}]
    first = actions[0]
    return first if isinstance(first, dict) else {}


def _choice_step(svc: Services, inv: Invocation, choice: MenuChoice, instance_id: str) -> Step:
    sub, handler = CHOICE_HANDLERS[choice]
    command = Command(sub, ref=instance_id)
    return Step(sub.value, partial(handler, svc, inv, command), instance_id=instance_id)


async def plan_row_menu(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """A fleet row's menu: the chosen entry, for the row's instance."""
    value = str((_action(body).get("selected_option") or {}).get("value") or "")
    parsed = parse_menu_value(value)
    if parsed is None:
        return Step("menu", partial(_unknown_menu_value, inv, value), check_role=False)
    choice, instance_id = parsed
    return _choice_step(svc, inv, choice, instance_id)


async def _unknown_menu_value(inv: Invocation, value: str) -> None:
    inv.draft.fail("usage", f"unknown menu value {value[:60]!r}")
    await inv.respond(
        blocks.user_error_answer("That menu entry is not one I know. Run /starpod list again.")
    )


async def plan_card_button(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """A health card's button: logs, history, ssh, restart or pause of the card's instance."""
    clicked = _action(body)
    choice = CARD_CHOICES[ActionId(clicked["action_id"])]
    return _choice_step(svc, inv, choice, str(clicked.get("value") or ""))


async def plan_list_page(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """The list's pager: the requested page, in place of the one paged from."""
    query = ListQuery.from_value(_action(body).get("value"))
    act = partial(info.show_list_page, svc, inv, query, replace=True)
    return Step(Subcommand.LIST.value, act)


async def plan_kill_confirm(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """The confirmed kill (the danger button, after Slack's confirm dialog).

    Only a confirmation the bot issued kills: the click spends the prompt's single-use
    token, bound to this instance and to the user it was shown to (after the role check,
    so a refused click leaves the token for its rightful user).
    """
    clicked = _action(body)
    instance_id = str(clicked.get("value") or "")
    block, token = split_confirmed_block_id(str(clicked.get("block_id") or ""))
    act = partial(
        spend_then_kill,
        svc,
        inv,
        instance_id,
        token,
        replace_prompt=block == BlockId.KILL_ACTIONS,
    )
    return Step(Subcommand.KILL.value, act, instance_id=instance_id or None)


async def spend_then_kill(
    svc: Services, inv: Invocation, instance_id: str, token: str | None, *, replace_prompt: bool
) -> None:
    """Spend the confirmation's token, then kill (the danger button and the kill modal)."""
    # Raises KillRefused (answered and audited as a refusal) before anything is killed.
    await svc.kill_confirmations.spend(token, instance_id=instance_id, user_id=inv.user_id)
    await lifecycle.kill_confirmed(svc, inv, instance_id, replace_prompt=replace_prompt)


async def plan_kill_cancel(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """Cancel on the kill prompt: anyone who sees it may take it away."""
    instance_id = str(_action(body).get("value") or "")
    act = partial(_cancel_kill, inv, instance_id)
    return Step("kill-cancel", act, instance_id=instance_id or None, check_role=False)


async def _cancel_kill(inv: Invocation, instance_id: str) -> None:
    # No backend call: cancelling must work even when the backend is down.
    short = instance_id[:8] or "the instance"
    await inv.respond(blocks.kill_cancelled(code(short), short), replace=True)


ROUTES = (
    Route("action", ActionId.ROW_MENU, "menu", plan_row_menu),
    *(Route("action", a, c.value, plan_card_button) for a, c in CARD_CHOICES.items()),
    Route("action", ActionId.LIST_PAGE_PREV, Subcommand.LIST.value, plan_list_page),
    Route("action", ActionId.LIST_PAGE_NEXT, Subcommand.LIST.value, plan_list_page),
    Route("action", ActionId.KILL_CONFIRM, Subcommand.KILL.value, plan_kill_confirm),
    Route("action", ActionId.KILL_CANCEL, "kill-cancel", plan_kill_cancel),
)
