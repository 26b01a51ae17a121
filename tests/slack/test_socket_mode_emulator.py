"""The bot's Bolt app over Socket Mode, against the Slack emulator's socket, without the runtime.

``create_app`` + ``start_socket_mode`` (bot/slack/socket_mode.py) with the real listeners,
backend client (against the simulator) and SQLite store: commands and buttons arrive as
envelopes, are acked over the socket and answered through the Web API / response_url, as in
HTTP mode; the link survives an abort, a close and each ``disconnect`` reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pydantic import SecretStr
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.backend.client import InstanceClient
from bot.blockkit.ids import ActionId, BlockId
from bot.sim.backend import BackendSimulator
from bot.sim.slack import VIA_SOCKET, Message, SlackEmulator
from bot.sim.slack_socket import DISCONNECT_REASONS, SocketConnection
from bot.slack import SlackDeps, SshLinkService, build_web_client, create_app
from bot.slack.socket_mode import start_socket_mode, stop_socket_mode
from bot.store.audit import latest_audit
from bot.store.database import Database
from tests.slack.conftest import ADMIN, CHANNEL, OPERATOR, OffsetClock, make_settings, message_text

# The SDK checks the link this often: a dead link is replaced within ~2 s (not shorter:
# on a loaded machine a late pong would look like a dead link).
PING_INTERVAL = 1.0


@dataclass
class SocketBot:
    """The Bolt app connected over Socket Mode, and the emulator it is connected to."""

    emulator: SlackEmulator
    sim: BackendSimulator
    handler: AsyncSocketModeHandler
    db: Database
    ids: list[str]
    ack_secs: list[float]

    async def ask(self, text: str, *, user: str = OPERATOR) -> Message:
        """Send ``/starpod <text>`` over the socket; return the ephemeral answer."""
        before = len(self.emulator.ephemerals(user))
        reply = await self.emulator.send_slash_command(
            VIA_SOCKET, text, user_id=user, channel_id=CHANNEL
        )
        assert reply.status_code == 200 and reply.text == "", "answers go through response_url"
        await self.emulator.wait_for(lambda: len(self.emulator.ephemerals(user)) > before)
        return self.emulator.ephemerals(user)[before]

    async def settle(self, wait: float = 30.0) -> None:
        """Wait until every acked envelope's listener has finished: the listener pipeline
        writes one audit row per request when its work is done."""
        expected = len(self.emulator.socket_mode.acked())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            async with self.db.session() as session:
                rows = await latest_audit(session, limit=expected + 10)
            if len(rows) >= expected:
                return
            if loop.time() > deadline:
                raise TimeoutError(f"expected {expected} audit rows, found {len(rows)}")
            await asyncio.sleep(0.02)


@pytest.fixture
async def sim() -> AsyncIterator[BackendSimulator]:
    async with BackendSimulator(transition_secs=0.1, seed=7) as simulator:
        yield simulator


@pytest.fixture
async def socket_bot(
    slack_emulator: SlackEmulator, sim: BackendSimulator, db: Database
) -> AsyncIterator[SocketBot]:
    slack_emulator.add_usergroup("S0OPS", [OPERATOR])
    settings = make_settings(slack_emulator, sim.url, None, access=True)
    # Socket Mode only: an app token and no signing secret.
    settings.slack.app_token = SecretStr(slack_emulator.app_token)
    settings.slack.signing_secret = None
    clock = OffsetClock()
    async with InstanceClient(sim.url, retry_backoff=0.01) as backend:
        deps = SlackDeps(
            backend=backend,
            db=db,
            web=build_web_client(settings),
            ssh_links=SshLinkService.from_settings(settings, db, clock=clock),
            clock=clock,
            action_poll_interval=0.03,
            action_poll_timeout=3.0,
        )
        app = create_app(settings, deps)
        ack_secs: list[float] = []
        handler = await start_socket_mode(
            app, slack_emulator.app_token, on_ack=ack_secs.append, ping_interval=PING_INTERVAL
        )
        try:
            await slack_emulator.wait_for_socket()
            running = SocketBot(slack_emulator, sim, handler, db, sim.seed_instances(5), ack_secs)
            yield running
            await running.settle()
        finally:
            await stop_socket_mode(handler)


async def _reconnected(emulator: SlackEmulator, first: SocketConnection) -> None:
    await emulator.wait_for(
        lambda: (
            (first.closed or first.frozen)
            and any(
                c.connection_id > first.connection_id and not c.frozen
                for c in emulator.socket_mode.open_connections
            )
        ),
        10.0,
        what="the bot opened a fresh link",
    )


async def test_a_command_is_acked_over_the_socket_and_answered(socket_bot: SocketBot) -> None:
    answer = await socket_bot.ask("list")
    assert "pod-001" in message_text(answer)
    [envelope] = socket_bot.emulator.socket_mode.acked()
    assert envelope.type == "slash_commands" and envelope.ack is not None
    assert "payload" not in envelope.ack
    [took] = socket_bot.ack_secs  # the handler timed the envelope until its ack
    assert 0 <= took < 3
    assert socket_bot.emulator.violations() == []


async def test_a_button_is_acked_over_the_socket_and_acts(socket_bot: SocketBot) -> None:
    emulator = socket_bot.emulator
    prompt = await socket_bot.ask("kill pod-003", user=ADMIN)
    reply = await emulator.send_block_action(
        VIA_SOCKET, action_id=ActionId.KILL_CONFIRM, user_id=ADMIN, message_ts=prompt.ts
    )
    assert reply.status_code == 200 and reply.text == ""
    await emulator.wait_for(
        lambda: any("killed after" in m.text for m in emulator.messages(CHANNEL)),
        what="the kill announced as done",
    )
    assert socket_bot.sim.calls[("kill", socket_bot.ids[2])] == 1
    assert [e.type for e in emulator.socket_mode.acked()] == ["slash_commands", "interactive"]
    assert emulator.violations() == []


@pytest.mark.parametrize("fault", ["drop", "close", "freeze"])
async def test_the_bot_reconnects_after_an_abort_a_close_or_a_half_open_link(
    socket_bot: SocketBot, fault: str
) -> None:
    socket_mode = socket_bot.emulator.socket_mode
    [first] = socket_mode.open_connections
    if fault == "drop":
        socket_mode.drop()
    elif fault == "close":
        await socket_mode.close()
    else:
        socket_mode.freeze()  # half-open: the SDK's pings go unanswered
    await _reconnected(socket_bot.emulator, first)
    assert "pod-001" in message_text(await socket_bot.ask("list"))
    [envelope] = socket_mode.acked()
    assert envelope.connection_id != first.connection_id


@pytest.mark.parametrize("reason", sorted(DISCONNECT_REASONS))
async def test_the_bot_reconnects_on_each_disconnect_reason(
    socket_bot: SocketBot, reason: str
) -> None:
    socket_mode = socket_bot.emulator.socket_mode
    [first] = socket_mode.open_connections
    await socket_mode.send_disconnect(reason)
    await _reconnected(socket_bot.emulator, first)
    assert "pod-001" in message_text(await socket_bot.ask("list"))
    assert socket_mode.opens == 2


async def test_home_modal_and_suggestions_over_the_socket(socket_bot: SocketBot) -> None:
    """App Home (events_api), the create modal, a suggestion and a submission's errors all
    travel as envelopes; options and response_action come back as the ack's payload."""
    emulator = socket_bot.emulator
    surfaces = emulator.surfaces
    reply = await surfaces.open_home(VIA_SOCKET, OPERATOR)
    assert reply.status_code == 200 and reply.text == ""
    await emulator.wait_for(lambda: OPERATOR in emulator.home_views, what="the Home published")
    assert "pod-001" in str(emulator.home_views[OPERATOR]["blocks"])
    await surfaces.click_home(VIA_SOCKET, OPERATOR, ActionId.HOME_MUTE)
    await emulator.wait_for(lambda: surfaces.modal(OPERATOR) is not None, what="the mute form")
    options = await surfaces.suggest(VIA_SOCKET, OPERATOR, BlockId.INSTANCE, "pod-00")
    assert [o["text"]["text"].split(" ")[1] for o in options][:2] == ["pod-001", "pod-002"]
    submitted = await surfaces.submit(VIA_SOCKET, OPERATOR)
    assert submitted.outcome == "errors"
    assert set(submitted.errors) == {BlockId.INSTANCE, BlockId.MUTE_DURATION}
    kinds = [(e.type, (e.payload or {}).get("type")) for e in emulator.socket_mode.acked()]
    assert ("events_api", "event_callback") in kinds
    assert ("interactive", "block_suggestion") in kinds
    assert ("interactive", "view_submission") in kinds
    assert all(0 <= took < 3 for took in socket_bot.ack_secs)
    assert emulator.violations() == []
