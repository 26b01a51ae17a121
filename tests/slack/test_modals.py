"""Modals, shortcuts and the instance picker's suggestions, end to end over HTTP.

The emulator keeps each user's open modals as Slack does (views.open / update, the
``response_action`` of a submission) and refuses what Slack would (an element not in the
view, an option not offered, a view over Slack's limits, more than 100 options).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.blockkit.ids import ActionId, BlockId, CallbackId
from bot.sim.slack import Message
from bot.sim.slack_views import OpenModal
from tests.slack.conftest import ADMIN, NOBODY, OPERATOR, VIEWER, Bot
from tests.slack.test_app_home import home_text, open_home


async def open_modal_from_home(bot: Bot, action_id: str, user: str = OPERATOR) -> OpenModal:
    await open_home(bot, user)
    await bot.emulator.surfaces.click_home(bot.events_url, user, action_id)
    await bot.emulator.wait_for(lambda: bot.emulator.surfaces.modal(user) is not None)
    modal = bot.emulator.surfaces.modal(user)
    assert modal is not None
    return modal


async def wait_result(bot: Bot, user: str = OPERATOR) -> str:
    """Wait until the user's modal shows an outcome (✅/✖️); its text."""

    def done() -> bool:
        modal = bot.emulator.surfaces.modal(user)
        return modal is not None and any(mark in home_text(modal.view) for mark in ("✅", "✖️"))

    await bot.emulator.wait_for(done, timeout=8.0)
    modal = bot.emulator.surfaces.modal(user)
    assert modal is not None
    return home_text(modal.view)


async def audited(bot: Bot, action: str, count: int = 1) -> list[Any]:
    """Wait until ``count`` audit rows of ``action`` exist (written when work is done)."""
    found: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 8.0
    while len(found) < count:
        if loop.time() > deadline:
            raise TimeoutError(f"expected {count} audit rows of {action}, found {len(found)}")
        await asyncio.sleep(0.02)
        found = [r for r in await bot.audit() if r.action == action]
    return found


async def test_create_shows_errors_in_the_modal_then_creates(home_bot: Bot) -> None:
    bot = home_bot
    surfaces = bot.emulator.surfaces
    await open_modal_from_home(bot, ActionId.HOME_CREATE)
    region = bot.sim.instance(bot.ids[0])["region"]
    surfaces.fill(OPERATOR, BlockId.CREATE_NAME, "web-<!here>")
    surfaces.fill(OPERATOR, BlockId.CREATE_REGION, region)
    surfaces.fill(OPERATOR, BlockId.CREATE_REGION_TYPED, "eu-north-9")
    first = await surfaces.submit(bot.events_url, OPERATOR)
    assert first.outcome == "errors"
    assert first.errors == {
        BlockId.CREATE_REGION_TYPED: "Pick a region from the list or type one, not both."
    }
    assert not bot.emulator.messages(OPERATOR), "errors stay in the modal, never a message"
    usage = await bot.wait_audit(3)
    assert usage[0].action == "create" and usage[0].result == "usage"
    before = set(bot.sim.instance_ids())

    surfaces.fill(OPERATOR, BlockId.CREATE_REGION_TYPED, "")
    second = await surfaces.submit(bot.events_url, OPERATOR)
    assert second.outcome == "update"
    text = await wait_result(bot)
    assert "✅" in text
    [new] = set(bot.sim.instance_ids()) - before
    assert bot.sim.instance(new)["name"] == "web-<!here>"
    assert bot.sim.instance(new)["region"] == region
    announced = await bot.channel_message(lambda m: "web-" in m.visible_text(), channel="C0ALERTS")
    assert "<!here>" not in announced.text and "&lt;!here&gt;" in str(announced.blocks)
    assert bot.emulator.violations() == []


async def test_a_viewer_submitting_create_is_refused_in_the_modal(home_bot: Bot) -> None:
    bot = home_bot
    await open_home(bot, VIEWER)
    # A viewer cannot even open the form: the click is refused and said privately.
    await bot.emulator.surfaces.click_home(bot.events_url, VIEWER, ActionId.HOME_CREATE)
    await bot.emulator.wait_for(lambda: bool(bot.emulator.messages(VIEWER)))
    assert "operator" in bot.emulator.messages(VIEWER)[-1].visible_text()
    assert bot.emulator.surfaces.modal(VIEWER) is None
    # A form submitted anyway (opened while they had the role) is refused in the modal.
    trigger = bot.emulator.new_trigger_id(VIEWER)
    from bot.slack.blocks.modals import create_modal

    await bot.deps.web.views_open(trigger_id=trigger, view=create_modal(["eu-west-1"]))
    result = await bot.emulator.surfaces.submit(bot.events_url, VIEWER)
    assert result.outcome == "update"
    modal = bot.emulator.surfaces.modal(VIEWER)
    assert modal is not None and "You need the operator role" in home_text(modal.view)
    rows = await bot.wait_audit(3)
    assert rows[0].action == "create" and rows[0].result == "refused"


