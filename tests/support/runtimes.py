"""Helpers for tests that run the bot's Runtime (or its built parts) in this process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from bot.wiring import Parts


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (set by another task of this loop) for at most 10 s."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - state of another component, no event to await
            await asyncio.sleep(0.01)
    assert condition(), what


async def first_sweep(runtime: Runtime) -> None:
    """Until ``runtime``'s monitor has completed a sweep."""
    monitor = runtime.monitor
    assert monitor is not None
    await until(lambda: monitor.status().last_sweep_at is not None, "first sweep")


def metric(text: str, sample: str) -> float:
    """The value of ``sample`` (a name with its labels) in a Prometheus text page."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {sample!r} in:\n{text}")


async def close_parts(parts: Parts) -> None:
    """Close what ``bot.wiring.build`` opened (pools, sessions) without a runtime."""
    await parts.slack_session.close()
    await parts.client.aclose()
    await parts.db.dispose()
    if parts.sweep is not None:
        await parts.sweep.client.aclose()
        await parts.sweep.db.dispose()
