"""Fixtures for the demo and the playground: a running playground, a headless Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.sim.playground import Playground
from bot.sim.slack import SlackEmulator

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A port nothing listens on: the playground's clicks to "the bot" fail fast and visibly.
UNREACHABLE_BOT = "http://127.0.0.1:9/slack/events"


def chromium_path() -> str:
    """Debian's chromium; CI installs it (.ci/run), so there a missing browser is a failure."""
    found = os.environ.get("STARPOD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).is_file():
        message = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run should have installed it")
        pytest.skip(message)
    return found


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium driven by Playwright (never `playwright install`: Debian's build)."""
    executable = chromium_path()
    async_api = pytest.importorskip("playwright.async_api")
    async with async_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def playground() -> AsyncIterator[tuple[SlackEmulator, Playground]]:
    """A Slack emulator serving the playground on 127.0.0.1, its bot URL unreachable."""
    emulator = SlackEmulator()
    mounted = Playground(emulator=emulator, bot_url=UNREACHABLE_BOT)
    await emulator.start(extend=mounted.mount)
    try:
        yield emulator, mounted
    finally:
        await emulator.stop()
