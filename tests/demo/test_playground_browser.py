"""The demo in headless Chromium, driven like a newcomer would use it.

``starpod-bot demo`` runs for real (the bot as its own process in HTTP mode); the browser plays
the README's story: ``/starpod list``, a restart from a row's ⋯ menu, the user switch, the
instance the bot heals, the wedged one that pages on-call, and the person who acknowledges,
reads the logs, writes in the thread and restarts it. With ``--socket-mode`` the same page
drives the bot over the emulator's socket.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.demo.conftest import DemoProcess

pytestmark = pytest.mark.slow

StartDemo = Callable[..., Awaitable[DemoProcess]]
# Where a copy of the screenshot goes for a person to look at (set it to keep one).
SCREENSHOT_COPY = os.environ.get("STARPOD_PLAYGROUND_SCREENSHOT")


async def _list_in_ops(browser: Any, demo: DemoProcess) -> tuple[Any, Any, list[str]]:
    """Open the playground, type ``/starpod list`` in #ops; the page, the rows, page errors."""
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{demo.playground_url}/")
    # Type the command as in Slack.
    composer = page.locator("#composer-input")
    await composer.fill("/starpod list")
    await composer.press("Enter")
    answer = page.locator(".msg.ephemeral").filter(has=page.locator(".overflow-toggle")).last
    await answer.wait_for(timeout=15_000)
    rows = answer.locator('.block[data-block-id^="starpod.list.row:"]')
    assert await rows.count() == 4
    assert "Only visible to you" in await answer.inner_text()
    return page, rows, errors


async def _restart_from_row(page: Any, rows: Any, target: str) -> None:
    """Restart ``target`` from its row's ⋯ menu; returns once "Restarting…" was edited done."""
    row = rows.filter(has_text=target)
    await row.locator(".overflow-toggle").click()
    await row.locator(".overflow-option", has_text="Restart").click()
    await page.wait_for_function(
        """(name) => [...document.querySelectorAll('.messages .msg:not(.ephemeral)')]
            .some((m) => m.innerText.includes(name) && m.innerText.includes('running again')
                         && m.innerText.includes('(edited)'))""",
        arg=target,
        timeout=20_000,
    )


def _has(selector: str) -> str:
    """A page function: does an element matching ``selector`` contain every given text?"""
    return (
        "(texts) => [...document.querySelectorAll(" + repr(selector) + ")]"
        ".some((el) => texts.every((t) => el.innerText.includes(t)))"
    )


async def _wait_text(page: Any, selector: str, *texts: str) -> None:
    """Wait (30 s at most) until an element matching ``selector`` shows every text."""
    await page.wait_for_function(_has(selector), arg=list(texts), timeout=30_000)


async def _notes(page: Any) -> str:
    text: str = await page.locator("#demo-notes").inner_text()
    return text


