"""Exactly once under replay, and a kill only from a confirmation the bot issued.

A signed request delivered again (byte for byte, as a captured request is replayed within
Slack's five-minute window, or as Slack retries it with ``X-Slack-Retry-Num``) gets its
200 and does nothing else: no second action, answer or audit row, on this replica or any
other (the dedupe key is in the database: two replicas with their own engines on one
PostgreSQL database see one action). A kill click acts only when it spends the
single-use token of a prompt shown to the clicking user for that instance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from sqlalchemy import func, select

from bot.blockkit.ids import ActionId, BlockId, confirmed_block_id, split_confirmed_block_id
from bot.config import Settings
from bot.sim.slack import Delivery, Message
from bot.sim.slack_payloads import find_element, slash_command_fields
from bot.slack import create_app
from bot.store.database import Database
from bot.store.deliveries import DeliveryLog
from bot.store.slack_models import AuditEntry, SlackDelivery

ADMIN, OPERATOR = "U0ADMIN", "U0OPERATOR"
OTHER = "U0SOMEONE"
CHANNEL = "C0OPS"
IGNORED = "repeated delivery of"


async def _audited(db: Database, action: str) -> int:
    async with db.session() as session:
        query = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
        return int(await session.scalar(query) or 0)


async def _until(check: Callable[[], Any], what: str, secs: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + secs
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert loop.time() < deadline, what
        await asyncio.sleep(0.02)


def _ignored(caplog: pytest.LogCaptureFixture) -> int:
    return sum(IGNORED in r.getMessage() for r in caplog.records)


async def _replay(bot: Any, delivery: Delivery, times: int, *, url: str | None = None) -> None:
    """Deliver ``delivery`` ``times`` more times: captured copies, then Slack retries."""
    for attempt in range(times):
        retry = attempt + 1 if attempt % 2 else None
        reply = await bot.slack.redeliver(delivery, target_url=url, retry_num=retry)
        assert reply.status_code == 200 and reply.text == ""


async def test_a_signed_restart_delivered_four_times_restarts_once(
    bot: Any, caplog: pytest.LogCaptureFixture, reliability_figures: dict[str, object]
) -> None:
    caplog.set_level(logging.INFO, logger="bot.slack.middleware")
    target = bot.sim.instance_ids()[0]
    name = bot.sim.instance(target)["name"]
    reply = await bot.slack.send_slash_command(bot.events_url, f"restart {name}", user_id=ADMIN)
    assert reply.status_code == 200
    delivery = bot.slack.last_delivery
    await _replay(bot, delivery, 3)
    # Each copy is dropped in its listener task and says so: wait for all three.
    await _until(lambda: _ignored(caplog) == 3, "three repeats ignored")
    await _until(lambda: _audited(bot.db, "restart"), "the restart audited")
    assert bot.sim.calls[("restart", target)] == 1
    assert await _audited(bot.db, "restart") == 1
    # One announcement (edited in place when done), and no second answer of any kind.
    assert len(bot.slack.messages(CHANNEL)) == 1
    assert bot.slack.ephemerals(ADMIN) == []
    reliability_figures.update(replays_delivered=4, actions_taken=1)


async def test_a_replayed_click_acts_once(bot: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.slack.middleware")
    target = bot.sim.instance_ids()[1]
    reply = await bot.slack.send_block_action(
        bot.events_url, action_id=ActionId.CARD_RESTART, value=target, user_id=ADMIN
    )
    assert reply.status_code == 200
    await _replay(bot, bot.slack.last_delivery, 2)
    await _until(lambda: bot.sim.calls[("restart", target)] >= 1, "the restart")
    await _until(lambda: _audited(bot.db, "restart"), "the restart audited")
    # The byte-for-byte copy stops at this process's click memory; the retry (signed anew,
    # same payload) at the database: either way nothing acts twice.
    assert bot.sim.calls[("restart", target)] == 1
    assert await _audited(bot.db, "restart") == 1


async def test_expired_delivery_keys_are_pruned(bot: Any) -> None:
    log = DeliveryLog(bot.db, bot.utc)
    assert await log.first_time("k" * 64)
    assert not await log.first_time("k" * 64)
    bot.clock.advance(601)  # past the signature window on either side
    assert await log.prune() >= 1
    async with bot.db.session() as session:
        left = await session.scalar(
            select(func.count()).select_from(SlackDelivery).where(SlackDelivery.key == "k" * 64)
        )
    assert left == 0
    assert await log.first_time("k" * 64)


# -- across replicas: the key lives in PostgreSQL ---------------------------------------------


async def test_two_replicas_on_one_postgres_act_once(
    pg_store: Database,
    start_replica: Callable[[Database], Any],
    reliability_figures: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.slack.middleware")
    second_engine = Database(pg_store.url)  # its own engine and pool, as another process has
    try:
        async with start_replica(pg_store) as first, start_replica(second_engine) as second:
            first.sim.seed_instances(3)
            target = first.sim.instance_ids()[0]
            name = first.sim.instance(target)["name"]
            await first.slack.send_slash_command(first.events_url, f"restart {name}", user_id=ADMIN)
            delivery = first.slack.last_delivery
            # The same signed request reaches the other replica (a load balancer's choice),
            # byte for byte and as a retry; and the first one again.
            await _replay(second, delivery, 2, url=second.events_url)
            await _replay(first, delivery, 1, url=first.events_url)
            await _until(lambda: _ignored(caplog) == 3, "three repeats ignored")
            await _until(lambda: _audited(pg_store, "restart"), "the restart audited")
            assert first.sim.calls[("restart", target)] == 1
            assert await _audited(pg_store, "restart") == 1
    finally:
        await second_engine.dispose()
    reliability_figures.update(replicas=2, replays_delivered=4, actions_taken=1)


# -- kill confirmations ---------------------------------------------------------------------


async def _prompt(bot: Any, user: str, name: str) -> Message:
    before = len(bot.slack.ephemerals(user))
    await bot.slack.send_slash_command(bot.events_url, f"kill {name}", user_id=user)
    await bot.slack.wait_for(lambda: len(bot.slack.ephemerals(user)) > before)
    return bot.slack.ephemerals(user)[before]


def _kill_block(prompt: Message) -> str:
    found = find_element(prompt, ActionId.KILL_CONFIRM, None)
    assert found is not None
    return found[0]


async def _click_kill(bot: Any, user: str, block_id: str, value: str) -> str:
    """A kill click built by hand (Slack would send it for a stale or doctored message)."""
    seen = len(bot.slack.ephemerals(user))
    reply = await bot.slack.send_block_action(
        bot.events_url,
        action_id=ActionId.KILL_CONFIRM,
        block_id=block_id,
        value=value,
        user_id=user,
        channel_id=CHANNEL,
    )
    assert reply.status_code == 200
    await bot.slack.wait_for(lambda: len(bot.slack.ephemerals(user)) > seen)
    return bot.visible(bot.slack.ephemerals(user)[seen])


async def test_a_kill_confirmation_works_once_for_its_user_and_instance(
    open_bot: Any, reliability_figures: dict[str, object]
) -> None:
    bot = open_bot
    ids = bot.sim.instance_ids()
    target, other = ids[0], ids[1]
    prompt = await _prompt(bot, OPERATOR, bot.sim.instance(target)["name"])
    block_id = _kill_block(prompt)
    assert split_confirmed_block_id(block_id)[1], "the prompt carries a token"

    # Someone else clicks the prompt shown to OPERATOR: refused, nothing killed.
    answer = await _click_kill(bot, OTHER, block_id, target)
    assert "only they can confirm it" in answer
    # The prompt's token, naming an instance the prompt never showed: refused.
    answer = await _click_kill(bot, OPERATOR, block_id, other)
    assert "for another instance" in answer
    # A kill button the bot never issued (no token, or a made-up one): refused.
    answer = await _click_kill(bot, OPERATOR, "b", target)
    assert "not one I showed you" in answer
    forged = confirmed_block_id(BlockId.KILL_ACTIONS, "x" * 24)
    answer = await _click_kill(bot, OPERATOR, forged, target)
    assert "not one I issued" in answer
    assert bot.sim.calls[("kill", target)] == 0 and bot.sim.calls[("kill", other)] == 0

    # The user it was shown to clicks it: the kill runs, once.
    await bot.slack.send_block_action(
        bot.events_url,
        action_id=ActionId.KILL_CONFIRM,
        user_id=OPERATOR,
        message_ts=prompt.ts,
    )
    await _until(lambda: bot.sim.calls[("kill", target)] == 1, "the kill")
    # A second click on the same confirmation (a fresh click, not a redelivery).
    answer = await _click_kill(bot, OPERATOR, block_id, target)
    assert "already used" in answer
    assert bot.sim.calls[("kill", target)] == 1

    async def refused() -> int:
        async with bot.db.session() as session:
            query = select(func.count()).select_from(AuditEntry)
            query = query.where(AuditEntry.action == "kill", AuditEntry.result == "refused")
            return int(await session.scalar(query) or 0)

    # Each refusal's row is written after its answer: wait for the fifth.
    async def all_refusals_audited() -> bool:
        return await refused() >= 5

    await _until(all_refusals_audited, "five refusals audited")
    assert await refused() == 5
    reliability_figures.update(kill_clicks=6, kills=1)


async def test_a_socket_mode_retry_acts_once(
    bot: Any, caplog: pytest.LogCaptureFixture, reliability_figures: dict[str, object]
) -> None:
    # Socket Mode requests never pass the web guard: Slack's retry carries `retry_attempt`
    # in the envelope and the very same payload, which Bolt dispatches as below.
    caplog.set_level(logging.INFO, logger="bot.slack.middleware")
    settings = Settings.model_validate(
        {"slack": {"bot_token": bot.slack.bot_token, "app_token": "xapp-1-socket-mode"}}
    )
    app = create_app(settings, bot.deps)
    target = bot.sim.instance_ids()[2]
    payload = slash_command_fields(
        command="/starpod",
        text=f"restart {bot.sim.instance(target)['name']}",
        user_id=ADMIN,
        user_name="admin",
        channel_id=CHANNEL,
        channel_name="ops",
        team_id="T0EMULATOR",
        response_url=bot.slack.new_response_url(channel_id=CHANNEL, user_id=ADMIN),
        trigger_id=bot.slack.new_trigger_id(),
    )
    for _attempt in range(3):  # the delivery, then retry_attempt 1 and 2
        response = await app.async_dispatch(
            AsyncBoltRequest(body=dict(payload), mode="socket_mode")
        )
        assert response.status == 200
    await _until(lambda: _ignored(caplog) == 2, "two retries ignored")
    await _until(lambda: _audited(bot.db, "restart"), "the restart audited")
    assert bot.sim.calls[("restart", target)] == 1
    assert await _audited(bot.db, "restart") == 1
    reliability_figures.update(socket_mode_deliveries=3, actions_taken=1)
