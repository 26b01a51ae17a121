"""The emulator's modals and App Home: Slack's rules for views, through the real Web API client.

views.open / update / push keep each user's modal stack; a submission's answer changes it as
Slack does; views.publish is rate limited; every view is checked against Slack's limits.
The playground's view routes answer bad input with one clear line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sim.playground import Playground
from bot.sim.playground_views import ShortcutHint
from bot.sim.slack import SlackEmulator, SurfaceError
from bot.sim.slack_web_api import PUBLISHES_PER_MINUTE

USER = "U0ALICE"


def text_input_modal(title: str = "Form", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "form",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Go"},
        "blocks": [
            {
                "type": "input",
                "block_id": "name",
                "label": {"type": "plain_text", "text": "Name"},
                "element": {"type": "plain_text_input", "action_id": "name_input"},
            }
        ],
        **extra,
    }


@pytest.fixture
async def emu() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator() as emulator:
        yield emulator


@pytest.fixture
async def client(emu: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)


async def test_views_open_update_and_push_keep_the_users_stack(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    opened = await client.views_open(trigger_id=emu.new_trigger_id(USER), view=text_input_modal())
    view_id = opened["view"]["id"]
    modal = emu.surfaces.modal(USER)
    assert modal is not None and modal.view_id == view_id
    emu.surfaces.fill(USER, "name", "web-1")
    updated = await client.views_update(view_id=view_id, view=text_input_modal("Again"))
    assert updated["view"]["id"] == view_id
    assert modal.values == {"name": {"name_input": {"type": "plain_text_input", "value": "web-1"}}}
    with pytest.raises(SlackApiError, match="hash_conflict"):
        await client.views_update(view_id=view_id, hash="stale", view=text_input_modal())
    await client.views_push(trigger_id=emu.new_trigger_id(USER), view=text_input_modal("Two"))
    await client.views_push(trigger_id=emu.new_trigger_id(USER), view=text_input_modal("Three"))
    with pytest.raises(SlackApiError, match="push_limit_reached"):
        await client.views_push(trigger_id=emu.new_trigger_id(USER), view=text_input_modal())
    emu.surfaces.close(USER)
    assert emu.web_state.modals.depth(USER) == 2
    with pytest.raises(SlackApiError, match="not_found"):
        await client.views_update(view_id="V404", view=text_input_modal())


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"title": {"type": "plain_text", "text": "x" * 25}}, "/view/title/text"),
        ({"private_metadata": "m" * 3001}, "/view/private_metadata"),
        ({"submit": None}, "submit is required"),
    ],
)
async def test_modals_over_slacks_limits_are_refused(
    emu: SlackEmulator, client: AsyncWebClient, change: dict[str, Any], detail: str
) -> None:
    view = {k: v for k, v in {**text_input_modal(), **change}.items() if v is not None}
    with pytest.raises(SlackApiError) as caught:
        await client.views_open(trigger_id=emu.new_trigger_id(USER), view=view)
    assert caught.value.response["error"] == "invalid_arguments"
    assert any(detail in line for line in caught.value.response["response_metadata"]["messages"])


async def test_views_publish_is_rate_limited(emu: SlackEmulator, client: AsyncWebClient) -> None:
    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
    }
    for _ in range(PUBLISHES_PER_MINUTE):
        await client.views_publish(user_id=USER, view=home)
    with pytest.raises(SlackApiError, match="ratelimited"):
        await client.views_publish(user_id=USER, view=home)
    assert [c.error for c in emu.violations()] == ["ratelimited"]


async def echo_app(answer: dict[str, Any]) -> web.Application:
    async def handler(_request: web.Request) -> web.Response:
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/slack/events", handler)
    return app


async def serve(answer: dict[str, Any]) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(await echo_app(answer))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}/slack/events"


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"response_action": "errors", "errors": {"nope": "bad"}}, "input blocks"),
        ({"response_action": "update", "view": {"type": "modal", "blocks": []}}, "invalid"),
        ({"response_action": "dance"}, "cannot read"),
    ],
)
async def test_a_submission_answer_slack_would_refuse_is_caught(
    emu: SlackEmulator, client: AsyncWebClient, answer: dict[str, Any], problem: str
) -> None:
    await client.views_open(trigger_id=emu.new_trigger_id(USER), view=text_input_modal())
    runner, url = await serve(answer)
    try:
        with pytest.raises(SurfaceError, match=problem):
            await emu.surfaces.submit(url, USER)
    finally:
        await runner.cleanup()


async def test_more_than_100_options_are_caught(emu: SlackEmulator, client: AsyncWebClient) -> None:
    view = text_input_modal()
    view["blocks"][0]["element"] = {"type": "external_select", "action_id": "pick"}
    await client.views_open(trigger_id=emu.new_trigger_id(USER), view=view)
    option = {"text": {"type": "plain_text", "text": "x"}, "value": "x"}
    runner, url = await serve({"options": [option] * 101})
    try:
        with pytest.raises(SurfaceError, match="no more than 100 options"):
            await emu.surfaces.suggest(url, USER, "name", "x")
    finally:
        await runner.cleanup()


async def test_only_what_the_view_offers_can_be_filled(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    with pytest.raises(LookupError, match="no modal open"):
        emu.surfaces.fill(USER, "name", "x")
    await client.views_open(trigger_id=emu.new_trigger_id(USER), view=text_input_modal())
    with pytest.raises(LookupError, match="no input block 'other'"):
        emu.surfaces.fill(USER, "other", "x")


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/playground/shortcut", {"callback_id": "nope"}, "declares no shortcut 'nope'"),
        ("/playground/view/submit", {"values": {}}, "has no modal open"),
        ("/playground/view/suggest", {"typed": "x"}, "block_id is required"),
        ("/playground/view/action", {"surface": "home"}, "action_id is required"),
        ("/playground/view/action", {"action_id": "a"}, "has no App Home published"),
        ("/playground/shortcut", {"callback_id": "act", "message_ts": "1.2"}, "no message 1.2"),
    ],
)
async def test_the_playground_view_routes_answer_bad_input_plainly(
    path: str, body: dict[str, Any], error: str
) -> None:
    emulator = SlackEmulator()
    mounted = Playground(
        emulator=emulator,
        bot_url="http://127.0.0.1:9/slack/events",
        shortcuts=(ShortcutHint("Act", "global", "act"),),
    )
    await emulator.start(extend=mounted.mount)
    try:
        async with aiohttp.ClientSession() as http, http.post(emulator.url + path, json=body) as r:
            answer = await r.json()
        assert r.status == 400 and answer["ok"] is False
        assert error in answer["error"]
    finally:
        await emulator.stop()
