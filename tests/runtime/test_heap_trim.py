"""The real Runtime limits glibc's arenas at start and trims the heap after each sweep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.config import Settings
from bot.heap import glibc
from bot.runtime import Runtime
from bot.sim.backend import BackendSimulator

MakeSettings = Callable[..., Settings]


async def test_arenas_are_limited_at_start_and_the_heap_trimmed_after_the_first_sweep(
    make_settings: MakeSettings, backend_sim: BackendSimulator
) -> None:
    backend_sim.seed_instances(5)
    async with Runtime(make_settings()) as runtime:
        assert runtime.arenas_limited is (glibc() is not None)
        parts, monitor = runtime.parts, runtime.monitor
        assert parts is not None and monitor is not None
        assert parts.sweep is not None  # a SQLite file: the sweep has its own thread
        async with asyncio.timeout(10):
            # The first sweep runs at start; its observers (the trimmer among them) are
            # called in the same step that records it as the last sweep.
            while monitor.status().last_sweep_at is None:  # noqa: ASYNC110 - another task's state
                await asyncio.sleep(0.01)
        await parts.trimmer.wait()
        assert parts.trimmer.trims == 1
