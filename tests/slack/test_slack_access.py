"""Who may do what: every role against every subcommand and every button.

Each request writes exactly one audit row when it is done, so the row's result is the
oracle: ``refused`` or not. Refusals must also tell the user which role is needed.
"""

from __future__ import annotations

import pytest

from bot.blockkit.ids import ActionId, MenuChoice, menu_value
from bot.catalog import Role
from tests.slack.conftest import ADMIN, CHANNEL, NOBODY, OPERATOR, VIEWER, Bot, message_text

ROLES = {ADMIN: Role.ADMIN, OPERATOR: Role.OPERATOR, VIEWER: Role.VIEWER, NOBODY: None}

# (command text, role needed); instances are pod-001 … pod-005.
COMMANDS = [
    ("list", Role.VIEWER),
    ("health pod-001", Role.VIEWER),
    ("logs pod-001", Role.VIEWER),
    ("history pod-001", Role.VIEWER),
    ("audit", Role.VIEWER),
    ("status", Role.VIEWER),
    ("create --name made-here", Role.OPERATOR),
    ("pause pod-002", Role.OPERATOR),
    ("restart pod-003", Role.OPERATOR),
    ("ssh pod-001", Role.OPERATOR),
    ("mute pod-001 1h", Role.OPERATOR),
    ("unmute pod-001", Role.OPERATOR),
    ("budget reset pod-001", Role.OPERATOR),
    ("kill pod-004", Role.ADMIN),
]


def allowed(user: str, needed: Role) -> bool:
    role = ROLES[user]
    return role is not None and role >= needed


async def run_and_audit(bot: Bot, send: object, count: int) -> str:
    """Run ``send`` (a coroutine) and return the result of the audit row it wrote."""
    await send  # type: ignore[misc]
    rows = await bot.wait_audit(count, wait=8)
    return rows[0].result


@pytest.mark.parametrize("user", [ADMIN, OPERATOR, VIEWER, NOBODY])
async def test_slash_command_role_matrix(bot: Bot, user: str) -> None:
    bot.use_alerts()
    for count, (text, needed) in enumerate(COMMANDS, start=1):
        before = len(bot.emulator.ephemerals(user))
        result = await run_and_audit(bot, bot.slash(text, user=user), count)
        if allowed(user, needed):
            assert result == "ok", (user, text, result)
        else:
            assert result == "refused", (user, text, result)
            refusal = message_text(bot.emulator.ephemerals(user)[before])
            assert f"You need the {needed.label} role" in refusal
    # Nothing that changes an instance ran for a refused user.
    if not allowed(user, Role.OPERATOR):
        assert bot.sim.calls[("pause", bot.ids[1])] == 0
        assert bot.sim.calls[("restart", bot.ids[2])] == 0
        assert bot.emulator.messages(CHANNEL) == []
    assert bot.sim.calls[("kill", bot.ids[3])] == 0  # kill never runs from the command
    assert bot.emulator.violations() == []


async def test_help_works_without_a_role(bot: Bot) -> None:
    text = message_text(await bot.ask("help", user=NOBODY))
    assert "You have no role yet" in text


# (action_id, value or menu option, role needed)
def buttons(bot: Bot) -> list[tuple[str, dict[str, str], Role]]:
    a, b, c, d = bot.ids[0], bot.ids[1], bot.ids[2], bot.ids[3]
    return [
        (
            ActionId.ROW_MENU,
            {"selected_option_value": menu_value(MenuChoice.HEALTH, a)},
            Role.VIEWER,
        ),
        (ActionId.ROW_MENU, {"selected_option_value": menu_value(MenuChoice.LOGS, a)}, Role.VIEWER),
        (ActionId.CARD_HISTORY, {"value": a}, Role.VIEWER),
        (ActionId.LIST_PAGE_NEXT, {"value": '{"p":1}'}, Role.VIEWER),
        (
            ActionId.ROW_MENU,
            {"selected_option_value": menu_value(MenuChoice.SSH, a)},
            Role.OPERATOR,
        ),
        (
            ActionId.ROW_MENU,
            {"selected_option_value": menu_value(MenuChoice.RESTART, b)},
            Role.OPERATOR,
        ),
        (ActionId.CARD_PAUSE, {"value": c}, Role.OPERATOR),
        (ActionId.CARD_LOGS, {"value": a}, Role.VIEWER),
        (ActionId.ROW_MENU, {"selected_option_value": menu_value(MenuChoice.KILL, d)}, Role.ADMIN),
        (ActionId.KILL_CONFIRM, {"value": d}, Role.ADMIN),
    ]


@pytest.mark.parametrize("user", [ADMIN, OPERATOR, VIEWER, NOBODY])
async def test_button_role_matrix(bot: Bot, user: str) -> None:
    for count, (action_id, extra, needed) in enumerate(buttons(bot), start=1):
        kind = "overflow" if "selected_option_value" in extra else "button"
        if action_id == ActionId.KILL_CONFIRM:  # the kill button of a card shown to this user
            extra = {**extra, "block_id": await bot.kill_block_id(user, extra["value"])}
        click = bot.emulator.send_block_action(
            bot.events_url,
            action_id=action_id,
            user_id=user,
            channel_id=CHANNEL,
            action_type=kind,
            **extra,
        )
        result = await run_and_audit(bot, click, count)
        expected = "ok" if allowed(user, needed) else "refused"
        assert result == expected, (user, action_id, extra, result)
    if allowed(user, Role.ADMIN):
        await bot.channel_message(lambda m: "killed after" in m.text)
        assert bot.sim.calls[("kill", bot.ids[3])] == 1
    else:
        assert bot.sim.calls[("kill", bot.ids[3])] == 0
    if not allowed(user, Role.OPERATOR):
        assert bot.sim.calls[("restart", bot.ids[1])] == 0
        assert bot.sim.calls[("pause", bot.ids[2])] == 0


async def test_without_access_configuration_everyone_is_an_operator_and_may_kill(
    open_bot: Bot,
) -> None:
    bot = open_bot
    text = message_text(await bot.ask("help", user=NOBODY))
    assert "everyone here is an operator" in text
    prompt = await bot.ask("kill pod-002", user=NOBODY)
    assert "Nothing happens until you confirm" in message_text(prompt)
    assert bot.sim.calls[("kill", bot.ids[1])] == 0
    await bot.click(prompt, ActionId.KILL_CONFIRM, user=NOBODY)
    await bot.channel_message(lambda m: "killed after" in m.text)
    assert bot.sim.calls[("kill", bot.ids[1])] == 1


async def test_channel_restriction(bot: Bot) -> None:
    bot.settings.access.channels.append(CHANNEL)
    refused = message_text(await bot.ask("list", user=ADMIN, channel="C0GENERAL"))
    assert "accepted in <#C0OPS> only" in refused
    assert "instances" in message_text(await bot.ask("list", user=ADMIN, channel=CHANNEL))
    assert "/starpod list" in message_text(await bot.ask("help", user=ADMIN, channel="C0GENERAL"))


async def test_group_members_are_cached(bot: Bot) -> None:
    for _ in range(4):
        await bot.ask("list", user=OPERATOR)
    assert len(bot.emulator.calls_to("usergroups.users.list")) == 1


async def test_group_lookup_failure_denies(bot: Bot) -> None:
    bot.emulator.fail_next(1, status=403, methods={"usergroups.users.list"})
    refused = message_text(await bot.ask("restart pod-001", user=OPERATOR))
    assert "You need the operator role" in refused
    assert bot.sim.calls[("restart", bot.ids[0])] == 0
