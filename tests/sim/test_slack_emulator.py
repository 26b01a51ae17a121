"""The Slack emulator, driven by the real slack-sdk / slack-bolt clients and by raw HTTP.

Each check must answer the error name Slack answers, so a bot test fails where Slack would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import httpx
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.sim.slack import SlackAckTimeout, SlackEmulator

TOKEN = "xoxb-test-token"
SECRET = "test-signing-secret"


class FakeClock:
    """A clock the test moves by hand (ts values and response_url expiry follow it)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def emu() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(bot_token=TOKEN, signing_secret=SECRET) as emulator:
        yield emulator


@pytest.fixture
def client(emu: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=emu.api_url)


async def raw_post(
    emu: SlackEmulator,
    method: str,
    *,
    json_body: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
    token: str | None = TOKEN,
) -> httpx.Response:
    """A Web API call without slack-sdk, to see status codes and headers as sent."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as http:
        return await http.post(f"{emu.api_url}{method}", json=json_body, data=form, headers=headers)


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(text: str = "Go", action_id: str = "go", **extra: Any) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        **extra,
    }


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text}, "value": value}


def overflow(count: int) -> dict[str, Any]:
    return {
        "type": "overflow",
        "action_id": "menu",
        "options": [option(f"Opt {i}", f"v{i}") for i in range(count)],
    }


def confirm(title: str = "Sure?", yes: str = "Kill") -> dict[str, Any]:
    return {
        "title": {"type": "plain_text", "text": title},
        "text": {"type": "mrkdwn", "text": "This cannot be undone."},
        "confirm": {"type": "plain_text", "text": yes},
        "deny": {"type": "plain_text", "text": "Cancel"},
        "style": "danger",
    }


# -- auth and basics -----------------------------------------------------------------------


async def test_auth_test_answers_like_slack(client: AsyncWebClient) -> None:
    answer = await client.auth_test()
    assert answer["ok"] is True
    assert answer["user_id"] == "U0BOT"
    assert answer["bot_id"] == "B0BOT"
    assert answer["team_id"] == "T0EMULATOR"


async def test_missing_and_wrong_tokens_are_rejected(emu: SlackEmulator) -> None:
    no_token = await raw_post(
        emu, "chat.postMessage", json_body={"channel": "C0OPS", "text": "x"}, token=None
    )
    assert no_token.json() == {"ok": False, "error": "not_authed"}
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=emu.api_url)
    with pytest.raises(SlackApiError) as raised:
        await wrong.chat_postMessage(channel="C0OPS", text="x")
    assert raised.value.response["error"] == "invalid_auth"
    assert [call.error for call in emu.violations()] == ["not_authed", "invalid_auth"]
    assert emu.messages("C0OPS") == []


async def test_token_inside_json_body_does_not_count(emu: SlackEmulator) -> None:
    answer = await raw_post(emu, "auth.test", json_body={"token": TOKEN}, token=None)
    assert answer.json()["error"] == "not_authed"


async def test_form_body_with_token_field_and_blocks_as_json_string(emu: SlackEmulator) -> None:
    blocks = json.dumps([section("*hello*")])
    answer = await raw_post(
        emu,
        "chat.postMessage",
        form={"token": TOKEN, "channel": "C0OPS", "text": "hello", "blocks": blocks},
        token=None,
    )
    assert answer.json()["ok"] is True
    assert emu.messages("C0OPS")[0].blocks == [section("*hello*")]
    assert "token" not in emu.calls[0].args


async def test_unknown_method(emu: SlackEmulator) -> None:
    answer = await raw_post(emu, "chat.teleport", json_body={})
    assert answer.json()["error"] == "unknown_method"


async def test_ts_strictly_increasing_even_with_a_frozen_clock() -> None:
    clock = FakeClock(1_700_000_000.0001)
    async with SlackEmulator(bot_token=TOKEN, clock=clock) as emu:
        client = AsyncWebClient(token=TOKEN, base_url=emu.api_url)
        first = await client.chat_postMessage(channel="C0ALERTS", text="one")
        second = await client.chat_postMessage(channel="C0ALERTS", text="two")
    assert first["ts"] == "1700000000.000100"
    assert second["ts"] == "1700000000.000101"
    assert first["message"]["text"] == "one"
    assert first["channel"] == "C0ALERTS"


# -- checks like Slack ---------------------------------------------------------------------

LIMIT_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("51 blocks", {"text": "t", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
    ("section text 3001", {"text": "t", "blocks": [section("x" * 3001)]}, "invalid_blocks"),
    ("empty section text", {"text": "t", "blocks": [section("")]}, "invalid_blocks"),
    (
        "11 section fields",
        {
            "text": "t",
            "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
        },
        "invalid_blocks",
    ),
    (
        "field text 2001",
        {
            "text": "t",
            "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
        },
        "invalid_blocks",
    ),
    (
        "header 151",
        {
            "text": "t",
            "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        },
        "invalid_blocks",
    ),
    (
        "mrkdwn header",
        {"text": "t", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]},
        "invalid_blocks",
    ),
    (
        "button text 76",
        {"text": "t", "blocks": [{"type": "actions", "elements": [button("b" * 76)]}]},
        "invalid_blocks",
    ),
    (
        "action_id 256",
        {"text": "t", "blocks": [{"type": "actions", "elements": [button(action_id="a" * 256)]}]},
        "invalid_blocks",
    ),
    ("block_id 256", {"text": "t", "blocks": [section("x", block_id="b" * 256)]}, "invalid_blocks"),
    (
        "duplicate block_id",
        {"text": "t", "blocks": [section("x", block_id="same"), section("y", block_id="same")]},
        "invalid_blocks",
    ),
    (
        "11 context elements",
        {
            "text": "t",
            "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
        },
        "invalid_blocks",
    ),
    (
        "26 actions elements",
        {
            "text": "t",
            "blocks": [
                {"type": "actions", "elements": [button(action_id=f"a{i}") for i in range(26)]}
            ],
        },
        "invalid_blocks",
    ),
    (
        "overflow 1 option",
        {"text": "t", "blocks": [section("x", accessory=overflow(1))]},
        "invalid_blocks",
    ),
    (
        "overflow 6 options",
        {"text": "t", "blocks": [section("x", accessory=overflow(6))]},
        "invalid_blocks",
    ),
    (
        "option text 76",
        {
            "text": "t",
            "blocks": [
                section(
                    "x",
                    accessory={
                        "type": "overflow",
                        "action_id": "m",
                        "options": [option("o" * 76, "a"), option("b", "b")],
                    },
                )
            ],
        },
        "invalid_blocks",
    ),
    ("unknown block type", {"text": "t", "blocks": [{"type": "carousel"}]}, "invalid_blocks"),
    (
        "confirm title 101",
        {
            "text": "t",
            "blocks": [{"type": "actions", "elements": [button(confirm=confirm(title="t" * 101))]}],
        },
        "invalid_blocks",
    ),
    (
        "confirm button 31",
        {
            "text": "t",
            "blocks": [{"type": "actions", "elements": [button(confirm=confirm(yes="y" * 31))]}],
        },
        "invalid_blocks",
    ),
    (
        "button style",
        {"text": "t", "blocks": [{"type": "actions", "elements": [button(style="purple")]}]},
        "invalid_blocks",
    ),
    ("text 40001", {"text": "x" * 40_001}, "msg_too_long"),
    ("nothing", {}, "no_text"),
    ("blank text", {"text": "   "}, "no_text"),
    ("blocks without fallback", {"blocks": [section("x")]}, "missing_text"),
    ("blocks with empty fallback", {"text": "", "blocks": [section("x")]}, "missing_text"),
]


@pytest.mark.parametrize(
    ("payload", "error"),
    [(case[1], case[2]) for case in LIMIT_CASES],
    ids=[case[0] for case in LIMIT_CASES],
)
async def test_post_message_checks(emu: SlackEmulator, payload: dict[str, Any], error: str) -> None:
    answer = await raw_post(emu, "chat.postMessage", json_body={"channel": "C0OPS", **payload})
    assert answer.status_code == 200
    assert answer.json()["ok"] is False
    assert answer.json()["error"] == error
    assert [call.error for call in emu.violations()] == [error]
    assert emu.messages("C0OPS") == []


async def test_invalid_blocks_name_the_bad_value(emu: SlackEmulator) -> None:
    answer = await raw_post(
        emu,
        "chat.postMessage",
        json_body={
            "channel": "C0OPS",
            "text": "t",
            "blocks": [{"type": "divider"}, section("x" * 3001)],
        },
    )
    assert answer.json()["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/1/text/text]"
    ]
    assert emu.violations()[0].detail == answer.json()["errors"]


async def test_malformed_blocks_string_is_invalid_blocks_format(emu: SlackEmulator) -> None:
    answer = await raw_post(
        emu, "chat.postMessage", form={"channel": "C0OPS", "text": "t", "blocks": "[{not json"}
    )
    assert answer.json()["error"] == "invalid_blocks_format"


async def test_every_limit_exactly_reached_is_accepted(
    client: AsyncWebClient, emu: SlackEmulator
) -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        section("s" * 3000, block_id="b" * 255, accessory=overflow(5)),
        section("o", accessory=overflow(2)),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2000}] * 10},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 10},
        {
            "type": "actions",
            "elements": [
                button(
                    "b" * 75, action_id="a" * 255, confirm=confirm(title="t" * 100, yes="y" * 30)
                ),
                *[button(action_id=f"a{i}") for i in range(24)],
            ],
        },
    ]
    blocks += [{"type": "divider"}] * (50 - len(blocks))
    answer = await client.chat_postMessage(channel="C0OPS", text="x" * 40_000, blocks=blocks)
    assert answer["ok"] is True
    assert len(emu.messages("C0OPS")[0].blocks) == 50
    assert emu.violations() == []


async def test_channels(client: AsyncWebClient, emu: SlackEmulator) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C0NOPE", text="x")
    assert raised.value.response["error"] == "channel_not_found"
    dm = await client.chat_postMessage(channel="U0SOMEONE", text="psst")
    assert dm["channel"] == "U0SOMEONE"
    assert emu.messages("U0SOMEONE")[0].text == "psst"
    emu.add_channel("C0NEW", name="new-room")
    by_name = await client.chat_postMessage(channel="#new-room", text="hello")
    assert by_name["channel"] == "C0NEW"
    info = await client.conversations_info(channel="C0NEW")
    assert info["channel"]["name"] == "new-room"


# -- threads, edits, deletes, ephemerals ---------------------------------------------------


async def test_threads(client: AsyncWebClient, emu: SlackEmulator) -> None:
    root = await client.chat_postMessage(channel="C0ALERTS", text="incident")
    first = await client.chat_postMessage(
        channel="C0ALERTS", text="restart 1", thread_ts=root["ts"]
    )
    # A reply's ts as thread_ts lands in the same thread, as on Slack.
    await client.chat_postMessage(channel="C0ALERTS", text="restart 2", thread_ts=first["ts"])
    assert [m.text for m in emu.messages("C0ALERTS")] == ["incident"]
    thread = emu.thread("C0ALERTS", root["ts"])
    assert [m.text for m in thread] == ["incident", "restart 1", "restart 2"]
    assert all(m.thread_ts == root["ts"] for m in thread[1:])
    assert emu.messages("C0ALERTS")[0].to_api()["reply_count"] == 2
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C0ALERTS", text="orphan", thread_ts="1.000001")
    assert raised.value.response["error"] == "thread_not_found"


async def test_update_keeps_history(client: AsyncWebClient, emu: SlackEmulator) -> None:
    posted = await client.chat_postMessage(
        channel="C0OPS", text="Restarting…", blocks=[section("Restarting…")]
    )
    await client.chat_update(
        channel="C0OPS",
        ts=posted["ts"],
        text="Running again after 14 s",
        blocks=[section("Running again after 14 s")],
    )
    await client.chat_update(channel="C0OPS", ts=posted["ts"], text="Resolved")
    message = emu.messages("C0OPS")[0]
    assert message.text == "Resolved"
    assert message.blocks == [section("Running again after 14 s")]  # left-out blocks are kept
    assert [v.text for v in message.edits] == ["Restarting…", "Running again after 14 s"]
    assert message.edits[0].blocks == [section("Restarting…")]
    with pytest.raises(SlackApiError) as raised:
        await client.chat_update(channel="C0OPS", ts="1.000002", text="x")
    assert raised.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as raised, pytest.warns(UserWarning, match="`text`"):
        await client.chat_update(channel="C0OPS", ts=posted["ts"], blocks=[section("no fallback")])
    assert raised.value.response["error"] == "missing_text"


async def test_delete(client: AsyncWebClient, emu: SlackEmulator) -> None:
    posted = await client.chat_postMessage(channel="C0OPS", text="bye")
    await client.chat_delete(channel="C0OPS", ts=posted["ts"])
    assert emu.messages("C0OPS") == []
    with pytest.raises(SlackApiError) as raised:
        await client.chat_delete(channel="C0OPS", ts=posted["ts"])
    assert raised.value.response["error"] == "message_not_found"


async def test_ephemeral(client: AsyncWebClient, emu: SlackEmulator) -> None:
    answer = await client.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="only you")
    assert answer["message_ts"]
    assert emu.messages("C0OPS") == []
    assert [m.text for m in emu.ephemerals("U0ALICE")] == ["only you"]
    assert emu.ephemerals("U0BOB") == []
    with pytest.raises(SlackApiError) as raised, pytest.warns(UserWarning, match="`text`"):
        await client.chat_postEphemeral(channel="C0OPS", user="U0ALICE", blocks=[section("x")])
    assert raised.value.response["error"] == "missing_text"


async def test_usergroups(client: AsyncWebClient, emu: SlackEmulator) -> None:
    emu.add_usergroup("S0ONCALL", ["U0ALICE", "U0BOB"])
    answer = await client.usergroups_users_list(usergroup="S0ONCALL")
    assert answer["users"] == ["U0ALICE", "U0BOB"]
    with pytest.raises(SlackApiError) as raised:
        await client.usergroups_users_list(usergroup="S0NONE")
    assert raised.value.response["error"] == "no_such_subteam"


async def test_views_publish(client: AsyncWebClient, emu: SlackEmulator) -> None:
    answer = await client.views_publish(
        user_id="U0ALICE", view={"type": "home", "blocks": [section("hi")]}
    )
    assert answer["view"]["id"].startswith("V")
    assert emu.home_views["U0ALICE"]["blocks"] == [section("hi")]
    with pytest.raises(SlackApiError) as raised:
        await client.views_publish(
            user_id="U0ALICE", view={"type": "home", "blocks": [{"type": "divider"}] * 101}
        )
    assert raised.value.response["error"] == "invalid_arguments"


# -- files ---------------------------------------------------------------------------------


async def test_files_upload_v2_end_to_end(client: AsyncWebClient, emu: SlackEmulator) -> None:
    root = await client.chat_postMessage(channel="C0OPS", text="logs follow")
    content = "\n".join(f"line {i}" for i in range(5000))
    answer = await client.files_upload_v2(
        channel="C0OPS",
        content=content,
        filename="logs.txt",
        title="Logs of a1b2",
        initial_comment="last 5000 lines",
        thread_ts=root["ts"],
    )
    assert answer["file"]["name"] == "logs.txt"
    [uploaded] = emu.files
    assert uploaded.content == content.encode()
    assert (uploaded.title, uploaded.channel_id, uploaded.thread_ts) == (
        "Logs of a1b2",
        "C0OPS",
        root["ts"],
    )
    assert uploaded.initial_comment == "last 5000 lines"
    [_, share] = emu.thread("C0OPS", root["ts"])
    assert share.files[0]["id"] == uploaded.file_id
    assert share.text == "last 5000 lines"
    async with httpx.AsyncClient() as http:
        download = await http.get(
            answer["file"]["url_private"], headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert download.content == content.encode()
    assert [c.method for c in emu.calls] == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]


async def test_complete_upload_of_a_file_never_uploaded(client: AsyncWebClient) -> None:
    reserved = await client.files_getUploadURLExternal(filename="a.txt", length=3)
    with pytest.raises(SlackApiError) as raised:
        await client.files_completeUploadExternal(
            files=[{"id": reserved["file_id"]}], channel_id="C0OPS"
        )
    assert raised.value.response["error"] == "file_not_found"


async def test_files_go_to_a_dm_only_through_its_conversation_id(
    client: AsyncWebClient, emu: SlackEmulator
) -> None:
    # Slack's rule: files.completeUploadExternal shares in conversations (C/G/D ids) only.
    for kwargs in ({"channel": "U0OPERATOR"}, {"channels": ["U0OPERATOR"]}):
        with pytest.raises(SlackApiError) as raised:
            await client.files_upload_v2(content="x", filename="a.txt", **kwargs)
        assert raised.value.response["error"] == "invalid_arguments"
        assert "[CGDZ]" in raised.value.response["errors"][0]
    assert emu.files == []
    opened = await client.conversations_open(users="U0OPERATOR")
    dm = opened["channel"]["id"]
    assert dm.startswith("D") and opened["already_open"] is False
    assert emu.dm_channel("U0OPERATOR") == dm
    again = await client.conversations_open(users="U0OPERATOR", return_im=True)
    assert again["channel"]["id"] == dm and again["already_open"] is True
    assert again["channel"]["user"] == "U0OPERATOR"
    await client.files_upload_v2(content="x", filename="a.txt", channel=dm)
    [uploaded] = emu.files
    assert uploaded.channel_id == dm
    [share] = emu.messages(dm)
    assert share.files[0]["id"] == uploaded.file_id
    info = await client.conversations_info(channel=dm)
    assert info["channel"]["is_im"] is True and info["channel"]["user"] == "U0OPERATOR"
    for users, error in [("", "users_list_not_supplied"), ("C0OPS", "user_not_found")]:
        with pytest.raises(SlackApiError) as raised:
            await client.conversations_open(users=users)
        assert raised.value.response["error"] == error


# -- faults --------------------------------------------------------------------------------


async def test_fail_next_429_raw_and_with_sdk_retry(emu: SlackEmulator) -> None:
    emu.fail_next(1, status=429, retry_after=7)
    limited = await raw_post(emu, "chat.postMessage", json_body={"channel": "C0OPS", "text": "x"})
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    assert limited.json() == {"ok": False, "error": "ratelimited"}

    emu.fail_next(1, status=429, retry_after=0)
    plain = AsyncWebClient(token=TOKEN, base_url=emu.api_url)
    with pytest.raises(SlackApiError) as raised:
        await plain.chat_postMessage(channel="C0OPS", text="x")
    assert raised.value.response.status_code == 429

    emu.fail_next(1, status=429, retry_after=0)
    retrying = AsyncWebClient(
        token=TOKEN,
        base_url=emu.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    answer = await retrying.chat_postMessage(channel="C0OPS", text="after retry")
    assert answer["ok"] is True
    assert [m.text for m in emu.messages("C0OPS")] == ["after retry"]
    assert [(c.status, c.injected) for c in emu.calls] == [
        (429, True),
        (429, True),
        (429, True),
        (200, False),
    ]
    assert emu.violations() == []  # injected faults are not the bot's fault


async def test_fail_next_500_and_method_filter(client: AsyncWebClient, emu: SlackEmulator) -> None:
    emu.fail_next(1, status=500, methods={"chat.update"})
    await client.chat_postMessage(channel="C0OPS", text="unaffected")
    failed = await raw_post(
        emu, "chat.update", json_body={"channel": "C0OPS", "ts": "1.1", "text": "x"}
    )
    assert failed.status_code == 500
    assert failed.json() == {"ok": False, "error": "internal_error"}


async def test_fail_next_answers_an_outage_s_html_and_plain_text_bodies(
    emu: SlackEmulator,
) -> None:
    emu.fail_next(1, status=500, body="html")
    emu.fail_next(1, status=502, body="text")
    emu.fail_next(1, status=500, body="bad_json")
    emu.fail_next(1, status=200, error="channel_not_found")
    html = await raw_post(emu, "chat.postMessage", json_body={"channel": "C0OPS", "text": "x"})
    assert html.status_code == 500 and html.headers["content-type"].startswith("text/html")
    assert "<html>" in html.text
    text = await raw_post(emu, "chat.postMessage", json_body={"channel": "C0OPS", "text": "x"})
    assert text.status_code == 502 and text.headers["content-type"].startswith("text/plain")
    assert text.text == "upstream error"
    bad = await raw_post(emu, "chat.postMessage", json_body={"channel": "C0OPS", "text": "x"})
    assert bad.headers["content-type"].startswith("application/json")
    assert bad.text == "upstream error"
    refused = await raw_post(emu, "chat.postMessage", json_body={"channel": "C0OPS", "text": "x"})
    assert refused.status_code == 200
    assert refused.json() == {"ok": False, "error": "channel_not_found"}
    assert emu.messages("C0OPS") == [] and emu.violations() == []
    with pytest.raises(ValueError):
        emu.fail_next(1, body="xml")

    emu.fail_next(5, status=500)
    emu.stop_failing()
    ok = await raw_post(emu, "chat.postMessage", json_body={"channel": "C0OPS", "text": "up"})
    assert ok.status_code == 200 and [m.text for m in emu.messages("C0OPS")] == ["up"]


async def test_fail_next_drop(emu: SlackEmulator) -> None:
    no_retry = AsyncWebClient(token=TOKEN, base_url=emu.api_url, retry_handlers=[])
    emu.fail_next(1, drop=True)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await no_retry.chat_postMessage(channel="C0OPS", text="lost")
    # slack-sdk's default handlers retry one dropped connection, as they would against Slack.
    emu.fail_next(1, drop=True)
    default = AsyncWebClient(token=TOKEN, base_url=emu.api_url)
    answer = await default.chat_postMessage(channel="C0OPS", text="delivered")
    assert answer["ok"] is True
    assert [m.text for m in emu.messages("C0OPS")] == ["delivered"]
    assert [c.error for c in emu.calls if c.injected] == ["connection_dropped"] * 2


async def test_fault_rate_is_reproducible() -> None:
    outcomes = []
    for _ in range(2):
        async with SlackEmulator(bot_token=TOKEN) as emu:
            emu.set_fault_rate(0.5, seed=42)
            async with httpx.AsyncClient() as http:
                for i in range(20):
                    await http.post(
                        f"{emu.api_url}chat.postMessage",
                        json={"channel": "C0OPS", "text": f"{i}"},
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    )
            outcomes.append([c.ok for c in emu.calls])
    assert outcomes[0] == outcomes[1]
    assert 0 < outcomes[0].count(False) < 20


# -- response_url --------------------------------------------------------------------------


async def post_json(url: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(url, json=body)


async def test_response_url_ephemeral_in_channel_and_limits(emu: SlackEmulator) -> None:
    url = emu.new_response_url(channel_id="C0OPS", user_id="U0ALICE")
    first = await post_json(url, {"text": "just you"})
    assert first.json() == {"ok": True}
    await post_json(url, {"text": "everyone", "response_type": "in_channel"})
    assert [m.text for m in emu.ephemerals("U0ALICE")] == ["just you"]
    assert [m.text for m in emu.messages("C0OPS")] == ["everyone"]
    bad = await post_json(url, {"blocks": [section("no fallback")]})
    assert (bad.status_code, bad.json()["error"]) == (400, "missing_text")
    for _ in range(3):
        assert (await post_json(url, {"text": "again"})).status_code == 200
    used = await post_json(url, {"text": "sixth"})
    assert (used.status_code, used.json()["error"]) == (404, "used_url")
    assert [(v.method, v.error) for v in emu.violations()] == [
        ("response_url", "missing_text"),
        ("response_url", "used_url"),
    ]
    assert [p.ok for p in emu.responses] == [True, True, False, True, True, True, False]


async def test_response_url_expires_after_30_minutes() -> None:
    clock = FakeClock()
    async with SlackEmulator(clock=clock) as emu:
        url = emu.new_response_url()
        clock.now += 30 * 60 + 1
        expired = await post_json(url, {"text": "late"})
    assert expired.json()["error"] == "expired_url"


async def test_response_url_replace_and_delete_original(
    client: AsyncWebClient, emu: SlackEmulator
) -> None:
    posted = await client.chat_postMessage(
        channel="C0OPS", text="Kill a1b2?", blocks=[section("Kill?")]
    )
    url = emu.new_response_url(channel_id="C0OPS", message_ts=posted["ts"])
    await post_json(url, {"text": "Killed", "replace_original": True})
    [message] = emu.messages("C0OPS")
    assert (message.text, message.blocks) == ("Killed", [])
    assert message.edits[0].text == "Kill a1b2?"
    await post_json(url, {"delete_original": True})
    assert emu.messages("C0OPS") == []


# -- signing and requests to the bot -------------------------------------------------------


def test_sign_matches_slack_sdk_verifier() -> None:
    emu = SlackEmulator(signing_secret=SECRET)
    body = b"token=x&text=hello"
    timestamp = 1_700_000_000
    verifier = SignatureVerifier(SECRET, clock=_FixedClock(timestamp))
    assert verifier.is_valid(
        body=body, timestamp=str(timestamp), signature=emu.sign(body, timestamp)
    )
    assert not verifier.is_valid(
        body=body + b"x", timestamp=str(timestamp), signature=emu.sign(body, timestamp)
    )


class _FixedClock:
    """slack-sdk's verifier clock interface."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


