"""``starpod-bot run`` as a real process in the tests: its environment, start, log and stop.

The process gets this one's environment without any setting of the bot's (a developer's
own ``SLACK_BOT_TOKEN`` must not leak into a test), then the test's settings. Its stderr
(the log) is collected line by line as it arrives; waiting for it to listen or to exit is
waiting on those signals, never a timer.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

# Every environment variable the bot reads starts so (bot/config.py), and PORT.
BOT_SETTINGS = ("STARPOD_", "SLACK_", "LOG_", "DATABASE_URL", "ANTHROPIC_")
LISTENING = "web server listening on "


def bot_environ(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without the bot's settings, then ``settings``."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(BOT_SETTINGS) and k != "PORT"
    }
    return inherited | settings


class BotProcess:
    """A running ``python -m bot run`` (or ``python *args``) whose log is collected."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.url: str | None = None
        self._listening = asyncio.Event()
        self._new_line = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, env: dict[str, str], cwd: Path, *args: str, stdout: int | None = None
    ) -> BotProcess:
        """Start ``python -m bot run`` (or ``python *args``) in ``cwd`` with ``env`` only."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *(args or ("-m", "bot", "run")),
            env=env,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL if stdout is None else stdout,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            self._new_line.set()
            if LISTENING in line and self.url is None:
                # Plain or JSON logs: the URL ends at a space or the closing quote.
                self.url = line.split(LISTENING, 1)[1].split(" ")[0].strip('",')
                self._listening.set()

    async def listening(self, within: float = 30.0) -> str:
        """The bot's URL once it logs that it listens (fails with its log if it exits first)."""
        waiter = asyncio.create_task(self._listening.wait())
        exited = asyncio.create_task(self.proc.wait())
        await asyncio.wait({waiter, exited}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        exited.cancel()
        assert self.url is not None, f"the bot did not start: {self.output()[-4000:]}"
        return self.url

    async def logged(self, text: str, within: float = 30.0) -> None:
        """Until a line of its log contains ``text`` (fails with its log if it exits first)."""
        try:
            async with asyncio.timeout(within):
                while not any(text in line for line in self.lines):
                    assert self.proc.returncode is None, f"exited: {self.output()[-4000:]}"
                    self._new_line.clear()
                    exited = asyncio.create_task(self.proc.wait())
                    arrived = asyncio.create_task(self._new_line.wait())
                    await asyncio.wait({exited, arrived}, return_when=asyncio.FIRST_COMPLETED)
                    exited.cancel()
                    arrived.cancel()
        except TimeoutError:
            raise AssertionError(f"never logged {text!r}: {self.output()[-4000:]}") from None

    async def finish(self, within: float = 10.0) -> int:
        """Its exit code once it exits on its own and its log is read."""
        try:
            async with asyncio.timeout(within):
                code = await self.proc.wait()
                await self._reader
        except TimeoutError:
            raise AssertionError(f"still running: {self.output()[-4000:]}") from None
        return code

    async def stop(self, within: float = 20.0) -> int:
        """SIGTERM (unless it exited or was killed); then :meth:`finish`."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.finish(within)

    def output(self) -> str:
        return "\n".join(self.lines)
