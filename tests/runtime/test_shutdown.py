"""Stopping a real Runtime: reverse order of opening, listener work drained, signals kept."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable

import pytest

from bot.config import Settings
from bot.runtime import Runtime, SlackTokenRejected
from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator

MakeSettings = Callable[..., Settings]

OPENED_ORDER = [
    "database",
    "backend client",
    "Slack HTTP session",
    "heap trim",
    "sweep thread",
    "leadership",
    "alert delivery",
    "scheduled jobs",
    "App Home refreshes",
    "Slack listeners",
    "web server",
    "frozen start-up heap",
    "garbage collector",
]


def _closed(caplog: pytest.LogCaptureFixture) -> list[str]:
    prefix = "closed the "
    return [
        r.getMessage().removeprefix(prefix)
        for r in caplog.records
        if r.name == "bot.runtime" and r.getMessage().startswith(prefix)
    ]


async def test_stop_closes_in_reverse_order_of_opening(
    make_settings: MakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.runtime")
    async with Runtime(make_settings()):
        pass
    assert _closed(caplog) == list(reversed(OPENED_ORDER))


async def test_a_failed_start_closes_only_what_it_opened(
    make_settings: MakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.runtime")
    with pytest.raises(SlackTokenRejected):
        await Runtime(make_settings(SLACK_BOT_TOKEN="xoxb-not-the-right-one")).start()
    assert _closed(caplog) == ["Slack HTTP session", "backend client", "database"]


async def test_stop_lets_a_slash_command_still_running_finish(
    make_settings: MakeSettings, backend_sim: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    [instance_id] = backend_sim.seed_instances(1)
    name = backend_sim.instance(instance_id)["name"]
    runtime = Runtime(make_settings())
    await runtime.start()
    monitor = runtime.monitor
    assert monitor is not None
    try:
        async with asyncio.timeout(10):
            while monitor.status().last_sweep_at is None:  # noqa: ASYNC110 - another task's state
                await asyncio.sleep(0.01)
        lists_before = backend_sim.calls[("list", "")]
        # The command's backend call is slow: it is still running when the bot is told to stop.
        backend_sim.set_faults(latency_secs=1.0, endpoints=["list"])
        reply = await slack_emulator.send_slash_command(f"{runtime.url}/slack/events", "list")
        assert reply.status_code == 200  # acknowledged at once
        await slack_emulator.wait_for(
            lambda: backend_sim.calls[("list", "")] > lists_before, what="the command's list call"
        )
        assert slack_emulator.responses == []
    finally:
        await runtime.stop()
    # Stopping waited for it: the user got the list, and the command was counted.
    [answer] = slack_emulator.responses
    assert answer.ok and name in str(answer.body)
    metrics = (await runtime.metrics.render()).decode()
    assert 'starpod_commands_total{result="ok",source="slash",subcommand="list"} 1.0' in metrics


async def test_the_runtime_keeps_its_signal_handlers_while_serving(
    make_settings: MakeSettings,
) -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    async with Runtime(make_settings()):
        # uvicorn would capture both while serving; the bot's own handlers stay in charge.
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


async def test_stop_ends_the_sweep_thread_even_mid_sweep(
    make_settings: MakeSettings, backend_sim: BackendSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.runtime")
    backend_sim.seed_instances(3)
    # Every health call hangs: the first sweep is still fetching when the bot is stopped.
    backend_sim.set_faults(latency_secs=60.0, endpoints=["health"])
    runtime = Runtime(make_settings(), shutdown_grace_secs=1.0)
    await runtime.start()
    parts = runtime.parts
    assert parts is not None and parts.sweep is not None
    try:
        assert parts.sweep.loop.running
        assert "starpod-sweep" in {t.name for t in threading.enumerate()}
        await backend_sim_wait(backend_sim, "health")
        assert parts.monitor.sweeping
    finally:
        async with asyncio.timeout(15):
            await runtime.stop()
    assert not parts.sweep.loop.running and not parts.monitor.sweeping
    assert "sweep thread" in _closed(caplog)


async def backend_sim_wait(sim: BackendSimulator, endpoint: str) -> None:
    """Until the simulator has received a call of ``endpoint``."""
    async with asyncio.timeout(10):
        while not any(n for (kind, _), n in sim.calls.items() if kind == endpoint):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