class VerifyingApp:
    """A tiny app server that checks signatures with slack-sdk and keeps what it received."""

    def __init__(
        self, answer: Callable[[dict[str, Any]], Awaitable[web.StreamResponse]] | None = None
    ) -> None:
        self.received: list[dict[str, Any]] = []
        self.url = ""
        self._answer = answer
        self._runner: web.AppRunner | None = None
        self._verifier = SignatureVerifier(SECRET)

    async def __aenter__(self) -> VerifyingApp:
        app = web.Application()
        app.router.add_post("/slack/events", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/slack/events"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not self._verifier.is_valid_request(body, dict(request.headers)):
            return web.Response(status=401, text="invalid signature")
        fields = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        self.received.append(fields)
        if self._answer is not None:
            return await self._answer(fields)
        return web.Response(status=200)


async def test_slash_command_is_signed_and_shaped_like_slack(emu: SlackEmulator) -> None:
    async with VerifyingApp() as app:
        reply = await emu.send_slash_command(app.url, "restart a1b2", user_id="U0ALICE")
        assert reply.status_code == 200
        [fields] = app.received
        assert fields["command"] == "/starpod"
        assert fields["text"] == "restart a1b2"
        assert fields["user_id"] == "U0ALICE"
        assert fields["channel_id"] == "C0OPS"
        assert fields["channel_name"] == "ops"
        assert fields["team_id"] == "T0EMULATOR"
        assert fields["response_url"].startswith(f"{emu.url}/response/")
        assert set(fields) >= {
            "token",
            "team_domain",
            "user_name",
            "api_app_id",
            "is_enterprise_install",
            "trigger_id",
        }
        # The response_url works for the command's user and channel.
        await post_json(fields["response_url"], {"text": "done"})
        assert emu.ephemerals("U0ALICE")[0].channel == "C0OPS"

        forged = await emu.send_slash_command(app.url, "kill a1b2", signature="v0=" + "0" * 64)
        assert forged.status_code == 401
        stale = await emu.send_slash_command(app.url, "kill a1b2", timestamp=1_000_000_000)
        assert stale.status_code == 401
        assert len(app.received) == 1


async def test_block_action_is_signed_and_carries_the_message(
    client: AsyncWebClient, emu: SlackEmulator
) -> None:
    blocks = [
        section("Incident: a1b2 is stale", block_id="incident"),
        {
            "type": "actions",
            "block_id": "buttons",
            "elements": [
                button("Acknowledge", action_id="ack", value="inc-1"),
                {
                    "type": "overflow",
                    "action_id": "more",
                    "options": [option("Logs", "logs"), option("Mute 1h", "mute")],
                },
            ],
        },
    ]
    posted = await client.chat_postMessage(channel="C0ALERTS", text="incident", blocks=blocks)
    async with VerifyingApp() as app:
        await emu.send_block_action(app.url, action_id="ack", message_ts=posted["ts"])
        await emu.send_block_action(
            app.url, action_id="more", message_ts=posted["ts"], selected_option_value="mute"
        )
        with pytest.raises(LookupError):
            await emu.send_block_action(app.url, action_id="restart", message_ts=posted["ts"])
        with pytest.raises(ValueError):
            await emu.send_block_action(
                app.url, action_id="more", message_ts=posted["ts"], selected_option_value="kill"
            )
    click, pick = (json.loads(fields["payload"]) for fields in app.received)
    assert click["type"] == "block_actions"
    assert click["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": "C0ALERTS",
        "is_ephemeral": False,
    }
    assert click["channel"] == {"id": "C0ALERTS", "name": "alerts"}
    assert click["user"]["id"] == "U0OPERATOR"
    assert click["message"]["blocks"] == blocks
    [action] = click["actions"]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
        "ack",
        "buttons",
        "inc-1",
        "button",
    )
    assert pick["actions"][0]["selected_option"]["value"] == "mute"
    assert pick["actions"][0]["type"] == "overflow"
    assert click["response_url"].startswith(f"{emu.url}/response/")


