"""The playground's HTTP side: page and files, state per user, commands, clicks, live events."""

from __future__ import annotations

import asyncio

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.sim.playground import STATIC_FILES, Playground, static_dir
from bot.sim.slack import SlackEmulator

Running = tuple[SlackEmulator, Playground]


async def test_the_page_and_its_files_are_served_with_a_strict_policy(playground: Running) -> None:
    emulator, _ = playground
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{emulator.url}/") as page:
            assert page.status == 200
            assert 'src="/static/app.js"' in await page.text()
            policy = page.headers["Content-Security-Policy"]
            assert "script-src 'self'" in policy and "default-src 'self'" in policy
        for name, content_type in STATIC_FILES.items():
            async with http.get(f"{emulator.url}/static/{name}") as asset:
                assert asset.status == 200, name
                assert asset.content_type == content_type
                assert await asset.read() == (static_dir() / name).read_bytes()
        for bad in ("index.py", "..%2Fplayground.py", "%2e%2e%2f%2e%2e%2fslack.py"):
            async with http.get(f"{emulator.url}/static/{bad}") as missing:
                assert missing.status == 404, bad


def test_every_static_file_exists_and_the_page_uses_no_inline_script() -> None:
    for name in STATIC_FILES:
        assert (static_dir() / name).is_file(), name
    page = (static_dir() / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "onclick=" not in page
    for name in STATIC_FILES:
        source = (static_dir() / name).read_text(encoding="utf-8")
        # Data reaches the page only as text nodes and attributes, never as parsed HTML.
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{name} uses {sink}"


async def test_state_shows_each_user_only_their_own_ephemerals(playground: Running) -> None:
    emulator, mounted = playground
    web = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    await web.chat_postMessage(channel="C0ALERTS", text="an alert")
    await web.chat_postEphemeral(channel="C0OPS", user="U0OPERATOR", text="for the operator")
    await web.chat_postEphemeral(channel="C0OPS", user="U0VIEWER", text="for the viewer")
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{emulator.url}/playground/state?user=U0VIEWER") as answer,
    ):
        state = await answer.json()
    assert state["user"] == "U0VIEWER"
    assert [m["text"] for m in state["ephemerals"]] == ["for the viewer"]
    alerts = next(c for c in state["channels"] if c["id"] == "C0ALERTS")
    assert [m["text"] for m in alerts["messages"]] == ["an alert"]
    assert state["version"] == emulator.version
    assert [u["id"] for u in state["users"]] == [u.id for u in mounted.users]
    # Without a user, the first one (the operator) is who the page acts as.
    assert [m["text"] for m in mounted.state(None)["ephemerals"]] == ["for the operator"]


async def test_plain_text_is_posted_as_the_users_message_escaped(playground: Running) -> None:
    emulator, _ = playground
    async with aiohttp.ClientSession() as http:
        body = {"text": "hi <!channel> & <b>", "user": "U0ADMIN", "channel": "C0GENERAL"}
        async with http.post(f"{emulator.url}/playground/command", json=body) as answer:
            assert answer.status == 200
            assert (await answer.json())["kind"] == "message"
    [message] = emulator.messages("C0GENERAL")
    assert message.user == "U0ADMIN"
    assert message.text == "hi &lt;!channel&gt; &amp; &lt;b&gt;"


