"""The emulator's Socket Mode, against slack-sdk's own aiohttp ``SocketModeClient``.

The client is the one Bolt's ``AsyncSocketModeHandler`` drives (bot/slack/socket_mode.py);
here it runs alone, with a listener that acks every envelope, so each test shows what the
emulator says on the wire and how the SDK reacts: connect, envelopes and acks, reconnects
after a drop, a close, a freeze and each ``disconnect`` reason.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.sim.slack import VIA_SOCKET, NoSocketConnection, SlackAckTimeout, SlackEmulator
from bot.sim.slack_socket import DISCONNECT_REASONS, SocketConnection

# Short pings so the SDK notices a dead or frozen link within ~2 s, not 20 s (not shorter:
# on a loaded machine a late pong would look like a dead link).
PING_INTERVAL = 1.0


class AckingClient:
    """A slack-sdk SocketModeClient that records what it receives and acks every envelope.

    Slash commands are acked with ``{"text": "got <text>"}`` as the payload; the rest with
    none. ``ack=False`` makes it receive without acknowledging.
    """

    def __init__(self, emulator: SlackEmulator, *, ack: bool = True) -> None:
        self.web = AsyncWebClient(base_url=emulator.api_url)
        self.client = SocketModeClient(
            app_token=emulator.app_token,
            web_client=self.web,
            ping_interval=PING_INTERVAL,
            on_message_listeners=[self._on_frame],
        )
        self.ack = ack
        self.messages: list[dict[str, Any]] = []
        self.requests: list[SocketModeRequest] = []
        self.client.socket_mode_request_listeners.append(self._on_request)

    async def _on_frame(self, frame: aiohttp.WSMessage) -> None:
        # Every text frame as it arrived (the SDK hides disconnects from message listeners).
        self.messages.append(json.loads(frame.data))

    async def _on_request(self, client: Any, request: SocketModeRequest) -> None:
        self.requests.append(request)
        if not self.ack:
            return
        payload = (
            {"text": f"got {request.payload.get('text')}"}
            if request.type == "slash_commands"
            else None
        )
        await client.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id, payload=payload)
        )


@pytest.fixture
async def sdk(slack_emulator: SlackEmulator) -> AsyncIterator[AckingClient]:
    """A connected, acking SDK client."""
    acking = AckingClient(slack_emulator)
    await acking.client.connect()
    await slack_emulator.wait_for_socket()
    try:
        yield acking
    finally:
        await acking.client.close()


async def _posted_button(emulator: SlackEmulator) -> str:
    web = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    posted = await web.chat_postMessage(
        channel="C0OPS",
        text="Restart pod-001?",
        blocks=[
            {
                "type": "actions",
                "block_id": "b1",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "go",
                        "value": "pod-001",
                        "text": {"type": "plain_text", "text": "Go"},
                    }
                ],
            }
        ],
    )
    return str(posted["ts"])


async def _reconnected(emulator: SlackEmulator, first: SocketConnection) -> None:
    """Wait until the first link is gone (closed, or frozen: half-open links stay open on
    the server's side) and a newer live one is open."""
    socket_mode = emulator.socket_mode
    await emulator.wait_for(
        lambda: (
            (first.closed or first.frozen)
            and any(
                c.connection_id > first.connection_id and not c.frozen
                for c in socket_mode.open_connections
            )
        ),
        10.0,
        what="the SDK opened a fresh link",
    )


async def test_connect_opens_a_link_and_says_hello(
    slack_emulator: SlackEmulator, sdk: AckingClient
) -> None:
    [call] = slack_emulator.calls_to("apps.connections.open")
    assert call.ok and call.response is not None
    assert call.response["url"].startswith(slack_emulator.url.replace("http", "ws") + "/link/")
    await slack_emulator.wait_for(lambda: any(m.get("type") == "hello" for m in sdk.messages))
    hello = sdk.messages[0]
    assert hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": "A0EMULATOR"}
    assert await sdk.client.is_connected()


async def test_a_slash_command_arrives_as_an_envelope_and_its_ack_payload_is_shown(
    slack_emulator: SlackEmulator, sdk: AckingClient
) -> None:
    reply = await slack_emulator.send_slash_command(VIA_SOCKET, "health", user_id="U0OPERATOR")
    assert reply.status_code == 200
    assert reply.json() == {"text": "got health"}
    [request] = sdk.requests
    assert request.type == "slash_commands"
    assert request.payload["command"] == "/starpod" and request.payload["text"] == "health"
    assert request.payload["response_url"].startswith(slack_emulator.url + "/response/")
    assert request.accepts_response_payload is True
    # As with an HTTP ack's body: shown to the user as an ephemeral message.
    [shown] = slack_emulator.ephemerals("U0OPERATOR")
    assert shown.text == "got health"
    [envelope] = slack_emulator.socket_mode.acked()
    assert envelope.envelope_id == request.envelope_id
    assert slack_emulator.violations() == []


async def test_a_button_click_and_a_view_submission_are_interactive_envelopes(
    slack_emulator: SlackEmulator, sdk: AckingClient
) -> None:
    ts = await _posted_button(slack_emulator)
    clicked = await slack_emulator.send_block_action(VIA_SOCKET, action_id="go", message_ts=ts)
    assert clicked.status_code == 200 and clicked.text == ""
    submitted = await slack_emulator.send_view_submission(VIA_SOCKET, callback_id="mute_modal")
    assert submitted.status_code == 200 and submitted.text == ""
    click, view = sdk.requests
    assert click.type == "interactive" and click.payload["type"] == "block_actions"
    assert click.payload["actions"][0]["value"] == "pod-001"
    assert click.accepts_response_payload is False
    assert view.type == "interactive" and view.payload["type"] == "view_submission"
    assert view.accepts_response_payload is True


async def test_an_envelope_nobody_acks_times_out_like_an_http_request(
    slack_emulator: SlackEmulator,
) -> None:
    with pytest.raises(NoSocketConnection):
        await slack_emulator.send_slash_command(VIA_SOCKET, "health")
    silent = AckingClient(slack_emulator, ack=False)
    await silent.client.connect()
    try:
        await slack_emulator.wait_for_socket()
        with pytest.raises(SlackAckTimeout):
            await slack_emulator.send_slash_command(VIA_SOCKET, "health", ack_timeout=0.3)
        assert len(silent.requests) == 1
        assert slack_emulator.socket_mode.acked() == []
    finally:
        await silent.client.close()


async def test_an_unacked_envelope_is_redelivered_with_a_higher_retry_attempt(
    slack_emulator: SlackEmulator,
) -> None:
    silent = AckingClient(slack_emulator, ack=False)
    acking = AckingClient(slack_emulator)
    try:
        await silent.client.connect()
        await slack_emulator.wait_for_socket()
        with pytest.raises(SlackAckTimeout):
            await slack_emulator.send_slash_command(VIA_SOCKET, "health", ack_timeout=0.3)
        [lost] = slack_emulator.socket_mode.envelopes
        await acking.client.connect()
        await slack_emulator.wait_for_socket(2)
        second = slack_emulator.socket_mode.open_connections[1]
        retry = await slack_emulator.socket_mode.redeliver(lost, ack_timeout=3.0, connection=second)
        assert retry.acked_at is not None and retry.envelope_id == lost.envelope_id
        [request] = acking.requests
        assert (request.envelope_id, request.retry_attempt, request.retry_reason) == (
            lost.envelope_id,
            1,
            "timeout",
        )
    finally:
        await silent.client.close()
        await acking.client.close()


async def test_apps_connections_open_checks_the_app_token(slack_emulator: SlackEmulator) -> None:
    web = AsyncWebClient(base_url=slack_emulator.api_url)
    for token, error in [
        ("xapp-1-A0OTHER-1-wrong", "invalid_auth"),
        (slack_emulator.bot_token, "not_allowed_token_type"),
    ]:
        with pytest.raises(SlackApiError) as refused:
            await web.apps_connections_open(app_token=token)
        assert refused.value.response["error"] == error
    # The fault control: refused once, then accepted again.
    slack_emulator.socket_mode.refuse_open("invalid_auth", count=1)
    client = SocketModeClient(app_token=slack_emulator.app_token, web_client=web)
    try:
        with pytest.raises(SlackApiError) as refused:
            await client.issue_new_wss_url()
        assert refused.value.response["error"] == "invalid_auth"
        assert (await client.issue_new_wss_url()).startswith("ws://")
    finally:
        await client.close()


async def test_a_link_url_is_single_use(slack_emulator: SlackEmulator) -> None:
    web = AsyncWebClient(base_url=slack_emulator.api_url)
    url = (await web.apps_connections_open(app_token=slack_emulator.app_token))["url"]
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        hello = json.loads((await ws.receive()).data)
        assert hello["type"] == "hello"
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(url)


async def test_over_the_limit_a_link_gets_too_many_websockets(
    slack_emulator: SlackEmulator,
) -> None:
    slack_emulator.socket_mode.max_connections = 1
    web = AsyncWebClient(base_url=slack_emulator.api_url)
    urls = [
        (await web.apps_connections_open(app_token=slack_emulator.app_token))["url"]
        for _ in range(2)
    ]
    async with aiohttp.ClientSession() as session, session.ws_connect(urls[0]) as first:
        assert json.loads((await first.receive()).data)["type"] == "hello"
        async with session.ws_connect(urls[1]) as second:
            refused = json.loads((await second.receive()).data)
            assert refused["type"] == "disconnect"
            assert refused["reason"] == "too_many_websockets"
            assert (await second.receive()).type is aiohttp.WSMsgType.CLOSE
    assert slack_emulator.socket_mode.connections[1].close_reason == (
        "disconnect:too_many_websockets"
    )


@pytest.mark.parametrize("fault", ["drop", "close", "freeze"])
async def test_the_sdk_reconnects_after_a_fault_and_keeps_acking(
    slack_emulator: SlackEmulator, sdk: AckingClient, fault: str
) -> None:
    socket_mode = slack_emulator.socket_mode
    [first] = socket_mode.open_connections
    if fault == "drop":
        socket_mode.drop()
    elif fault == "close":
        await socket_mode.close()
    else:
        socket_mode.freeze()
    await _reconnected(slack_emulator, first)
    reply = await slack_emulator.send_slash_command(VIA_SOCKET, "list")
    assert reply.json() == {"text": "got list"}
    [envelope] = socket_mode.acked()
    assert envelope.connection_id != first.connection_id
    socket_mode.thaw()


@pytest.mark.parametrize("reason", sorted(DISCONNECT_REASONS))
async def test_the_sdk_reconnects_on_each_disconnect_reason(
    slack_emulator: SlackEmulator, sdk: AckingClient, reason: str
) -> None:
    socket_mode = slack_emulator.socket_mode
    [first] = socket_mode.open_connections
    await socket_mode.send_disconnect(reason)
    # slack-sdk answers every disconnect the same way: a new URL, then it closes the old link.
    await _reconnected(slack_emulator, first)
    assert first.closed and first.close_reason == "client"
    assert {"type": "disconnect", "reason": reason}.items() <= sdk.messages[1].items()
    reply = await slack_emulator.send_slash_command(VIA_SOCKET, "status")
    assert reply.json() == {"text": "got status"}


async def test_several_links_share_the_envelopes(slack_emulator: SlackEmulator) -> None:
    clients = [AckingClient(slack_emulator), AckingClient(slack_emulator)]
    try:
        for count, acking in enumerate(clients, start=1):
            await acking.client.connect()
            await slack_emulator.wait_for_socket(count)
        for text in ("one", "two", "three", "four"):
            reply = await slack_emulator.send_slash_command(VIA_SOCKET, text)
            assert reply.json() == {"text": f"got {text}"}
        # Each envelope went to exactly one link, and both links got some.
        assert [len(c.requests) for c in clients] == [2, 2]
        hellos = [c.messages[0] for c in clients]
        assert [h["num_connections"] for h in hellos] == [1, 2]
    finally:
        for acking in clients:
            await acking.client.close()