async def test_block_action_on_ephemeral_message(
    client: AsyncWebClient, emu: SlackEmulator
) -> None:
    blocks = [
        {
            "type": "actions",
            "elements": [
                button("Kill", action_id="kill", value="a1b2", style="danger", confirm=confirm())
            ],
        }
    ]
    eph = await client.chat_postEphemeral(
        channel="C0OPS", user="U0ALICE", text="Kill?", blocks=blocks
    )
    async with VerifyingApp() as app:
        with pytest.raises(LookupError):
            await emu.send_block_action(
                app.url, action_id="kill", message_ts=eph["message_ts"], user_id="U0BOB"
            )
        await emu.send_block_action(
            app.url, action_id="kill", message_ts=eph["message_ts"], user_id="U0ALICE"
        )
    payload = json.loads(app.received[0]["payload"])
    assert payload["container"]["is_ephemeral"] is True
    assert "message" not in payload  # Slack sends no message body for ephemeral sources
    assert payload["actions"][0]["block_id"] == "b0"
    assert payload["actions"][0]["confirm"]["style"] == "danger"
    # replace_original on the ephemeral's response_url edits that ephemeral.
    await post_json(payload["response_url"], {"text": "Killed a1b2", "replace_original": True})
    assert [m.text for m in emu.ephemerals("U0ALICE")] == ["Killed a1b2"]


