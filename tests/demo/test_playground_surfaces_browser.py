"""App Home, modals, shortcuts and the instance picker, in headless Chromium on the real demo.

``starpod-bot demo`` runs for real (the bot in its own process, HTTP mode, or over the
emulator's socket); the browser opens the app's Home, restarts an instance from a row's ⋯
menu, creates an instance through the modal (a validation error first), and mutes one
through the "Act on an instance" shortcut, picking it by typing part of its name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.demo.conftest import DemoProcess

pytestmark = pytest.mark.slow

StartDemo = Callable[..., Awaitable[DemoProcess]]
HOME_ROWS = '.home-body .block[data-block-id^="starpod.home.row:"]'


def field(page: Any, block_id: str) -> Any:
    return page.locator(f'#modal .modal-field[data-block-id="{block_id}"]')


async def wait_modal(page: Any, callback_id: str) -> Any:
    modal = page.locator(f'#modal[data-callback-id="{callback_id}"]')
    await modal.wait_for(timeout=15_000)
    return modal


async def wait_outcome(page: Any) -> str:
    """Wait until the modal shows the outcome of its work; ``ok`` or ``failed``.

    By block id, not by emoji: a browser without an emoji font draws fallback glyphs.
    """
    outcome = page.locator('#modal [data-block-id^="starpod.modal.outcome:"]')
    await outcome.wait_for(timeout=20_000)
    return str(await outcome.get_attribute("data-block-id")).rsplit(":", 1)[-1]


async def drive_surfaces(browser: Any, demo: DemoProcess) -> list[str]:
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{demo.playground_url}/")

    # 1. Open the app's Home: the fleet, attention first, and the user's role.
    await page.locator("#home-link").click()
    rows = page.locator(HOME_ROWS)
    await rows.first.wait_for(timeout=15_000)
    assert await rows.count() == 4
    assert "You are an operator" in await page.locator("#home-view").inner_text()

    # 2. Restart pod-003 (not one of the demo story's two) from its row's ⋯ menu; the
    # announcement lands in #alerts.
    target = "pod-003"
    row = rows.filter(has_text=target)
    await row.locator(".overflow-toggle").click()
    await row.locator(".overflow-option", has_text="Restart").click()

    # 3. Create through the modal: a validation error first, shown under its input.
    await page.locator('.home-body button[data-action-id="starpod.home.create"]').click()
    await wait_modal(page, "starpod.modal.create")
    await field(page, "starpod.input.name").locator("input").fill("web-new")
    region = field(page, "starpod.input.region").locator("select")
    await region.select_option(index=1)
    await field(page, "starpod.input.region_typed").locator("input").fill("eu-north-9")
    await page.locator("#modal .modal-submit").click()
    error = field(page, "starpod.input.region_typed").locator(".input-error")
    await error.wait_for(timeout=15_000)
    assert "not both" in await error.inner_text()
    await field(page, "starpod.input.region_typed").locator("input").fill("")
    await page.locator("#modal .modal-submit").click()
    assert await wait_outcome(page) == "ok"
    await page.locator("#modal .modal-close").click()
    await page.locator("#modal-overlay").wait_for(state="hidden", timeout=10_000)

    # 4. Mute through the global shortcut, picking the instance by typing part of its name.
    await page.locator("#shortcuts-button").click()
    await page.locator('.shortcut-option[data-callback-id="starpod_act"]').click()
    await wait_modal(page, "starpod.modal.act")
    picker = field(page, "starpod.input.instance").locator(".external-input")
    await picker.fill("od-00")
    choice = page.locator("#modal .suggestion", has_text="pod-004")
    await choice.wait_for(timeout=15_000)
    assert await page.locator("#modal .suggestion").count() == 4
    await choice.click()
    await page.locator("#modal .modal-submit").click()
    await wait_modal(page, "starpod.modal.act_choice")
    await field(page, "starpod.input.verb").locator('input[value="mute"]').check()
    await page.locator("#modal .modal-submit").click()
    await wait_modal(page, "starpod.modal.mute")
    assert "pod-004" in await field(page, "starpod.input.instance").locator("input").input_value()
    await field(page, "starpod.input.duration").locator("select").select_option("1h")
    await page.locator("#modal .modal-submit").click()
    assert await wait_outcome(page) == "ok"
    await page.locator("#modal .modal-close").click()

    # The Home follows: the mute in force is listed (refreshed after the change).
    mutes = page.locator('.home-body [data-block-id="starpod.home.mutes"]', has_text="pod-004")
    await mutes.wait_for(timeout=20_000)
    # The restart and the creation were announced in #alerts, naming who asked.
    await page.locator('[data-channel-id="C0ALERTS"]').click()
    await page.wait_for_function(
        """() => { const t = document.querySelector('.messages').innerText;
                   return t.includes('pod-003') && t.includes('running again')
                          && t.includes('web-new'); }""",
        timeout=30_000,
    )
    await page.close()
    return errors


async def test_home_modals_shortcut_and_picker_in_the_browser(
    fast_demo: StartDemo, browser: Any
) -> None:
    demo = await fast_demo("--stall-after", "300")
    errors = await drive_surfaces(browser, demo)
    assert errors == []
    state = await demo.state()
    assert state["version"] > 0


async def test_the_same_surfaces_over_socket_mode(fast_demo: StartDemo, browser: Any) -> None:
    demo = await fast_demo("--stall-after", "300", "--socket-mode")
    assert await drive_surfaces(browser, demo) == []
