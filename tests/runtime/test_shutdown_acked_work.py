"""Shutdown finishes what was acknowledged, in both transports, and never invents a failure.

A restart acked over Socket Mode (or HTTP) just before ``stop()`` completes within the grace
period and its announcement says so; one that cannot finish in the grace is cut short and
its announcement says the outcome is unknown and how to check, never "failed".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from bot.config import Settings
from bot.runtime import Runtime
from bot.sim.backend import BackendSimulator
from bot.sim.slack import VIA_SOCKET, SlackEmulator

MakeSettings = Callable[..., Settings]
CHANNEL = "C0OPS"


@pytest.fixture(params=[1.5, 600.0], ids=["settles-in-grace", "never-settles"])
async def slow_backend(request: pytest.FixtureRequest) -> AsyncIterator[BackendSimulator]:
    async with BackendSimulator(transition_secs=request.param) as sim:
        yield sim


def _settings(
    make_settings: MakeSettings, slack: SlackEmulator, backend: BackendSimulator, transport: str
) -> Settings:
    env = {"STARPOD_INSTANCE_BACKEND_URL": backend.url}
    if transport == "socket":
        env |= {"SLACK_APP_TOKEN": slack.app_token, "SLACK_SIGNING_SECRET": ""}
    return make_settings(**env)


def _announcement(slack: SlackEmulator) -> str:
    [message] = [m for m in slack.messages(CHANNEL) if "pod-001" in m.text]
    return message.text


@pytest.mark.parametrize("transport", ["socket", "http"])
async def test_a_restart_acked_before_shutdown_ends_as_done_or_outcome_unknown(
    make_settings: MakeSettings,
    slack_emulator: SlackEmulator,
    slow_backend: BackendSimulator,
    transport: str,
) -> None:
    [instance_id] = slow_backend.seed_instances(1)
    settles = slow_backend.transition_secs < 10
    runtime = Runtime(
        _settings(make_settings, slack_emulator, slow_backend, transport),
        shutdown_grace_secs=10.0 if settles else 0.5,
    )
    await runtime.start()
    try:
        target = VIA_SOCKET if transport == "socket" else f"{runtime.url}/slack/events"
        reply = await slack_emulator.send_slash_command(
            target, "restart pod-001", channel_id=CHANNEL
        )
        assert reply.status_code == 200
        await slack_emulator.wait_for(
            lambda: any("Restarting pod-001" in m.text for m in slack_emulator.messages(CHANNEL)),
            10,
            what="the restart announced",
        )
    finally:
        await runtime.stop()
    assert slow_backend.calls[("restart", instance_id)] == 1
    text = _announcement(slack_emulator)
    assert "failed" not in text.lower()
    if settles:  # drained: the handler finished within the grace period
        assert text.startswith("pod-001") and "running again" in text, text
    else:  # cut short: unknown, and how to check
        assert "outcome unknown" in text and "/starpod health pod-001" in text, text
    assert slack_emulator.violations() == []
