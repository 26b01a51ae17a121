"""Buttons and menus: the list's row menu and pager, the health card, the kill confirmation.

Every click is acknowledged first, acted on once (Slack may deliver the same click twice:
same ``action_ts``), re-checked against the clicker's role (a message can be seen by
people who may not act on it), and written to the audit log.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.slack import blocks
from bot.slack.ack import RECEIVED_AT, ack_first
from bot.slack.blocks.fleet import ListQuery
from bot.slack.catalog import Subcommand
from bot.slack.commands import INVOCATION
from bot.slack.handlers import info, lifecycle, ssh
from bot.slack.ids import ActionId, BlockId, MenuChoice, parse_menu_value
from bot.slack.invocation import Invocation
from bot.slack.mrkdwn import code
from bot.slack.parser import Command
from bot.slack.services import Services

log = logging.getLogger(__name__)

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


def _start(
    svc: Services, body: dict[str, Any], context: AsyncBoltContext, action: str
) -> Invocation | None:
    """The click's invocation, or None when this exact click was already handled."""
    clicked = _action(body)
    user = (body.get("user") or {}).get("id", "")
    key = str(clicked.get("action_ts") or body.get("trigger_id") or "")
    value = str(clicked.get("value") or (clicked.get("selected_option") or {}).get("value") or "")
    if not svc.clicks.first_time(key, user, str(clicked.get("action_id")), value):
        log.info("duplicate delivery of %s by %s ignored", clicked.get("action_id"), user)
        return None
    inv = Invocation.from_body(svc.deps.web, body, action=action, started=context.get(RECEIVED_AT))
    context[INVOCATION] = inv
    return inv


async def _run_choice(svc: Services, inv: Invocation, choice: MenuChoice, instance_id: str) -> None:
    sub, handler = CHOICE_HANDLERS[choice]
    inv.draft.action = sub.value
    inv.draft.instance_id = instance_id
    await svc.access.check(inv.user_id, inv.channel_id, sub.value)
    await handler(svc, inv, Command(sub, ref=instance_id))
    await svc.audit.write(inv.draft)


def register(app: AsyncApp, svc: Services) -> None:
    """Listen for every button and menu the bot's messages carry."""

    async def row_menu(body: dict[str, Any], context: AsyncBoltContext) -> None:
        inv = _start(svc, body, context, "menu")
        if inv is None:
            return
        value = str((_action(body).get("selected_option") or {}).get("value") or "")
        parsed = parse_menu_value(value)
        if parsed is None:
            inv.draft.fail("usage", f"unknown menu value {value[:60]!r}")
            await inv.respond(
                blocks.user_error_answer(
                    "That menu entry is not one I know. Run /starpod list again."
                )
            )
            await svc.audit.write(inv.draft)
            return
        choice, instance_id = parsed
        await _run_choice(svc, inv, choice, instance_id)

    async def card_button(body: dict[str, Any], context: AsyncBoltContext) -> None:
        clicked = _action(body)
        choice = CARD_CHOICES[ActionId(clicked["action_id"])]
        inv = _start(svc, body, context, choice.value)
        if inv is None:
            return
        await _run_choice(svc, inv, choice, str(clicked.get("value") or ""))

    async def list_page(body: dict[str, Any], context: AsyncBoltContext) -> None:
        inv = _start(svc, body, context, Subcommand.LIST.value)
        if inv is None:
            return
        query = ListQuery.from_value(_action(body).get("value"))
        await svc.access.check(inv.user_id, inv.channel_id, Subcommand.LIST.value)
        await info.show_list_page(svc, inv, query, replace=True)
        await svc.audit.write(inv.draft)

    async def kill_confirm(body: dict[str, Any], context: AsyncBoltContext) -> None:
        inv = _start(svc, body, context, Subcommand.KILL.value)
        if inv is None:
            return
        clicked = _action(body)
        instance_id = str(clicked.get("value") or "")
        inv.draft.instance_id = instance_id or None
        await svc.access.check(inv.user_id, inv.channel_id, Subcommand.KILL.value)
        from_prompt = clicked.get("block_id") == BlockId.KILL_ACTIONS
        await lifecycle.kill_confirmed(svc, inv, instance_id, replace_prompt=from_prompt)
        await svc.audit.write(inv.draft)

    async def kill_cancel(body: dict[str, Any], context: AsyncBoltContext) -> None:
        inv = _start(svc, body, context, "kill-cancel")
        if inv is None:
            return
        # No backend call: cancelling must work even when the backend is down.
        instance_id = str(_action(body).get("value") or "")
        inv.draft.instance_id = instance_id or None
        short = instance_id[:8] or "the instance"
        await inv.respond(blocks.kill_cancelled(code(short), short), replace=True)
        await svc.audit.write(inv.draft)

    listeners: list[tuple[str, Listener]] = [
        (ActionId.ROW_MENU, row_menu),
        *((action_id, card_button) for action_id in CARD_CHOICES),
        (ActionId.LIST_PAGE_PREV, list_page),
        (ActionId.LIST_PAGE_NEXT, list_page),
        (ActionId.KILL_CONFIRM, kill_confirm),
        (ActionId.KILL_CANCEL, kill_cancel),
    ]
    for action_id, listener in listeners:
        app.action(action_id, middleware=[ack_first])(in_work_slot(svc, listener))


Listener = Callable[[dict[str, Any], AsyncBoltContext], Awaitable[None]]


def in_work_slot(svc: Services, listener: Listener) -> Listener:
    """Run ``listener`` inside one of the work slots (the ack already happened)."""

    @functools.wraps(listener)
    async def wrapped(body: dict[str, Any], context: AsyncBoltContext) -> None:
        async with svc.work.hold():
            await listener(body, context)

    return wrapped