async def test_the_readme_story_plays_in_the_browser(
    fast_demo: StartDemo, browser: Any, tmp_path: Path
) -> None:
    # The stalls come a little later here, so the story runs in the README's order.
    demo = await fast_demo("--stall-after", "8")
    healing, wedged = demo.healing_name, demo.wedged_name
    page, rows, errors = await _list_in_ops(browser, demo)

    # 1. Restart pod-003 from its row's ⋯ menu; "Restarting…" is edited once it runs again.
    target = "pod-003"
    assert target not in (healing, wedged)
    await _restart_from_row(page, rows, target)
    announcement = page.locator(".messages .msg:not(.ephemeral)").filter(has_text=target).last
    assert "operator" in await announcement.inner_text()

    # The sidebar follows the user switch.
    assert "You act as operator" in await _notes(page)
    await page.select_option("#user-select", "U0VIEWER")
    await _wait_text(page, "#demo-notes", "You act as viewer")
    assert "You act as operator" not in await _notes(page)
    await page.select_option("#user-select", "U0OPERATOR")
    await _wait_text(page, "#demo-notes", "You act as operator")

    # 2. Both stall; the bot heals one by itself.
    await page.locator('[data-channel-id="C0ALERTS"]').click()
    await _wait_text(page, ".messages .msg", healing, "Resolved after")
    await _wait_text(page, "#demo-notes", f"{healing} is back: the bot's restart healed it")

    # 3. The other outlasts the bot's two restarts: on-call is paged in its thread.
    incident = page.locator(".messages .msg:not(.ephemeral)").filter(has_text=wedged).first
    await incident.locator(".thread-link").wait_for(timeout=30_000)
    await incident.locator(".thread-link").click()
    thread = page.locator("#thread-messages")
    await _wait_text(page, "#thread-messages", "Auto-restart gave up", "@oncall")
    assert "auto-restart 2 of 2" in await thread.inner_text()
    await _wait_text(page, "#demo-notes", f"{wedged}: the bot gave up after 2 restarts")

    # 4. In the thread: acknowledge, read the logs, write a note, try a command, restart.
    parent = thread.locator(".msg.thread-parent")
    await parent.locator(".btn", has_text="Acknowledge").click()
    await _wait_text(page, "#thread-messages .thread-parent", "Acknowledged by", "@operator")
    await parent.locator(".btn", has_text="Logs").click()
    await _wait_text(page, ".messages .msg.ephemeral", wedged, "times in UTC")
    reply_box = page.locator("#thread-input")
    await reply_box.fill("Looking into it: the agent is wedged.")
    await reply_box.press("Enter")
    await _wait_text(page, "#thread-messages .msg", "operator", "the agent is wedged")
    await reply_box.fill(f"/starpod restart {wedged}")
    await reply_box.press("Enter")
    refusal = ("Slackbot", "/starpod is not supported in threads. Sorry!")
    await _wait_text(page, "#thread-messages .msg.ephemeral", *refusal)
    await parent.locator(".btn", has_text="Restart now").click()
    await _wait_text(page, "#thread-messages .thread-parent", "Resolved after")
    await _wait_text(page, "#thread-messages", "restarted it by hand", "Recovered after")
    await _wait_text(page, "#demo-notes", f"{wedged} is back after a person's restart")
    notes = await _notes(page)
    assert "gave up" not in notes and "in about" not in notes, notes
    # Resolved: no more buttons that act on the instance.
    assert await parent.locator(".btn", has_text="Restart now").count() == 0

    # 5. Roles: a viewer's restart is refused; an admin kills, after confirming.
    await page.locator("#thread-close").click()
    await page.locator('[data-channel-id="C0OPS"]').click()
    victim = "pod-004"
    for user, choice in (("U0VIEWER", "Restart"), ("U0ADMIN", "Kill…")):
        await page.select_option("#user-select", user)
        await page.wait_for_function("() => !document.querySelector('.messages .msg.ephemeral')")
        await page.locator("#composer-input").fill("/starpod list")
        await page.locator("#composer-input").press("Enter")
        row = page.locator(".msg.ephemeral .block", has_text=victim).filter(
            has=page.locator(".overflow-toggle")
        )
        await row.wait_for(timeout=15_000)
        await row.locator(".overflow-toggle").click()
        await row.locator(".overflow-option", has_text=choice).click()
        if user == "U0VIEWER":
            await _wait_text(page, ".messages .msg.ephemeral", "You need the", "viewer")
    prompt = page.locator(".msg.ephemeral").filter(has=page.locator(".btn-danger")).last
    await prompt.locator(".btn-danger").click()
    await page.locator("#confirm-yes").click()
    await _wait_text(page, ".messages .msg:not(.ephemeral)", victim, "killed", "(edited)")

    shot = tmp_path / "playground.png"
    await page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if SCREENSHOT_COPY:
        shutil.copy(shot, SCREENSHOT_COPY)
    assert errors == []


async def test_the_playground_drives_the_bot_in_socket_mode(
    fast_demo: StartDemo, browser: Any
) -> None:
    demo = await fast_demo("--socket-mode")
    # The same page as in HTTP mode; "Slack" hands the command and the click to the bot's
    # socket, and the announcement is edited when the restart is done.
    page, rows, errors = await _list_in_ops(browser, demo)
    await _restart_from_row(page, rows, "pod-003")
    assert errors == []
    assert "Bot (Socket Mode):" in demo.output()
