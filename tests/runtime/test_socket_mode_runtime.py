"""The real Runtime in Socket Mode against the Slack emulator's socket.

Connect, a command and a button acked over the socket and answered; the link replaced after
an abort, a close, a half-open link and each ``disconnect`` reason, with ``/readyz`` 503
(check ``slack socket``) while it is down; a refused app token stops the start; an
unreachable socket is retried while ``/readyz`` says 503 and the monitor waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from bot.blockkit.ids import ActionId
from bot.config import Settings
from bot.runtime import SOCKET_CHECK, Runtime
from bot.sim.backend import BackendSimulator
from bot.sim.process import free_port
from bot.sim.slack import VIA_SOCKET, SlackEmulator
from bot.sim.slack_socket import DISCONNECT_REASONS, SocketConnection
from bot.slack.socket_mode import Backoff
from bot.slack.token_check import SlackAppTokenRejected

MakeSettings = Callable[..., Settings]
CHANNEL = "C0OPS"
# The link is checked this often: a half-open one is given up after about 4 of these.
PING_SECS = 1.0
FAST_RETRIES = Backoff(first=0.05, most=0.2)


def socket_settings(make_settings: MakeSettings, slack: SlackEmulator, **env: str) -> Settings:
    """Socket Mode only: the app token and no signing secret."""
    return make_settings(SLACK_APP_TOKEN=slack.app_token, SLACK_SIGNING_SECRET="", **env)


def socket_runtime(settings: Settings) -> Runtime:
    return Runtime(settings, socket_ping_secs=PING_SECS, socket_backoff=FAST_RETRIES)


async def readyz(runtime: Runtime) -> httpx.Response:
    async with httpx.AsyncClient(base_url=runtime.url, timeout=10) as http:
        return await http.get("/readyz")


async def until_ready(runtime: Runtime, ready: bool, within: float = 15.0) -> httpx.Response:
    """Ask ``/readyz`` until it answers 200 (``ready``) or 503; return that answer."""
    async with asyncio.timeout(within):
        while True:
            answer = await readyz(runtime)
            if (answer.status_code == 200) == ready:
                return answer
            await asyncio.sleep(0.05)  # the state of the SDK's link: no event to await


async def ask(slack: SlackEmulator, text: str, user: str = "U0OPERATOR") -> str:
    """``/starpod <text>`` over the socket; the text of its ephemeral answer."""
    before = len(slack.ephemerals(user))
    reply = await slack.send_slash_command(VIA_SOCKET, text, user_id=user, channel_id=CHANNEL)
    assert reply.status_code == 200 and reply.text == ""
    await slack.wait_for(lambda: len(slack.ephemerals(user)) > before, 10, what=text)
    answer = slack.ephemerals(user)[before]
    return answer.text + "".join(str(b) for b in answer.blocks)


@pytest.fixture
async def running(
    make_settings: MakeSettings, backend_sim: BackendSimulator, slack_emulator: SlackEmulator
) -> AsyncIterator[Runtime]:
    backend_sim.seed_instances(3)
    async with socket_runtime(socket_settings(make_settings, slack_emulator)) as runtime:
        await slack_emulator.wait_for_socket()
        yield runtime


async def _replaced(slack: SlackEmulator, first: SocketConnection) -> None:
    await slack.wait_for(
        lambda: (
            (first.closed or first.frozen)
            and any(
                c.connection_id > first.connection_id and not c.frozen
                for c in slack.socket_mode.open_connections
            )
        ),
        15.0,
        what="a fresh link",
    )


async def test_connects_acks_and_answers_a_command_and_a_button(
    running: Runtime, slack_emulator: SlackEmulator, backend_sim: BackendSimulator
) -> None:
    ready = await readyz(running)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"][SOCKET_CHECK] == "ok"
    assert "pod-001" in await ask(slack_emulator, "list")
    prompt_count = len(slack_emulator.ephemerals("U0OPERATOR"))
    await ask(slack_emulator, "kill pod-002")
    prompt = slack_emulator.ephemerals("U0OPERATOR")[prompt_count]
    reply = await slack_emulator.send_block_action(
        VIA_SOCKET, action_id=ActionId.KILL_CONFIRM, message_ts=prompt.ts
    )
    assert reply.status_code == 200 and reply.text == ""
    await slack_emulator.wait_for(
        lambda: any("killed after" in m.text for m in slack_emulator.messages(CHANNEL)),
        10,
        what="the kill announced",
    )
    assert [e.type for e in slack_emulator.socket_mode.acked()] == [
        "slash_commands",
        "slash_commands",
        "interactive",
    ]
    async with httpx.AsyncClient(base_url=running.url) as http:
        metrics = (await http.get("/metrics")).text
    assert "starpod_ack_latency_seconds_count 3.0" in metrics  # each ack timed
    assert slack_emulator.violations() == []


@pytest.mark.parametrize("fault", ["drop", "close", "freeze"])
async def test_readiness_is_503_while_the_link_is_down_and_200_once_replaced(
    running: Runtime, slack_emulator: SlackEmulator, fault: str
) -> None:
    socket_mode = slack_emulator.socket_mode
    [first] = socket_mode.open_connections
    socket_mode.refuse_open("internal_error")  # keep the link down until we have looked
    if fault == "drop":
        socket_mode.drop()
    elif fault == "close":
        await socket_mode.close()
    else:
        socket_mode.freeze()  # half-open: pings go unanswered
    down = await until_ready(running, False)
    assert down.json()["checks"][SOCKET_CHECK] == "Socket Mode is not connected"
    socket_mode.accept_open()
    await _replaced(slack_emulator, first)
    up = await until_ready(running, True)
    assert up.json()["checks"][SOCKET_CHECK] == "ok"
    assert "pod-001" in await ask(slack_emulator, "list")
    [envelope] = socket_mode.acked()
    assert envelope.connection_id != first.connection_id


@pytest.mark.parametrize("reason", sorted(DISCONNECT_REASONS))
async def test_each_disconnect_reason_is_followed_by_a_fresh_link(
    running: Runtime, slack_emulator: SlackEmulator, reason: str
) -> None:
    socket_mode = slack_emulator.socket_mode
    [first] = socket_mode.open_connections
    await socket_mode.send_disconnect(reason)
    await _replaced(slack_emulator, first)
    assert "pod-001" in await ask(slack_emulator, "list")
    assert (await until_ready(running, True)).status_code == 200


@pytest.mark.parametrize("refusal", ["invalid_auth", "not_allowed_token_type"])
async def test_a_refused_app_token_stops_the_start_naming_it(
    make_settings: MakeSettings, slack_emulator: SlackEmulator, refusal: str
) -> None:
    if refusal == "invalid_auth":
        slack_emulator.socket_mode.refuse_open("invalid_auth")
        settings = socket_settings(make_settings, slack_emulator)
    else:  # the bot token where the app token belongs
        settings = make_settings(SLACK_APP_TOKEN=slack_emulator.bot_token, SLACK_SIGNING_SECRET="")
    runtime = socket_runtime(settings)
    with pytest.raises(SlackAppTokenRejected, match=f"SLACK_APP_TOKEN .*{refusal}"):
        await runtime.start()
    assert runtime.monitor is not None and runtime.monitor.status().last_sweep_at is None
    assert slack_emulator.socket_mode.connections == []
    assert slack_emulator.messages("C0ALERTS") == []


async def test_an_unreachable_socket_is_retried_with_readiness_503_and_the_monitor_waiting(
    make_settings: MakeSettings, backend_sim: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    backend_sim.seed_instances(2)
    slack_emulator.socket_mode.point_links_at(f"ws://127.0.0.1:{free_port()}")
    runtime = socket_runtime(socket_settings(make_settings, slack_emulator))
    starting = asyncio.create_task(runtime.start())
    try:
        await asyncio.wait_for(runtime.serving.wait(), 15)
        # Several attempts, each refused: still starting, not ready, nobody sweeping.
        await slack_emulator.wait_for(
            lambda: slack_emulator.socket_mode.opens >= 3, 10, what="retries"
        )
        down = await until_ready(runtime, False)
        assert down.json()["checks"][SOCKET_CHECK] == "Socket Mode is not connected"
        assert not starting.done()
        assert runtime.monitor is not None
        assert runtime.monitor.status().last_sweep_at is None
        assert runtime.scheduler is not None and not runtime.scheduler.running
        slack_emulator.socket_mode.point_links_at(None)  # the network is back
        await asyncio.wait_for(starting, 15)
        await slack_emulator.wait_for_socket()
        up = await until_ready(runtime, True)
        assert up.json()["checks"][SOCKET_CHECK] == "ok"
        assert "pod-001" in await ask(slack_emulator, "list")
    finally:
        if not starting.done():
            runtime.request_shutdown()
            await starting
        await runtime.stop()


async def test_shutdown_while_the_socket_is_unreachable_ends_the_start(
    make_settings: MakeSettings, slack_emulator: SlackEmulator
) -> None:
    slack_emulator.socket_mode.point_links_at(f"ws://127.0.0.1:{free_port()}")
    runtime = socket_runtime(socket_settings(make_settings, slack_emulator))
    starting = asyncio.create_task(runtime.start())
    await asyncio.wait_for(runtime.serving.wait(), 15)
    await slack_emulator.wait_for(lambda: slack_emulator.socket_mode.opens >= 1, 10, what="try")
    runtime.request_shutdown()
    await asyncio.wait_for(starting, 5)  # start() returns instead of retrying on
    assert runtime.shutdown_requested
    await asyncio.wait_for(runtime.stop(), 10)
    assert runtime.scheduler is not None and not runtime.scheduler.running


# Every subcommand over the socket, each acked with an empty 200 and answered: privately
# (read-only and refused ones) or in the channel (announced actions).
SOCKET_COMMANDS = (
    "help",
    "list",
    "status",
    "health pod-001",
    "logs pod-001 --tail 5",
    "history pod-001",
    "ssh pod-001",
    "audit",
    "mute pod-003 30m",
    "unmute pod-003",
    "pause pod-001",
    "restart pod-001",
    "create --name pod-new",
    "kill pod-002",
)


def _seen(slack: SlackEmulator, user: str) -> int:
    return len(slack.ephemerals(user)) + len(slack.messages(CHANNEL))


async def test_every_subcommand_and_row_and_card_button_is_acked_and_answered(
    running: Runtime, slack_emulator: SlackEmulator
) -> None:
    user = "U0OPERATOR"
    for text in SOCKET_COMMANDS:
        before = _seen(slack_emulator, user)
        reply = await slack_emulator.send_slash_command(
            VIA_SOCKET, text, user_id=user, channel_id=CHANNEL
        )
        assert reply.status_code == 200 and reply.text == "", text
        await slack_emulator.wait_for(
            lambda b=before: _seen(slack_emulator, user) > b, 15, what=f"an answer to {text}"
        )
    # The list's row menu and the health card's buttons, clicked on the messages shown.
    listed = await ask(slack_emulator, "list")
    assert "pod-001" in listed
    rows = slack_emulator.ephemerals(user)[-1]
    before = _seen(slack_emulator, user)
    reply = await slack_emulator.send_block_action(
        VIA_SOCKET,
        action_id=ActionId.ROW_MENU,
        message_ts=rows.ts,
        selected_option_value=next(
            o["value"]
            for b in rows.blocks
            if b.get("accessory", {}).get("action_id") == ActionId.ROW_MENU
            for o in b["accessory"]["options"]
            if o["value"].startswith("health:")
        ),
    )
    assert reply.status_code == 200 and reply.text == ""
    await slack_emulator.wait_for(lambda: _seen(slack_emulator, user) > before, 15, what="menu")
    card = slack_emulator.ephemerals(user)[-1]
    for action_id in (ActionId.CARD_LOGS, ActionId.CARD_HISTORY, ActionId.CARD_SSH):
        before = _seen(slack_emulator, user)
        reply = await slack_emulator.send_block_action(
            VIA_SOCKET, action_id=action_id, message_ts=card.ts
        )
        assert reply.status_code == 200 and reply.text == "", action_id
        await slack_emulator.wait_for(
            lambda b=before: _seen(slack_emulator, user) > b, 15, what=str(action_id)
        )
    assert slack_emulator.violations() == []
