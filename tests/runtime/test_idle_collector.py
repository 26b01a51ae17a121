"""The real Runtime takes CPython's full collections over and gives them back on close."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

from bot.collector import NO_AUTOMATIC_FULL
from bot.config import Settings
from bot.runtime import Runtime
from bot.sim.backend import BackendSimulator

MakeSettings = Callable[..., Settings]


async def test_the_first_sweep_is_collected_and_frozen_and_the_schedule_given_back(
    make_settings: MakeSettings, backend_sim: BackendSimulator
) -> None:
    before = gc.get_threshold()
    backend_sim.seed_instances(5)
    async with Runtime(make_settings()) as runtime:
        parts = runtime.parts
        assert parts is not None
        collector = parts.collector
        assert collector.running
        assert gc.get_threshold() == (before[0], before[1], NO_AUTOMATIC_FULL)
        async with asyncio.timeout(10):
            # The first sweep runs at start; the collector serves it once it runs itself
            # (it starts last, and the sweep may have ended before). No other asks for a
            # collection in an hour-long interval.
            while collector.collections == 0:  # noqa: ASYNC110 - another thread's state
                await asyncio.sleep(0.01)
        assert collector.frozen is not None and collector.frozen > 0
        assert gc.get_freeze_count() > 0  # (frozen objects may still be freed)
        scrape = (await runtime.metrics.render()).decode()
        assert "starpod_gc_full_collection_seconds_total" in scrape
    assert not collector.running
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0  # thawed at close
