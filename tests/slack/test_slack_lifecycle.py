"""Actions that change an instance: announced in the channel, then updated in place."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlencode

import aiohttp

from bot.blockkit.ids import ActionId, BlockId, MenuChoice, menu_value, row_block_id
from bot.instances import Actor, InstanceLocks, Lease, Verb
from bot.sim.slack import Message
from bot.sim.slack_payloads import action_entry, block_actions_payload, find_element
from bot.sim.slack_signing import signed_headers
from tests.slack.conftest import ADMIN, CHANNEL, OPERATOR, Bot, message_text


async def test_restart_is_announced_then_updated(bot: Bot) -> None:
    instance_id = bot.ids[0]
    reply = await bot.slash("restart pod-001")
    assert reply.status_code == 200 and reply.text == ""
    done = await bot.channel_message(lambda m: "running again after" in m.text)
    # One message, edited: it said "is restarting…" first.
    assert len(bot.emulator.messages(CHANNEL)) == 1
    assert "<@U0OPERATOR> is restarting *pod-001*" in done.edits[0].blocks[0]["text"]["text"]
    assert "Restart asked by <@U0OPERATOR>" in message_text(done)
    assert bot.sim.calls[("restart", instance_id)] == 1
    assert bot.sim.instance(instance_id)["status"] == "running"
    [entry] = await bot.wait_audit(1)
    assert (entry.action, entry.result, entry.instance_id) == ("restart", "ok", instance_id)
    assert entry.duration_ms is not None and entry.duration_ms >= 50  # waited for the restart
    assert bot.emulator.violations() == []


async def test_restart_waits_for_a_fresh_start_not_just_running(bot: Bot) -> None:
    bot.sim.transition_secs = 0.5
    started = time.monotonic()
    await bot.slash("restart pod-002")
    await bot.channel_message(lambda m: "running again after" in m.text)
    # The instance said "running" all along; the bot waited for the new uptime.
    assert time.monotonic() - started >= 0.5


async def test_pause_then_restart_resumes(bot: Bot) -> None:
    await bot.slash("pause pod-001")
    paused = await bot.channel_message(lambda m: "paused after" in m.text)
    assert "⏸️" in paused.text or "⏸️" in message_text(paused)
    assert bot.sim.instance(bot.ids[0])["status"] == "paused"
    await bot.slash("restart pod-001")
    await bot.channel_message(lambda m: "running again" in m.text)
    assert bot.sim.instance(bot.ids[0])["status"] == "running"


async def test_create_announces_the_new_instance(bot: Bot) -> None:
    await bot.slash("create --name web-9 --region eu-west-1")
    done = await bot.channel_message(lambda m: "created and running" in m.text)
    text = message_text(done)
    assert "*web-9*" in text
    assert "<@U0OPERATOR> is creating a new instance *web-9* in eu-west-1" in message_text(
        Message(ts="", channel="", text="", blocks=done.edits[0].blocks)
    )
    created = [i for i in bot.sim.instance_ids() if i not in bot.ids]
    assert len(created) == 1 and created[0][:8] in text
    [entry] = await bot.wait_audit(1)
    assert entry.instance_id == created[0]


async def test_backend_refusal_is_shown_with_status_and_body(bot: Bot) -> None:
    bot.sim.set_status(bot.ids[0], "stopped")
    await bot.slash("pause pod-001")
    failed = await bot.channel_message(lambda m: "failed" in m.text)
    text = message_text(failed)
    assert "❌ Pause of *pod-001*" in text
    assert "409" in text and "Cannot pause: instance is stopped" in text
    [entry] = await bot.wait_audit(1)
    assert entry.result == "error" and "409" in (entry.detail or "")


async def test_an_action_that_never_completes_says_so(bot: Bot) -> None:
    bot.sim.transition_secs = 60
    bot.deps.action_poll_timeout = 0.3
    bot.sim.set_variant(extended_statuses=True)
    await bot.slash("pause pod-001")
    late = await bot.channel_message(lambda m: "still" in m.text)
    assert "accepted, but it is still *stopping*" in message_text(late)
    assert "`/starpod health pod-001` shows the latest" in message_text(late)


async def test_kill_asks_first_and_kills_only_on_the_click(bot: Bot) -> None:
    instance_id = bot.ids[2]
    prompt = await bot.ask("kill pod-003", user=ADMIN)
    assert "Nothing happens until you confirm" in message_text(prompt)
    await asyncio.sleep(0.2)
    assert bot.sim.calls[("kill", instance_id)] == 0
    assert bot.emulator.messages(CHANNEL) == []
    button = find_element(prompt, ActionId.KILL_CONFIRM, None)
    assert button is not None
    assert button[1]["style"] == "danger" and button[1]["confirm"]["style"] == "danger"
    await bot.click(prompt, ActionId.KILL_CONFIRM, user=ADMIN)
    done = await bot.channel_message(lambda m: "killed after" in m.text)
    assert "🗑️ *pod-003*" in message_text(done)
    assert bot.sim.calls[("kill", instance_id)] == 1
    assert bot.sim.instance(instance_id)["status"] == "stopped"
    # The confirmation was replaced, so it cannot be clicked again.
    assert "requested" in message_text(prompt)
    assert find_element(prompt, ActionId.KILL_CONFIRM, None) is None
    assert bot.emulator.violations() == []


async def test_kill_cancel(bot: Bot) -> None:
    prompt = await bot.ask("kill pod-003", user=ADMIN)
    await bot.click(prompt, ActionId.KILL_CANCEL, user=ADMIN)
    await bot.emulator.wait_for(lambda: "Nothing was killed" in message_text(prompt))
    assert bot.sim.calls[("kill", bot.ids[2])] == 0


async def test_kill_from_the_list_menu_goes_through_the_confirmation(bot: Bot) -> None:
    instance_id = bot.ids[3]
    page = await bot.ask("list", user=ADMIN)
    prompt = await bot.click_for_answer(
        page,
        ActionId.ROW_MENU,
        user=ADMIN,
        block_id=row_block_id(instance_id),
        selected_option_value=menu_value(MenuChoice.KILL, instance_id),
    )
    assert "Nothing happens until you confirm" in message_text(prompt)
    assert bot.sim.calls[("kill", instance_id)] == 0
    await bot.click(prompt, ActionId.KILL_CONFIRM, user=ADMIN)
    await bot.channel_message(lambda m: "killed after" in m.text)
    assert bot.sim.calls[("kill", instance_id)] == 1


async def test_row_menu_restart_and_health(bot: Bot) -> None:
    instance_id = bot.ids[1]
    page = await bot.ask("list")
    card = await bot.click_for_answer(
        page,
        ActionId.ROW_MENU,
        block_id=row_block_id(instance_id),
        selected_option_value=menu_value(MenuChoice.HEALTH, instance_id),
    )
    assert "*CPU*" in message_text(card)
    await bot.click(
        page,
        ActionId.ROW_MENU,
        block_id=row_block_id(instance_id),
        selected_option_value=menu_value(MenuChoice.RESTART, instance_id),
    )
    await bot.channel_message(lambda m: "running again" in m.text)
    assert bot.sim.calls[("restart", instance_id)] == 1


async def test_card_pause_button(bot: Bot) -> None:
    card = await bot.ask("health pod-002")
    await bot.click(card, ActionId.CARD_PAUSE)
    await bot.channel_message(lambda m: "paused after" in m.text)
    assert bot.sim.instance(bot.ids[1])["status"] == "paused"


async def _post_click_twice(bot: Bot, message: Message, action_id: str, user: str) -> None:
    """Deliver the very same signed click twice, as Slack does when it retries."""
    block_id, element = find_element(message, action_id, None)  # type: ignore[misc]
    action = action_entry(
        action_id=action_id,
        block_id=block_id,
        action_type="button",
        action_ts=f"{time.time():.6f}",
        value=element.get("value"),
        selected_option_value=None,
        element=element,
    )
    payload = block_actions_payload(
        user_id=user,
        user_name="admin",
        channel_id=CHANNEL,
        channel_name="ops",
        message=message,
        message_ts=message.ts,
        is_ephemeral=message.ephemeral_for is not None,
        response_url=bot.emulator.new_response_url(
            channel_id=CHANNEL, user_id=user, message_ts=message.ts
        ),
        trigger_id=bot.emulator.new_trigger_id(),
        action=action,
    )
    body = urlencode({"payload": json.dumps(payload)}).encode()
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            headers = signed_headers(bot.emulator.signing_secret, body, int(time.time()))
            async with session.post(bot.events_url, data=body, headers=headers) as response:
                assert response.status == 200


async def test_a_click_delivered_twice_acts_once(bot: Bot) -> None:
    instance_id = bot.ids[4]
    prompt = await bot.ask("kill pod-005", user=ADMIN)
    await _post_click_twice(bot, prompt, ActionId.KILL_CONFIRM, ADMIN)
    await bot.channel_message(lambda m: "killed after" in m.text)
    await asyncio.sleep(0.3)
    assert bot.sim.calls[("kill", instance_id)] == 1
    assert len(bot.emulator.messages(CHANNEL)) == 1
    rows = await bot.wait_audit(2)
    assert [r.action for r in rows].count("kill") == 2  # the prompt, and one kill


async def test_a_second_action_while_one_runs_is_told_to_wait(bot: Bot) -> None:
    bot.sim.transition_secs = 0.6
    await bot.slash("restart pod-001", user=ADMIN)
    await bot.channel_message(lambda m: "is restarting" in message_text(m))
    answer = await bot.ask("pause pod-001")
    assert "<@U0ADMIN> started a restart" in message_text(answer)
    await bot.channel_message(lambda m: "running again" in m.text)
    assert bot.sim.calls[("pause", bot.ids[0])] == 0


async def test_without_channel_access_progress_goes_to_the_user(bot: Bot) -> None:
    # The emulator knows no channel C0SECRET: chat.postMessage answers channel_not_found.
    notes = await bot.ask("restart pod-001", channel="C0SECRET")
    assert "could not post in this channel" in message_text(notes)
    await bot.emulator.wait_for(
        lambda: any("running again" in m.text for m in bot.emulator.ephemerals(OPERATOR))
    )
    assert bot.sim.calls[("restart", bot.ids[0])] == 1


async def test_announcement_survives_a_rate_limited_update(bot: Bot) -> None:
    bot.emulator.fail_next(1, status=429, retry_after=1, methods={"chat.update"})
    await bot.slash("restart pod-001")
    done = await bot.channel_message(lambda m: "running again" in m.text, wait=8)
    assert done.edits  # updated in place after waiting out the 429
    assert bot.emulator.violations() == []


async def test_pager_block_is_only_on_big_lists(bot: Bot) -> None:
    page = await bot.ask("list")
    assert BlockId.LIST_PAGER not in [b.get("block_id") for b in page.blocks]


async def test_an_action_while_the_monitor_restarts_the_instance_is_told_so(bot: Bot) -> None:
    instance_id = bot.ids[0]
    # The health monitor (on this replica or another) is auto-restarting it right now.
    locks = InstanceLocks(bot.db, holder="replica-b", clock=bot.clock)
    lease = await locks.acquire(instance_id, Verb.RESTART, Actor.monitor())
    assert isinstance(lease, Lease)
    answer = await bot.ask("pause pod-001")
    await locks.release(lease)
    text = message_text(answer)
    assert "⏳" in text and "the health monitor started a restart" in text
    assert "still running" in text and "failed" not in text.lower()
    assert bot.sim.calls[("pause", instance_id)] == 0
    assert bot.emulator.messages(CHANNEL) == [], "nothing announced"
    [entry] = await bot.wait_audit(1)
    assert (entry.action, entry.result) == ("pause", "error")
    assert "a restart is already in progress" in (entry.detail or "")
