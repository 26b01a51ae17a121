"""The listener pipeline every command and click goes through (``bot/slack/middleware.py``).

On the running bot (real web server, Bolt, backend simulator, Slack emulator, SQLite):
exactly one audit row per command and per click whatever the outcome (ok, refused, user
error, backend error, crash), refused users never reach a handler (the backend hears
nothing), a click Slack delivers twice acts once, and work cut short by a shutdown is
still audited.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import text

from bot.blockkit.ids import ActionId, MenuChoice, menu_value
from bot.sim.slack import BotReply
from bot.sim.slack_payloads import action_entry, block_actions_payload
from bot.sim.slack_signing import signed_headers
from bot.slack.invocation import Invocation
from bot.slack.middleware import INTERRUPTED, ListenerPipeline, Route, Step
from bot.slack.services import Services
from bot.store.slack_models import AuditEntry
from tests.slack.conftest import ADMIN, CHANNEL, OPERATOR, VIEWER, Bot, message_text


@dataclass(frozen=True)
class Case:
    """One request and the one audit row it must leave."""

    name: str
    send: Callable[[Bot], Awaitable[BotReply]]
    action: str
    result: str
    before: Callable[[Bot], Awaitable[None]] | None = None


def slash(words: str, user: str = OPERATOR) -> Callable[[Bot], Awaitable[BotReply]]:
    return lambda bot: bot.slash(words, user=user)


def click(
    action_id: str, user: str = OPERATOR, *, value: str | None = None, option: str | None = None
) -> Callable[[Bot], Awaitable[BotReply]]:
    def send(bot: Bot) -> Awaitable[BotReply]:
        return bot.emulator.send_block_action(
            bot.events_url,
            action_id=action_id,
            user_id=user,
            channel_id=CHANNEL,
            value=value,
            selected_option_value=option,
            action_type="overflow" if option is not None else "button",
        )

    return send


def instance(bot: Bot, index: int) -> str:
    return bot.ids[index]


async def backend_fails(bot: Bot) -> None:
    bot.sim.set_faults(error_rate=1.0, endpoints={"list", "logs"})


async def store_breaks(bot: Bot) -> None:
    bot.sim.set_faults()  # the backend is fine again: only the store fails now
    # A real failure under the handler, not a stand-in: the history table is gone.
    async with bot.db.engine.begin() as conn:
        await conn.execute(text("DROP TABLE status_changes"))


async def test_one_audit_row_per_command_and_click_in_every_outcome(bot: Bot) -> None:
    a, c = bot.ids[0], bot.ids[2]
    cases = [
        Case("command ok", slash("list"), "list", "ok"),
        Case("command refused", slash("restart pod-001", VIEWER), "restart", "refused"),
        Case("command usage", slash("xyzzy"), "xyzzy", "usage"),
        Case("command user error", slash("health nope-nope"), "health", "error"),
        Case("click ok", click(ActionId.CARD_HISTORY, VIEWER, value=a), "history", "ok"),
        Case("click refused", click(ActionId.CARD_PAUSE, VIEWER, value=c), "pause", "refused"),
        Case("click usage", click(ActionId.ROW_MENU, option="explode:whatever"), "menu", "usage"),
        Case(
            "click user error",
            click(ActionId.ROW_MENU, option=menu_value(MenuChoice.HEALTH, "nope-nope")),
            "health",
            "error",
        ),
        Case(
            "incident click without alerts",
            click(ActionId.INCIDENT_ACK, value="7"),
            "acknowledge",
            "error",
        ),
        Case("command backend error", slash("list"), "list", "error", before=backend_fails),
        Case("click backend error", click(ActionId.CARD_LOGS, value=a), "logs", "error"),
        Case("command crash", slash("history pod-001"), "history", "error", before=store_breaks),
        Case("click crash", click(ActionId.CARD_HISTORY, value=a), "history", "error"),
    ]
    for count, case in enumerate(cases, start=1):
        if case.before is not None:
            await case.before(bot)
        backend_requests = bot.sim.requests_total
        reply = await case.send(bot)
        assert reply.status_code == 200 and reply.text == "", case.name
        rows = await bot.wait_audit(count)
        assert len(rows) == count, f"{case.name}: {len(rows)} rows after {count} requests"
        newest: AuditEntry = rows[0]
        assert (newest.action, newest.result) == (case.action, case.result), case.name
        if case.result == "refused":
            # The role check comes before any handler acts: the backend heard nothing.
            assert bot.sim.requests_total == backend_requests, case.name
        if case.name.endswith("crash"):
            assert "error id" in (newest.detail or ""), case.name
    # A last request as a barrier: no late second row for any of the requests above.
    await bot.ask("help")
    assert len(await bot.wait_audit(len(cases) + 1)) == len(cases) + 1
    # Every request was answered, once.
    answers = bot.emulator.ephemerals(OPERATOR) + bot.emulator.ephemerals(VIEWER)
    assert len(answers) == len(cases) + 1
    assert bot.sim.calls[("restart", a)] == 0 and bot.sim.calls[("pause", c)] == 0


async def test_a_refused_kill_never_reaches_the_backend(bot: Bot) -> None:
    backend_requests = bot.sim.requests_total
    reply = await click(ActionId.KILL_CONFIRM, OPERATOR, value=instance(bot, 3))(bot)
    assert reply.status_code == 200
    [row] = await bot.wait_audit(1)
    assert (row.action, row.result, row.user_id) == ("kill", "refused", OPERATOR)
    assert row.instance_id == bot.ids[3]
    assert bot.sim.requests_total == backend_requests
    [answer] = bot.emulator.ephemerals(OPERATOR)
    assert "You need the admin role" in message_text(answer)


async def _deliver_twice(bot: Bot, action_id: str, value: str, user: str) -> None:
    """Post the very same signed click twice, as Slack does when it retries a delivery."""
    action = action_entry(
        action_id=action_id,
        block_id="b",
        action_type="button",
        action_ts=f"{time.time():.6f}",
        value=value,
        selected_option_value=None,
        element=None,
    )
    payload = block_actions_payload(
        user_id=user,
        user_name="someone",
        channel_id=CHANNEL,
        channel_name="ops",
        message=None,
        message_ts=None,
        is_ephemeral=False,
        response_url=bot.emulator.new_response_url(channel_id=CHANNEL, user_id=user),
        trigger_id=bot.emulator.new_trigger_id(),
        action=action,
    )
    body = urlencode({"payload": json.dumps(payload)}).encode()
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            headers = signed_headers(bot.emulator.signing_secret, body, int(time.time()))
            async with session.post(bot.events_url, data=body, headers=headers) as response:
                assert response.status == 200
                assert await response.text() == ""


@pytest.mark.parametrize(
    ("action_id", "audited"),
    [(ActionId.CARD_HISTORY, "history"), (ActionId.INCIDENT_ACK, "acknowledge")],
)
async def test_a_click_delivered_twice_is_acted_on_and_audited_once(
    bot: Bot, action_id: str, audited: str
) -> None:
    await _deliver_twice(bot, action_id, bot.ids[0], ADMIN)
    # The repeat is dropped before its 200 (in the middleware): both answers are back, so
    # whatever the second delivery was going to do is decided already.
    [row] = await bot.wait_audit(1)
    assert row.action == audited
    await bot.ask("help", user=ADMIN)  # a barrier: its row comes after any late one
    rows = await bot.wait_audit(2)
    assert [r.action for r in rows] == ["help", audited]
    assert len(bot.emulator.ephemerals(ADMIN)) == 2


async def test_work_cancelled_at_shutdown_still_leaves_its_audit_row(bot: Bot) -> None:
    pipeline = ListenerPipeline(Services.build(bot.settings, bot.deps))
    body = {"user_id": OPERATOR, "channel_id": CHANNEL, "text": "restart pod-001"}
    inv = Invocation.from_body(bot.deps.web, body, action="unknown")
    started = asyncio.Event()

    async def act() -> None:
        started.set()
        await asyncio.Event().wait()  # the shutdown comes first

    async def plan(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
        return Step("restart", act)

    work = asyncio.create_task(pipeline.run(Route("command", "/starpod", "help", plan), inv, body))
    await started.wait()
    work.cancel()
    with pytest.raises(asyncio.CancelledError):
        await work
    [row] = await bot.wait_audit(1)
    assert (row.action, row.result, row.detail) == ("restart", "error", INTERRUPTED)
