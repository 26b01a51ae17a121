"""The demo in headless Chromium, driven like a newcomer would use it.

``starpod-bot demo`` runs for real (the bot as its own process in HTTP mode); the browser types
``/starpod list``, restarts an instance from a row's ⋯ menu and watches the announcement update,
then waits in #alerts for the stale instance to be caught, restarted and resolved. With
``--socket-mode`` the same page drives the bot over the emulator's socket.
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


async def test_list_restart_and_the_stale_alert_in_the_browser(
    fast_demo: StartDemo, browser: Any, tmp_path: Path
) -> None:
    # The stall comes a little later here, so the story runs in a newcomer's order.
    demo = await fast_demo("--stall-after", "8")
    stale = demo.healing_name
    page, rows, errors = await _list_in_ops(browser, demo)

    # Restart another instance from its row's ⋯ menu; "Restarting…" is edited in place once
    # the instance runs again.
    target = "pod-003"
    assert target not in (stale, demo.wedged_name)
    await _restart_from_row(page, rows, target)
    announcement = page.locator(".messages .msg:not(.ephemeral)").filter(has_text=target).last
    assert "operator" in await announcement.inner_text()

    # Nothing else to do: the monitor catches the stale instance in #alerts.
    await page.locator('[data-channel-id="C0ALERTS"]').click()
    alert = page.locator(".messages .msg").filter(has_text=stale).first
    await alert.wait_for(timeout=30_000)
    assert "@oncall" in await alert.inner_text()
    await page.wait_for_function(
        """(name) => [...document.querySelectorAll('.messages .msg')]
            .some((m) => m.innerText.includes(name) && m.innerText.includes('Resolved after'))""",
        arg=stale,
        timeout=30_000,
    )
    await alert.locator(".thread-link").click()
    thread = page.locator("#thread-messages")
    assert await thread.locator(".msg").count() >= 2
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
