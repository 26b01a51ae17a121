"""The playground in headless Chromium renders the bot's own Block Kit as Slack would.

The messages come from the bot's real builders (``bot.slack.blocks``) over the emulator's Web
API, with instances read from the backend simulator by the real client. The bot itself is not
running here (its URL is unreachable), so a click that gets through shows the failure toast.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.backend.client import InstanceClient
from bot.sim.backend import BackendSimulator
from bot.sim.playground import Playground, static_dir
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
    await page.goto(f"{emulator.url}/?emoji=native")  # the shortcode as the emoji itself
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


def _has_an_emoji_font() -> bool:
    """Whether fontconfig knows a font with U+1F680 (stock Debian: none)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    found = subprocess.run(
        [fc_list, ":charset=1f680", "family"], capture_output=True, text=True, check=False
    )
    return bool(found.stdout.strip())


# Each fallback glyph drawn in the fallback's font, compared with a character no font has.
_GLYPHS_DRAWN = """(glyphs) => {
  const draw = (text) => {
    const canvas = document.createElement("canvas");
    canvas.width = 60; canvas.height = 40;
    const context = canvas.getContext("2d");
    context.font = "700 28px 'DejaVu Sans', sans-serif";
    context.textBaseline = "top";
    context.fillText(text, 2, 2);
    return Array.from(context.getImageData(0, 0, 60, 40).data).join(",");
  };
  const missing = draw("\\uE000");
  return glyphs.filter((glyph) => draw(glyph) === missing || draw(glyph) === draw(""));
}"""


async def test_every_emoji_is_drawn_from_a_fallback_where_there_is_no_emoji_font(
    playground: Running, browser: Any
) -> None:
    emulator, _ = playground
    table = json.loads((static_dir() / "emoji.json").read_text(encoding="utf-8"))
    web = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    every = "".join(table["fallbacks"])
    shortcodes = " ".join(f":{name}:" for name in table["shortcodes"])
    posted = await web.chat_postMessage(
        channel="C0OPS",
        text="fallbacks",
        blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{every}* ⚠️ done"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": shortcodes}},
            {"type": "header", "text": {"type": "plain_text", "text": "🔴 down", "emoji": True}},
        ],
    )
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Left to itself the page looks: this machine's fonts decide.
    await page.goto(f"{emulator.url}/")
    await page.locator(f'.msg[data-ts="{posted["ts"]}"]').wait_for()
    mode = await page.evaluate("document.documentElement.dataset.emoji")
    assert mode == ("native" if _has_an_emoji_font() else "fallback")

    await page.goto(f"{emulator.url}/?emoji=fallback")
    message = page.locator(f'.msg[data-ts="{posted["ts"]}"]')
    await message.wait_for()
    drawn = await message.locator(".msg-content .emoji-fallback").evaluate_all(
        "(spans) => spans.map((s) => s.dataset.emoji)"
    )
    expected = (
        list(table["fallbacks"])
        + ["⚠"]
        + [e.rstrip("\ufe0f") for e in table["shortcodes"].values()]
        + ["🔴"]
    )
    assert drawn == expected
    # No emoji is left as text (where a stock Chromium draws an empty box).
    leftover = await message.locator(".msg-content").evaluate(
        """(el) => { const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
             const out = []; while (walker.nextNode()) {
               if (!walker.currentNode.parentElement.closest('.emoji-fallback'))
                 out.push(walker.currentNode.nodeValue); }
             return out.join(''); }"""
    )
    assert not [ch for ch in leftover if ch in table["fallbacks"] or ch == "\ufe0f"], leftover
    assert "done" in leftover and "down" in leftover
    glyphs = sorted({spec["glyph"] for spec in table["fallbacks"].values()})
    assert await page.evaluate(_GLYPHS_DRAWN, glyphs) == []
    # Text added later (a toast, a new message) is swapped too.
    await web.chat_postMessage(channel="C0OPS", text="later :white_check_mark:")
    later = page.locator(".msg", has_text="later")
    await later.wait_for()
    assert await later.locator('.emoji-fallback[data-emoji="✅"]').count() == 1
    assert errors == []


async def test_a_bottom_rows_menu_opens_inside_the_window_above_the_message_box(
    playground: Running, browser: Any
) -> None:
    emulator, _ = playground
    instances = await _fleet(7)
    web = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    fleet = list_page(instances, ListQuery(), now=dt.datetime.now(dt.UTC))
    await web.chat_postEphemeral(channel="C0OPS", user="U0OPERATOR", **fleet.kwargs())
    page = await browser.new_page(viewport={"width": 1100, "height": 620})
    await page.goto(f"{emulator.url}/")
    toggles = page.locator(".msg.ephemeral .overflow-toggle")
    await toggles.last.wait_for()
    viewport = page.viewport_size
    assert viewport is not None
    composer = await page.locator("#composer").bounding_box()
    assert composer is not None
    for index in (await toggles.count() - 1, 0):  # the bottom row, then the top one
        await toggles.nth(index).click()
        menu = page.locator(".overflow-menu:not([hidden])")
        options = menu.locator(".overflow-option")
        assert await options.count() == 5
        for option in await options.all():
            box = await option.bounding_box()
            assert box is not None
            assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
            assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], box
            # Nothing covers it: the point at its middle is the option itself.
            on_top = await option.evaluate(
                """(el) => { const r = el.getBoundingClientRect();
                     return el.contains(document.elementFromPoint(r.x + r.width / 2,
                                                                  r.y + r.height / 2)); }"""
            )
            assert on_top, await option.inner_text()
        menu_box = await menu.bounding_box()
        assert menu_box is not None
        assert menu_box["y"] + menu_box["height"] <= composer["y"], (menu_box, composer)
        await page.mouse.click(5, 5)
        assert await menu.count() == 0