async def test_slow_ack_times_out_like_slack(emu: SlackEmulator) -> None:
    async def slow(fields: dict[str, Any]) -> web.StreamResponse:
        await asyncio.sleep(0.3)
        return web.Response()

    async with VerifyingApp(slow) as app:
        with pytest.raises(SlackAckTimeout):
            await emu.send_slash_command(app.url, "list", ack_timeout=0.05)


async def test_ack_body_is_shown_and_checked(emu: SlackEmulator) -> None:
    async def ack_with_blocks(fields: dict[str, Any]) -> web.StreamResponse:
        return web.json_response({"blocks": [section("no fallback")]})

    async with VerifyingApp(ack_with_blocks) as app:
        await emu.send_slash_command(app.url, "help")
    assert [(v.method, v.error) for v in emu.violations()] == [("response_url", "missing_text")]
    assert emu.responses[0].token == "ack"


# -- real Bolt against the emulator --------------------------------------------------------


async def test_real_bolt_app_round_trip(emu: SlackEmulator) -> None:
    bolt = AsyncApp(
        client=AsyncWebClient(token=TOKEN, base_url=emu.api_url),
        signing_secret=SECRET,
    )

    @bolt.command("/starpod")
    async def on_command(ack: Any, respond: Any, command: dict[str, Any], client: Any) -> None:
        await ack()
        await respond(text=f"you said {command['text']}")
        await client.chat_postMessage(
            channel=command["channel_id"],
            text="Restarting a1b2",
            blocks=[
                section("Restarting a1b2"),
                {"type": "actions", "elements": [button("Undo", action_id="undo", value="a1b2")]},
            ],
        )

    @bolt.action("undo")
    async def on_undo(ack: Any, body: dict[str, Any], client: Any) -> None:
        await ack()
        await client.chat_update(
            channel=body["channel"]["id"],
            ts=body["message"]["ts"],
            text="Undone by <@" + body["user"]["id"] + ">",
        )

    runner = web.AppRunner(bolt.web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        reply = await emu.send_slash_command(url, "restart a1b2")
        assert reply.status_code == 200
        await emu.wait_for(lambda: len(emu.messages("C0OPS")) == 1, timeout=30)
        await emu.wait_for(lambda: len(emu.ephemerals("U0OPERATOR")) == 1, timeout=30)
        assert emu.ephemerals("U0OPERATOR")[0].text == "you said restart a1b2"
        ts = emu.messages("C0OPS")[0].ts
        await emu.send_block_action(url, action_id="undo", message_ts=ts)
        await emu.wait_for(lambda: emu.messages("C0OPS")[0].edited, timeout=30)
        assert emu.messages("C0OPS")[0].text == "Undone by <@U0OPERATOR>"
        assert emu.calls[0].method == "auth.test"  # Bolt checks its token first
        assert emu.violations() == []
    finally:
        await runner.cleanup()


# -- waiting, notification, state ----------------------------------------------------------


async def test_wait_for_explains_a_timeout(client: AsyncWebClient, emu: SlackEmulator) -> None:
    await client.chat_postMessage(channel="C0OPS", text="x")
    with pytest.raises(TimeoutError, match=r"'two messages'.*chat.postMessage: ok"):
        await emu.wait_for(
            lambda: len(emu.messages("C0OPS")) == 2, timeout=0.05, what="two messages"
        )


async def test_events_wake_on_change(client: AsyncWebClient, emu: SlackEmulator) -> None:
    stream = emu.events()
    waiter = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    assert not waiter.done()
    await client.chat_postMessage(channel="C0OPS", text="x")
    version = await asyncio.wait_for(waiter, timeout=2)
    assert version >= 1
    await stream.aclose()


async def test_snapshot_is_json_and_reset_forgets_traffic(
    client: AsyncWebClient, emu: SlackEmulator
) -> None:
    root = await client.chat_postMessage(channel="C0ALERTS", text="a & <b>")
    await client.chat_postMessage(channel="C0ALERTS", text="reply", thread_ts=root["ts"])
    await client.files_upload_v2(channel="C0OPS", content=b"\xff\x00", filename="bin.dat")
    await post_json(emu.new_response_url(), {"text": "hi"})
    data = json.loads(json.dumps(emu.snapshot()))
    alerts = next(c for c in data["channels"] if c["id"] == "C0ALERTS")
    assert alerts["messages"][0]["replies"][0]["text"] == "reply"
    assert data["ephemerals"][0]["text"] == "hi"
    emu.reset()
    assert (emu.calls, emu.responses, emu.files, emu.messages("C0ALERTS")) == ([], [], [], [])
    assert (await client.conversations_info(channel="C0ALERTS"))["ok"] is True


async def test_upload_url_accepts_a_multipart_body(
    client: AsyncWebClient, emu: SlackEmulator
) -> None:
    reserved = await client.files_getUploadURLExternal(filename="report.csv", length=7)
    async with httpx.AsyncClient() as http:
        uploaded = await http.post(
            reserved["upload_url"], files={"file": ("report.csv", b"a,b\n1,2")}
        )
    assert (uploaded.status_code, uploaded.text) == (200, "OK - 7")
    await client.files_completeUploadExternal(
        files=[{"id": reserved["file_id"], "title": "Report"}], channel_id="C0OPS"
    )
    assert emu.files[0].content == b"a,b\n1,2"
    assert emu.files[0].title == "Report"


async def test_view_submission_and_views_open(emu: SlackEmulator) -> None:
    async with VerifyingApp() as app:
        reply = await emu.send_view_submission(
            app.url,
            callback_id="create_instance",
            values={"name": {"name_input": {"type": "plain_text_input", "value": "web-1"}}},
        )
    assert reply.status_code == 200
    payload = json.loads(app.received[0]["payload"])
    assert payload["type"] == "view_submission"
    assert payload["view"]["callback_id"] == "create_instance"
    assert payload["view"]["state"]["values"]["name"]["name_input"]["value"] == "web-1"

    clock = FakeClock()
    async with SlackEmulator(bot_token=TOKEN, clock=clock) as other:
        client = AsyncWebClient(token=TOKEN, base_url=other.api_url)
        modal = {
            "type": "modal",
            "title": {"type": "plain_text", "text": "Create"},
            "blocks": [section("Name?")],
        }
        trigger_id = other.new_trigger_id()
        opened = await client.views_open(trigger_id=trigger_id, view=modal)
        assert opened["view"]["id"] == other.opened_views[0].view_id
        clock.now += 3.5
        fresh = await client.views_open(trigger_id=other.new_trigger_id(), view=modal)
        assert fresh["ok"] is True
        with pytest.raises(SlackApiError) as raised:
            await client.views_open(trigger_id=trigger_id, view=modal)
        assert raised.value.response["error"] == "expired_trigger_id"
