"""A Python worker process (a monitor replica, a bot) that reports in JSON lines.

The SIGKILL and leadership tests start real processes that print one JSON object per line
(``{"sweep": ...}``, ``{"standby": true}``). :class:`JsonLinesWorker` collects the lines as
they arrive and lets a test wait for a condition on them: each new line (or the process
ending) is the signal to look again, so nothing polls on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self


class JsonLinesWorker:
    """A running Python script whose stdout JSON lines are collected as they arrive."""

    WITHIN = 20.0
    """How long :meth:`wait_for` waits unless told otherwise (seconds)."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str = "worker") -> None:
        self.name = name
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.arrived: list[float] = []
        """``time.monotonic()`` at which each line arrived."""
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, script: Path, *args: str, name: str | None = None) -> Self:
        """Run ``python script *args`` with this interpreter, reading its stdout."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(script), *args, stdout=asyncio.subprocess.PIPE
        )
        return cls(proc, name or script.stem)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            async for raw in self.proc.stdout:
                self.lines.append(json.loads(raw))
                self.arrived.append(time.monotonic())
                self._changed.set()
        finally:
            # The end of its output is news too: a waiter must stop waiting.
            self._changed.set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def wait_for(self, check: Callable[[], bool], within: float | None = None) -> None:
        """Wait until ``check()`` (a condition on :attr:`lines`) holds, looking again after
        each line; fail when the worker exits first or ``within`` seconds pass."""
        within = self.WITHIN if within is None else within
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not check():
            if self._reader.done():
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}): {self.lines}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{self.name} did not get there in {within} s: {self.lines}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def kill(self) -> float:
        """SIGKILL (no clean-up of any kind) and wait for the end; returns when it was sent."""
        at = time.time()
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        return at