async def test_mute_through_the_modal_with_a_picked_instance(home_bot: Bot) -> None:
    bot = home_bot
    alerts = bot.use_alerts()
    surfaces = bot.emulator.surfaces
    await open_modal_from_home(bot, ActionId.HOME_MUTE)
    target = bot.ids[2]
    name = bot.sim.instance(target)["name"]
    options = await surfaces.suggest(bot.events_url, OPERATOR, BlockId.INSTANCE, name[-3:])
    assert options[0]["value"] == target
    surfaces.fill(OPERATOR, BlockId.INSTANCE, (target, options[0]["text"]["text"]))
    surfaces.fill(OPERATOR, BlockId.MUTE_DURATION_TYPED, "90")
    bad = await surfaces.submit(bot.events_url, OPERATOR)
    assert bad.outcome == "errors"
    assert bad.errors[BlockId.MUTE_DURATION_TYPED] == "90 needs a unit: 90m, 90h or 90d."
    surfaces.fill(OPERATOR, BlockId.MUTE_DURATION_TYPED, "90m")
    surfaces.fill(OPERATOR, BlockId.MUTE_OPTIONS, ["no_restart"])
    surfaces.fill(OPERATOR, BlockId.MUTE_REASON, "deploying <b>")
    assert (await surfaces.submit(bot.events_url, OPERATOR)).outcome == "update"
    assert "✅" in await wait_result(bot)
    [mute] = await alerts.silences.in_force()
    assert mute.instance_id == target and mute.no_restart and mute.actor == OPERATOR
    announced = await bot.channel_message(lambda m: "muted" in m.visible_text(), channel="C0ALERTS")
    assert "deploying &lt;b&gt;" in str(announced.blocks)
    await audited(bot, "mute", 2)  # the form opened, then the mute
    await bot.emulator.surfaces.open_home(bot.events_url, OPERATOR)
    await bot.emulator.wait_for(lambda: "🔕" in home_text(bot.emulator.home_views[OPERATOR]))
    assert name in home_text(bot.emulator.home_views[OPERATOR])


async def test_kill_confirmation_names_what_is_lost_and_kills_on_submit(home_bot: Bot) -> None:
    bot = home_bot
    target = bot.ids[4]
    view = await open_home(bot, ADMIN)
    row = next(b for b in view["blocks"] if str(b.get("block_id", "")).endswith(target))
    await bot.emulator.surfaces.click_home(
        bot.events_url,
        ADMIN,
        ActionId.HOME_ROW_MENU,
        block_id=row["block_id"],
        selected_option_value=f"kill:{target}",
    )
    await bot.emulator.wait_for(lambda: bot.emulator.surfaces.modal(ADMIN) is not None)
    modal = bot.emulator.surfaces.modal(ADMIN)
    assert modal is not None and modal.view["callback_id"] == CallbackId.KILL
    text = home_text(modal.view)
    assert "What is lost" in text and "cannot be undone" in text
    assert bot.sim.instance(target)["status"] != "stopped"  # nothing killed by opening it
    assert (await bot.emulator.surfaces.submit(bot.events_url, ADMIN)).outcome == "update"
    assert "✅" in await wait_result(bot, ADMIN)
    assert target not in bot.sim.instance_ids() or bot.sim.instance(target)["status"] in (
        "stopped",
        "deleting",
    )


async def test_the_kill_modal_is_single_use(home_bot: Bot) -> None:
    bot = home_bot
    target = bot.ids[4]
    view = await open_home(bot, ADMIN)
    row = next(b for b in view["blocks"] if str(b.get("block_id", "")).endswith(target))
    await bot.emulator.surfaces.click_home(
        bot.events_url,
        ADMIN,
        ActionId.HOME_ROW_MENU,
        block_id=row["block_id"],
        selected_option_value=f"kill:{target}",
    )
    await bot.emulator.wait_for(lambda: bot.emulator.surfaces.modal(ADMIN) is not None)
    modal = bot.emulator.surfaces.modal(ADMIN)
    assert modal is not None
    stale = dict(modal.view)
    await bot.emulator.surfaces.submit(bot.events_url, ADMIN)
    await wait_result(bot, ADMIN)
    # The same form submitted again (a replayed submission) spends no second token.
    trigger = bot.emulator.new_trigger_id(ADMIN)
    await bot.deps.web.views_open(trigger_id=trigger, view={**stale, "type": "modal"})
    await bot.emulator.surfaces.submit(bot.events_url, ADMIN)
    text = await wait_result(bot, ADMIN)
    assert "✖️" in text


