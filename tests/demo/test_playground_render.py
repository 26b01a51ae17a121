"""The playground in headless Chromium renders the bot's own Block Kit as Slack would.

The messages come from the bot's real builders (``bot.slack.blocks``) over the emulator's Web
API, with instances read from the backend simulator by the real client. The bot itself is not
running here (its URL is unreachable), so a click that gets through shows the failure toast.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.backend.client import InstanceClient
from bot.sim.backend import BackendSimulator
from bot.sim.playground import Playground
from bot.sim.slack import SlackEmulator
from bot.slack.blocks.fleet import ListQuery, list_page
from bot.slack.blocks.lifecycle import Verb, announce_started, announce_succeeded, kill_confirmation

HOSTILE_NAME = '<img src=x onerror="window.__pwned=1"> & <!channel>'
Running = tuple[SlackEmulator, Playground]


async def _fleet(count: int) -> list[Any]:
    async with BackendSimulator(transition_secs=0) as sim:
        sim.seed_instances(count)
        sim.add_instance(name=HOSTILE_NAME)
        async with InstanceClient(sim.url) as client:
            return await client.list_instances()


async def test_bot_messages_render_like_slack_and_stay_inert(
    playground: Running, browser: Any
) -> None:
    emulator, _ = playground
    instances = await _fleet(4)
    web = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    fleet = list_page(instances, ListQuery(), now=dt.datetime.now(dt.UTC))
    await web.chat_postEphemeral(channel="C0OPS", user="U0OPERATOR", **fleet.kwargs())
    target = instances[0]
    started = announce_started(Verb.RESTART, f"*{target.name}*", target.label, "U0OPERATOR")
    posted = await web.chat_postMessage(channel="C0OPS", **started.kwargs())
    done = announce_succeeded(Verb.RESTART, f"*{target.name}*", target.label, "U0OPERATOR", 14)
    await web.chat_update(channel="C0OPS", ts=posted["ts"], **done.kwargs())
    await web.chat_postMessage(channel="C0OPS", **kill_confirmation(target).kwargs())
    root = await web.chat_postMessage(
        channel="C0ALERTS",
        text="incident",
        blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": "pod went stale"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "```12:00 <b>boom</b>```"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "<!subteam^S0|@oncall>"}]},
        ],
    )
    await web.chat_postMessage(channel="C0ALERTS", thread_ts=root["ts"], text="Restarting")

    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{emulator.url}/")
    ephemeral = page.locator(".msg.ephemeral")
    await ephemeral.wait_for()
    assert "Only visible to you" in await ephemeral.inner_text()
    # One row per instance, each with its overflow menu, in the bot's block ids.
    assert await ephemeral.locator(".overflow-toggle").count() == len(instances)
    row = ephemeral.locator(f'.block[data-block-id="starpod.list.row:{target.id}"]')
    assert target.short_id in await row.inner_text()
    # The hostile name is text: no element made from it, no script run, no broadcast.
    assert HOSTILE_NAME in await ephemeral.inner_text()
    assert await page.locator(".messages img").count() == 0
    assert await page.evaluate("window.__pwned") is None
    assert await ephemeral.locator(".broadcast").count() == 0
    # The announcement was edited in place and says so.
    announcement = page.locator(f'.msg[data-ts="{posted["ts"]}"]')
    assert "(edited)" in await announcement.inner_text()
    assert "14" in await announcement.inner_text()
    # Overflow menu: opens with the bot's options.
    await row.locator(".overflow-toggle").click()
    options = row.locator(".overflow-option")
    assert await options.all_inner_texts() == ["Health", "Logs", "SSH", "Restart", "Kill…"]
    await page.keyboard.press("Escape")
    await page.mouse.click(5, 5)
    assert await row.locator(".overflow-menu").is_hidden()

    # A danger button with a confirm dialog: Cancel sends nothing, confirming sends the click.
    kill = page.locator(".btn-danger").first
    await kill.click()
    dialog = page.locator("#confirm-dialog")
    await dialog.wait_for()
    assert "Kill" in await page.locator("#confirm-title").inner_text()
    assert "btn-danger" in (await page.locator("#confirm-yes").get_attribute("class") or "")
    await page.locator("#confirm-no").click()
    assert await dialog.is_hidden()
    assert await page.locator(".toast").count() == 0
    await kill.click()
    await page.locator("#confirm-yes").click()
    toast = page.locator(".toast")
    await toast.wait_for()
    assert "not reachable" in await toast.inner_text()

    # Another channel: header, code block as text, group mention, a thread that opens.
    await page.locator('[data-channel-id="C0ALERTS"]').click()
    alert = page.locator(f'.messages .msg[data-ts="{root["ts"]}"]')
    await alert.wait_for()
    assert await alert.locator(".block-header").inner_text() == "pod went stale"
    assert await alert.locator("pre.code-block").inner_text() == "12:00 <b>boom</b>"
    assert await alert.locator(".group-mention").inner_text() == "@oncall"
    await alert.locator(".thread-link").click()
    assert "Restarting" in await page.locator("#thread-messages").inner_text()

    # Another user does not see the operator's ephemeral answer.
    await page.locator('[data-channel-id="C0OPS"]').click()
    await page.select_option("#user-select", "U0VIEWER")
    await page.wait_for_function("() => !document.querySelector('.msg.ephemeral')")
    assert errors == []


async def test_mrkdwn_renders_formatting_links_and_mentions(
    playground: Running, browser: Any
) -> None:
    emulator, _ = playground
    web = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    text = (
        "*bold* _italic_ ~gone~ `code` a*b*c <https://example.com/x?a=1&amp;b=2|the docs> "
        "<javascript:alert(1)|click> <@U0ADMIN> <#C0ALERTS> :white_check_mark:\n&gt; quoted"
    )
    posted = await web.chat_postMessage(channel="C0OPS", text=text)
    page = await browser.new_page()
    await page.goto(f"{emulator.url}/")
    message = page.locator(f'.msg[data-ts="{posted["ts"]}"]')
    await message.wait_for()
    assert await message.locator("b").first.inner_text() == "bold"
    assert await message.locator("i").inner_text() == "italic"
    assert await message.locator("s").inner_text() == "gone"
    assert await message.locator(".inline-code").inner_text() == "code"
    assert "a*b*c" in await message.inner_text()  # no formatting inside a word
    links = message.locator("a")
    assert await links.count() == 1  # the javascript: one stays text
    assert await links.get_attribute("href") == "https://example.com/x?a=1&b=2"
    assert await links.inner_text() == "the docs"
    assert await message.locator(".mention").all_inner_texts() == ["@admin", "#alerts"]
    assert "✅" in await message.inner_text()
    assert await message.locator("blockquote").inner_text() == "quoted"