async def test_the_thread_box_replies_in_the_thread_and_refuses_commands_as_slack_does(
    playground: Running,
) -> None:
    emulator, _ = playground
    web = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    root = await web.chat_postMessage(channel="C0ALERTS", text="pod-001 went stale")
    first = await web.chat_postMessage(channel="C0ALERTS", text="restarting", thread_ts=root["ts"])
    url = f"{emulator.url}/playground/command"
    async with aiohttp.ClientSession() as http:
        # A reply's ts names its thread too, as in Slack.
        for ts, text in ((root["ts"], "on it <@U0ADMIN>"), (first["ts"], "second note")):
            body = {"text": text, "user": "U0OPERATOR", "channel": "C0ALERTS", "thread_ts": ts}
            async with http.post(url, json=body) as answer:
                assert answer.status == 200 and (await answer.json())["kind"] == "message"
        # The bot's URL is unreachable here: a command that reached it would answer 502.
        body = {
            "text": "/starpod restart pod-001",
            "user": "U0OPERATOR",
            "channel": "C0ALERTS",
            "thread_ts": root["ts"],
        }
        async with http.post(url, json=body) as answer:
            assert answer.status == 200 and (await answer.json())["kind"] == "refused"
    thread = emulator.thread("C0ALERTS", root["ts"])
    assert [(m.user, m.text) for m in thread[2:]] == [
        ("U0OPERATOR", "on it &lt;@U0ADMIN&gt;"),
        ("U0OPERATOR", "second note"),
    ]
    assert emulator.messages("C0ALERTS")[0].ts == root["ts"]  # replies stay in the thread
    [notice] = emulator.ephemerals("U0OPERATOR")
    assert (notice.user, notice.thread_ts, notice.text) == (
        "USLACKBOT",
        root["ts"],
        "/starpod is not supported in threads. Sorry!",
    )
    assert emulator.ephemerals("U0VIEWER") == []


async def test_bad_commands_and_clicks_get_a_clear_error(playground: Running) -> None:
    emulator, _ = playground
    url = emulator.url
    async with aiohttp.ClientSession() as http:
        cases = [
            ("command", {"text": "/deploy now"}, 400, "/deploy is not a valid command"),
            ("command", {"text": "  "}, 400, "type a message"),
            ("command", {"text": "/starpod list", "channel": "C0NOPE"}, 400, "no channel"),
            ("command", {"text": "hi", "thread_ts": "9.000009"}, 400, "no thread 9.000009"),
            ("command", {"text": "/starpod list"}, 502, "the bot is not reachable"),
            ("action", {"action_id": "x"}, 400, "message_ts and action_id are required"),
            ("action", {"message_ts": "1.000001", "action_id": "x"}, 502, "not reachable"),
        ]
        for kind, body, status, expected in cases:
            async with http.post(f"{url}/playground/{kind}", json=body) as answer:
                data = await answer.json()
                assert (answer.status, data["ok"]) == (status, False), body
                assert expected in data["error"], data
        async with http.post(f"{url}/playground/command", data=b"not json") as answer:
            assert answer.status == 400


async def test_a_click_on_an_element_the_message_lacks_is_refused(playground: Running) -> None:
    emulator, _ = playground
    web = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    posted = await web.chat_postMessage(channel="C0OPS", text="no buttons here")
    async with aiohttp.ClientSession() as http:
        body = {"message_ts": posted["ts"], "action_id": "starpod.card.restart"}
        async with http.post(f"{emulator.url}/playground/action", json=body) as answer:
            assert answer.status == 400
            assert "has no element" in (await answer.json())["error"]


async def test_events_stream_a_version_per_change_and_end_at_shutdown() -> None:
    emulator = SlackEmulator()
    await emulator.start(extend=Playground(emulator=emulator, bot_url="http://x").mount)
    web = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{emulator.url}/playground/events") as stream,
    ):
        assert stream.headers["Content-Type"] == "text/event-stream"
        first = await _next_event(stream)
        assert first == emulator.version
        await web.chat_postMessage(channel="C0OPS", text="change")
        second = await _next_event(stream)
        assert second > first
        # Stopping the server ends the open stream instead of waiting on it (aiohttp would
        # otherwise wait its 60 s shutdown timeout for the handler).
        await asyncio.wait_for(emulator.stop(), timeout=5)
        await asyncio.wait_for(stream.content.read(), timeout=5)


async def _next_event(stream: aiohttp.ClientResponse) -> int:
    while True:
        line = (await asyncio.wait_for(stream.content.readline(), timeout=5)).decode().strip()
        if line.startswith("data: "):
            return int(line.removeprefix("data: "))