async def test_the_global_shortcut_picks_an_instance_then_an_action(home_bot: Bot) -> None:
    bot = home_bot
    surfaces = bot.emulator.surfaces
    reply = await surfaces.shortcut(bot.events_url, CallbackId.ACT_SHORTCUT, OPERATOR)
    assert reply.status_code == 200 and reply.text == ""
    await bot.emulator.wait_for(lambda: surfaces.modal(OPERATOR) is not None)
    target = bot.ids[1]
    options = await surfaces.suggest(bot.events_url, OPERATOR, BlockId.INSTANCE, target[:6])
    assert [o["value"] for o in options] == [target]
    nothing = await surfaces.submit(bot.events_url, OPERATOR)
    assert nothing.errors == {BlockId.INSTANCE: "Pick an instance."}
    surfaces.fill(OPERATOR, BlockId.INSTANCE, (target, options[0]["text"]["text"]))
    step = await surfaces.submit(bot.events_url, OPERATOR)
    assert step.outcome == "update"
    modal = surfaces.modal(OPERATOR)
    assert modal is not None and modal.view["callback_id"] == CallbackId.ACT_CHOICE
    assert "is running" in home_text(modal.view)
    surfaces.fill(OPERATOR, BlockId.ACT_VERB, "restart")
    assert (await surfaces.submit(bot.events_url, OPERATOR)).outcome == "update"
    assert "✅" in await wait_result(bot)
    restarts = await audited(bot, "restart")
    assert restarts[0].instance_id == target and restarts[0].result == "ok"


async def test_mute_through_the_message_shortcut_on_an_incident(home_bot: Bot) -> None:
    bot = home_bot
    surfaces = bot.emulator.surfaces
    bot.sim.set_status(bot.ids[0], "error")
    alerts = bot.use_alerts()
    await bot.use_monitor(alerts)
    await alerts.delivery.run_once()
    root = await bot.channel_message(lambda m: "pod-001" in m.visible_text(), channel="C0ALERTS")
    await surfaces.message_shortcut(bot.events_url, CallbackId.INCIDENT_SHORTCUT, root, OPERATOR)
    await bot.emulator.wait_for(lambda: surfaces.modal(OPERATOR) is not None)
    surfaces.fill(OPERATOR, BlockId.ACT_VERB, "mute")
    assert (await surfaces.submit(bot.events_url, OPERATOR)).outcome == "update"
    modal = surfaces.modal(OPERATOR)
    assert modal is not None and modal.view["callback_id"] == CallbackId.MUTE
    surfaces.fill(OPERATOR, BlockId.MUTE_DURATION, "1h")
    assert (await surfaces.submit(bot.events_url, OPERATOR)).outcome == "update"
    assert "✅" in await wait_result(bot)
    [mute] = await alerts.silences.in_force()
    assert mute.instance_id == bot.ids[0]


async def test_the_message_shortcut_on_another_message_says_so(home_bot: Bot) -> None:
    bot = home_bot
    message = bot.emulator.workspace.post("C0OPS", text="just chatting", user=OPERATOR)
    assert isinstance(message, Message)
    await bot.emulator.surfaces.message_shortcut(
        bot.events_url, CallbackId.INCIDENT_SHORTCUT, message, OPERATOR
    )
    await bot.emulator.wait_for(lambda: bool(bot.emulator.ephemerals(OPERATOR)))
    assert "incident messages only" in bot.emulator.ephemerals(OPERATOR)[-1].visible_text()
    assert bot.emulator.surfaces.modal(OPERATOR) is None


async def test_suggestions_match_names_and_ids_at_most_100(home_bot: Bot) -> None:
    bot = home_bot
    bot.sim.seed_instances(150, name_prefix="web")
    await open_modal_from_home(bot, ActionId.HOME_MUTE)
    surfaces = bot.emulator.surfaces
    options = await surfaces.suggest(bot.events_url, OPERATOR, BlockId.INSTANCE, "WEB")
    assert len(options) == 100
    exact = await surfaces.suggest(bot.events_url, OPERATOR, BlockId.INSTANCE, "web-042")
    assert exact[0]["text"]["text"].split(" ", 2)[1] == "web-042"
    assert await surfaces.suggest(bot.events_url, OPERATOR, BlockId.INSTANCE, "zzz") == []
    # One fleet list served every keystroke (the short fleet cache).
    assert bot.deps.backend.fleet.fetches <= 2
    rows = await bot.wait_audit(5)  # Home, the mute form, three suggestions
    assert [r.args for r in rows if r.action == "list"].count("suggest 'zzz'") == 1


