"""Fixtures for the demo and the playground: a running playground, a headless Chromium."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
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


# Short intervals: the simulator's heartbeat ticks every 5 s, so a 7 s timeout keeps healthy
# instances fresh while the stalled one is caught a few seconds after it stops.
FAST_DEMO_ARGS = [
    "--port",
    "0",
    "--bot-port",
    "0",
    "--instances",
    "4",
    "--stall-after",
    "3",
    "--monitor-interval",
    "1",
    "--heartbeat-timeout",
    "7",
    "--transition-secs",
    "0.5",
    "--bot-log-level",
    "INFO",
]


class DemoProcess:
    """``starpod-bot demo`` in a subprocess; its output is kept, its URLs read from the banner."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.args = args
        self.cwd = cwd
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self.playground_url = ""
        self.bot_url = ""
        self.backend_url = ""
        self._reader: asyncio.Task[None] | None = None
        self._banner = asyncio.Event()

    async def start(self, timeout: float = 60.0) -> DemoProcess:  # noqa: ASYNC109
        """Start it and wait for the banner (the bot answers /healthz by then)."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "demo",
            *self.args,
            cwd=str(self.cwd),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = asyncio.create_task(self._read())
        banner = asyncio.create_task(self._banner.wait())
        exited = asyncio.create_task(self.process.wait())
        done, _ = await asyncio.wait(
            {banner, exited}, timeout=timeout, return_when="FIRST_COMPLETED"
        )
        banner.cancel()
        exited.cancel()
        if banner not in done:
            await self.stop()
            raise AssertionError("the demo never printed its banner:\n" + self.output())
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip()
            self.lines.append(line)
            if match := re.search(r"Playground:\s+(http://\S+?)/?$", line):
                self.playground_url = match.group(1)
            if match := re.search(r"Bot \((?:HTTP mode|Socket Mode)\):\s+(http://[^/\s]+)", line):
                self.bot_url = match.group(1)
            if match := re.search(r"Backend simulator:\s+(http://\S+)", line):
                self.backend_url = match.group(1)
            # The banner is read once its backend line is (the story's line, naming the
            # instances that will go stale, comes before it): tests read it as soon as
            # start() returns.
            if self.playground_url and self.bot_url and self.backend_url:
                self._banner.set()

    def output(self) -> str:
        return "\n".join(self.lines[-80:])

    @property
    def healing_name(self) -> str:
        """The instance the banner says stalls and is healed by the bot's restart."""
        return self._banner_match(r"(\S+) stops its heartbeat and the bot heals it")

    @property
    def wedged_name(self) -> str:
        """The instance the banner says outlasts the bot's restarts (on-call is paged)."""
        return self._banner_match(r"(\S+) wedges: it outlasts the bot's \d+ restarts")

    def _banner_match(self, pattern: str) -> str:
        # All lines, not output()'s last 80: the bot may have logged many since the banner.
        match = re.search(pattern, "\n".join(self.lines))
        assert match, self.output()
        return match.group(1)

    @property
    def bot_pid(self) -> int:
        """The bot's process id, from the banner."""
        match = re.search(r"\(pid (\d+);", "\n".join(self.lines))
        assert match, self.output()
        return int(match.group(1))

    async def state(self, user: str = "U0OPERATOR") -> dict[str, Any]:
        """The playground's JSON state."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.playground_url}/playground/state", params={"user": user}) as answer,
        ):
            return await answer.json()

    async def act(
        self, message_ts: str, block_id: str, element: dict[str, Any], *, user: str
    ) -> None:
        """Click a button of a message through the playground, as the page does."""
        body = {
            "message_ts": message_ts,
            "block_id": block_id,
            "action_id": element["action_id"],
            "value": element.get("value"),
            "user": user,
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.playground_url}/playground/action", json=body) as answer,
        ):
            assert answer.status == 200, await answer.text()

    async def wait_exit(self, timeout: float) -> int:  # noqa: ASYNC109
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), timeout=timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout=5)
        return code

    async def stop(self) -> None:
        """Ctrl-C, as a person would; kill only if it does not stop in time."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            await self.wait_exit(timeout=20)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def fast_demo(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[DemoProcess]]]:
    """Start ``starpod-bot demo`` with short intervals (extra args appended); stopped after."""
    started: list[DemoProcess] = []

    async def start(*extra: str) -> DemoProcess:
        demo = DemoProcess([*FAST_DEMO_ARGS, *extra], tmp_path)
        started.append(demo)
        return await demo.start()

    yield start
    for demo in started:
        await demo.stop()


def alert_messages(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The alert channel's top-level messages in a playground state."""
    channel = next(c for c in state["channels"] if c["id"] == "C0ALERTS")
    return channel["messages"]
