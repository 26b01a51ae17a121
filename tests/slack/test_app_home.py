"""App Home, end to end: app_home_opened → views.publish, its buttons, paging, refreshes.

The emulator plays the user (signed Events API and block_actions from the published
view); the bot runs the real pipeline against the backend simulator and SQLite.
"""

from __future__ import annotations

from typing import Any

from bot.blockkit.ids import ActionId, BlockId, CallbackId
from bot.slack.blocks.home import HOME_PER_PAGE
from tests.slack.conftest import ADMIN, NOBODY, OPERATOR, VIEWER, Bot


def home_text(view: dict[str, Any]) -> str:
    """Everything readable in a view's blocks."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(view.get("blocks"))
    return "\n".join(parts)


async def open_home(bot: Bot, user: str = OPERATOR) -> dict[str, Any]:
    before = bot.emulator.home_views.get(user)
    reply = await bot.emulator.surfaces.open_home(bot.events_url, user)
    assert reply.status_code == 200, reply.text
    await bot.emulator.wait_for(lambda: bot.emulator.home_views.get(user) is not before)
    return bot.emulator.home_views[user]


def rows(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in view["blocks"] if str(b.get("block_id", "")).startswith(BlockId.HOME_ROW)]


async def test_home_shows_counts_attention_first_role_and_recent_actions(home_bot: Bot) -> None:
    bot = home_bot
    bot.sim.set_status(bot.ids[3], "error")
    await bot.ask("list")  # an audited action of this user's
    view = await open_home(bot)
    text = home_text(view)
    assert view["type"] == "home"
    assert "You are an *operator*" in text
    assert "*5 instances*" in text and "needs attention" in text
    first = rows(view)[0]
    assert first["block_id"].endswith(bot.ids[3])  # the broken one first
    assert "Your recent actions" in text and "list" in text
    assert bot.emulator.violations() == []
    audit = await bot.wait_audit(2)
    assert audit[0].action == "home" and audit[0].source == "button" and audit[0].args == "home"


async def test_someone_without_a_role_sees_no_fleet(home_bot: Bot) -> None:
    view = await open_home(home_bot, NOBODY)
    text = home_text(view)
    assert "You have no role" in text
    assert not rows(view)
    assert home_bot.ids[0] not in str(view)


async def test_restart_from_home_goes_through_the_actions_and_is_announced(home_bot: Bot) -> None:
    bot = home_bot
    view = await open_home(bot)
    target = bot.ids[0]
    row = next(b for b in rows(view) if b["block_id"].endswith(target))
    await bot.emulator.surfaces.click_home(
        bot.events_url,
        OPERATOR,
        ActionId.HOME_ROW_MENU,
        block_id=row["block_id"],
        selected_option_value=f"restart:{target}",
    )
    announced = await bot.channel_message(
        lambda m: "running again after" in m.visible_text(), channel="C0ALERTS"
    )
    assert "U0OPERATOR" in str(announced.blocks)  # who asked, as a mention
    await bot.wait_audit(2)  # the Home, then the restart (written when it is done)
    restarts = [r for r in await bot.audit() if r.action == "restart"]
    assert restarts and restarts[0].instance_id == target and restarts[0].result == "ok"
    assert bot.sim.instance(target)["status"] == "running"


async def test_a_viewer_is_refused_a_restart_from_home_and_told_privately(home_bot: Bot) -> None:
    bot = home_bot
    view = await open_home(bot, VIEWER)
    row = rows(view)[0]
    instance_id = row["block_id"].split(":", 1)[1]
    await bot.emulator.surfaces.click_home(
        bot.events_url,
        VIEWER,
        ActionId.HOME_ROW_MENU,
        block_id=row["block_id"],
        selected_option_value=f"restart:{instance_id}",
    )
    # Private surfaces answer in the user's messages with the app.
    await bot.emulator.wait_for(lambda: bool(bot.emulator.messages(VIEWER)))
    answer = bot.emulator.messages(VIEWER)[-1].visible_text()
    assert "operator" in answer and "viewer" in answer
    await bot.wait_audit(2)
    refused = [r for r in await bot.audit() if r.action == "restart"]
    assert refused[0].result == "refused"


async def test_home_is_paged_for_a_large_fleet(home_bot: Bot) -> None:
    bot = home_bot
    bot.sim.seed_instances(HOME_PER_PAGE * 2)
    view = await open_home(bot)
    assert len(rows(view)) == HOME_PER_PAGE
    assert len(view["blocks"]) <= 100
    first_page = {r["block_id"] for r in rows(view)}
    before = view
    await bot.emulator.surfaces.click_home(bot.events_url, OPERATOR, ActionId.HOME_PAGE_NEXT)
    await bot.emulator.wait_for(lambda: bot.emulator.home_views[OPERATOR] is not before)
    second = bot.emulator.home_views[OPERATOR]
    assert "Page 2 of 3" in home_text(second)
    assert not first_page & {r["block_id"] for r in rows(second)}


async def test_home_refreshes_after_a_change_elsewhere(home_bot: Bot) -> None:
    bot = home_bot
    view = await open_home(bot, ADMIN)
    published = len(bot.emulator.calls_to("views.publish"))
    await bot.slash(f"pause {bot.ids[1]}")  # a change made with a slash command
    await bot.emulator.wait_for(lambda: bot.emulator.home_views[ADMIN] is not view)
    refreshed = bot.emulator.home_views[ADMIN]
    paused = next(b for b in rows(refreshed) if b["block_id"].endswith(bot.ids[1]))
    assert "paused" in home_text({"blocks": [paused]})
    # One refresh for the change: the Home was not republished for each step of it.
    assert len(bot.emulator.calls_to("views.publish")) == published + 1
    assert bot.emulator.violations() == []


async def test_create_and_mute_buttons_open_their_modals(home_bot: Bot) -> None:
    bot = home_bot
    await open_home(bot)
    await bot.emulator.surfaces.click_home(bot.events_url, OPERATOR, ActionId.HOME_CREATE)
    await bot.emulator.wait_for(lambda: bot.emulator.surfaces.modal(OPERATOR) is not None)
    modal = bot.emulator.surfaces.modal(OPERATOR)
    assert modal is not None and modal.view["callback_id"] == CallbackId.CREATE
    regions = next(b for b in modal.view["blocks"] if b.get("block_id") == BlockId.CREATE_REGION)[
        "element"
    ]["options"]
    expected = {bot.sim.instance(i)["region"] for i in bot.ids}
    assert {o["value"] for o in regions} == expected


async def test_home_lists_mutes_and_maintenance_in_force(home_bot: Bot) -> None:
    from datetime import timedelta

    bot = home_bot
    alerts = bot.use_alerts()
    now = bot.clock()
    await alerts.mute(bot.ids[0], now + timedelta(hours=1), True, ADMIN)
    await alerts.maintenance.add(
        "pod-00*", now, timedelta(hours=2), no_restart=False, reason="<b>kernel</b>", actor=ADMIN
    )
    view = await open_home(bot)
    mutes = next(b for b in view["blocks"] if b.get("block_id") == BlockId.HOME_MUTES)
    text = mutes["text"]["text"]
    assert f"`{bot.ids[0][:8]}`" in text and "auto-restart off" in text and "<@U0ADMIN>" in text
    assert "pod-00*" in text and "&lt;b&gt;kernel&lt;/b&gt;" in text