async def test_suggestions_are_empty_for_someone_without_a_role(home_bot: Bot) -> None:
    bot = home_bot
    trigger = bot.emulator.new_trigger_id(NOBODY)
    from bot.slack.blocks.modals import mute_modal

    await bot.deps.web.views_open(trigger_id=trigger, view=mute_modal())
    options = await bot.emulator.surfaces.suggest(bot.events_url, NOBODY, BlockId.INSTANCE, "pod")
    assert options == []
    rows = await bot.wait_audit(1)
    assert rows[0].result == "refused"


@pytest.mark.parametrize("tab", ["messages"])
async def test_opening_the_messages_tab_publishes_nothing(home_bot: Bot, tab: str) -> None:
    bot = home_bot
    reply = await bot.emulator.surfaces.open_home(bot.events_url, OPERATOR, tab=tab)
    assert reply.status_code == 200
    await open_home(bot)  # a later Home open is the signal that the first was handled
    assert len(bot.emulator.calls_to("views.publish")) == 1


async def test_a_slow_backend_still_gets_the_suggestion_acked_within_3_s(home_bot: Bot) -> None:
    """The answer in the ack has a budget: past it Slack gets no options, never a timeout."""
    bot = home_bot
    trigger = bot.emulator.new_trigger_id(OPERATOR)
    from bot.slack.blocks.modals import mute_modal

    await bot.deps.web.views_open(trigger_id=trigger, view=mute_modal())
    bot.sim.set_faults(latency_secs=4.0, endpoints=["list"])
    # The emulator raises SlackAckTimeout past Slack's 3 s: getting options back is the proof.
    options = await bot.emulator.surfaces.suggest(bot.events_url, OPERATOR, BlockId.INSTANCE, "p")
    assert options == []
    rows = await bot.wait_audit(1)
    assert rows[0].result == "error" and "no answer within" in (rows[0].detail or "")


async def test_a_slow_backend_while_reading_a_form_is_said_in_the_modal(home_bot: Bot) -> None:
    """The shortcut's first step reads the picked instance before the ack: past its budget
    the modal says so (acked within 3 s), and nothing else happens."""
    bot = home_bot
    surfaces = bot.emulator.surfaces
    await surfaces.shortcut(bot.events_url, CallbackId.ACT_SHORTCUT, OPERATOR)
    await bot.emulator.wait_for(lambda: surfaces.modal(OPERATOR) is not None)
    surfaces.fill(OPERATOR, BlockId.INSTANCE, (bot.ids[0], "pod-001"))
    bot.sim.set_faults(latency_secs=4.0, endpoints=["get", "list"])
    result = await surfaces.submit(bot.events_url, OPERATOR)
    assert result.outcome == "update"
    modal = surfaces.modal(OPERATOR)
    assert modal is not None and "could not read this form in time" in home_text(modal.view)
    rows = await bot.wait_audit(2)
    assert rows[0].result == "error" and "no answer within" in (rows[0].detail or "")


async def test_a_home_menu_value_the_bot_never_offered_is_answered_plainly(home_bot: Bot) -> None:
    bot = home_bot
    reply = await bot.emulator.send_block_action(
        bot.events_url,
        action_id=ActionId.HOME_ROW_MENU,
        selected_option_value="dance:abc",
        action_type="overflow",
    )
    assert reply.status_code == 200 and reply.text == ""
    await bot.emulator.wait_for(lambda: bool(bot.emulator.ephemerals(OPERATOR)))
    assert "not one I know" in bot.emulator.ephemerals(OPERATOR)[-1].visible_text()
    [row] = await bot.wait_audit(1)
    assert row.result == "usage" and row.action == "menu"


async def test_someone_without_a_role_cannot_open_the_shortcut(home_bot: Bot) -> None:
    bot = home_bot
    await bot.emulator.surfaces.shortcut(bot.events_url, CallbackId.ACT_SHORTCUT, NOBODY)
    await bot.emulator.wait_for(lambda: bool(bot.emulator.messages(NOBODY)))
    assert "you have no role" in bot.emulator.messages(NOBODY)[-1].visible_text()
    assert bot.emulator.surfaces.modal(NOBODY) is None
    [row] = await bot.wait_audit(1)
    assert row.result == "refused" and row.args == "shortcut"
