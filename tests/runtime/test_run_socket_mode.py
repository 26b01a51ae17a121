"""``starpod-bot run`` in Socket Mode as a real process: refused token, unreachable socket, SIGTERM.

Signals matter here, so the bot is a subprocess (helpers of ``test_run_command``), pointed at
the Slack emulator's socket with ``SLACK_APP_TOKEN`` and no signing secret.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from bot.sim.backend import BackendSimulator
from bot.sim.process import free_port
from bot.sim.slack import VIA_SOCKET, SlackEmulator
from tests.runtime.test_run_command import START_WITHIN_SECS, _env
from tests.support.bot_process import BotProcess

pytestmark = pytest.mark.slow

GRACE_SECS = 10.0  # the runtime's default shutdown grace


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def _socket_env(
    tmp_path: Path, backend: BackendSimulator, slack: SlackEmulator, token: str
) -> dict[str, str]:
    return _env(tmp_path, backend, slack, SLACK_APP_TOKEN=token, SLACK_SIGNING_SECRET="")


async def _readyz_503(url: str) -> httpx.Response:
    async with asyncio.timeout(START_WITHIN_SECS), httpx.AsyncClient(base_url=url) as http:
        while (answer := await http.get("/readyz")).status_code != 503:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return answer


@pytest.mark.parametrize("refusal", ["invalid_auth", "not_allowed_token_type"])
async def test_a_refused_app_token_exits_2_with_one_line_naming_it(
    tmp_path: Path,
    workdir: Path,
    backend_sim: BackendSimulator,
    slack_emulator: SlackEmulator,
    refusal: str,
) -> None:
    # Another app's token, or the bot token where the app token belongs.
    token = "xapp-1-A0-not-this-app" if refusal == "invalid_auth" else slack_emulator.bot_token
    bot = await BotProcess.start(_socket_env(tmp_path, backend_sim, slack_emulator, token), workdir)
    code = await bot.finish(START_WITHIN_SECS)
    assert code == 2, bot.output()
    errors = [line for line in bot.lines if " ERROR " in line]
    assert len(errors) == 1, bot.output()
    assert "cannot start: Slack refused SLACK_APP_TOKEN" in errors[0]
    assert refusal in errors[0]
    assert "Traceback" not in bot.output()
    assert slack_emulator.messages("C0ALERTS") == []


@pytest.mark.parametrize("when", ["at-start", "after-connecting"])
async def test_sigterm_while_the_socket_is_unreachable_exits_within_the_grace(
    tmp_path: Path,
    workdir: Path,
    backend_sim: BackendSimulator,
    slack_emulator: SlackEmulator,
    when: str,
) -> None:
    unreachable = f"ws://127.0.0.1:{free_port()}"
    if when == "at-start":
        slack_emulator.socket_mode.point_links_at(unreachable)
    env = _socket_env(tmp_path, backend_sim, slack_emulator, slack_emulator.app_token)
    bot = await BotProcess.start(env, workdir)
    try:
        url = await bot.listening(START_WITHIN_SECS)
        if when == "after-connecting":  # the SDK's own reconnection is what retries now
            await slack_emulator.wait_for_socket(timeout=START_WITHIN_SECS)
            slack_emulator.socket_mode.point_links_at(unreachable)
            slack_emulator.socket_mode.drop()
        down = await _readyz_503(url)
        await slack_emulator.wait_for(
            lambda: slack_emulator.socket_mode.opens >= 2, START_WITHIN_SECS, what="a retry"
        )
    finally:
        sent = time.monotonic()
        code = await bot.stop(GRACE_SECS + 5)
    took = time.monotonic() - sent
    assert code == 0, bot.output()
    assert took < GRACE_SECS, f"stopped {took:.1f} s after SIGTERM"
    assert down.json()["checks"]["slack socket"] == "Socket Mode is not connected"
    assert "Traceback" not in bot.output()
    if when == "at-start":
        # One warning line per attempt, naming why and when the next one comes.
        tries = [line for line in bot.lines if "Socket Mode is not connected (" in line]
        assert tries and all("next attempt in" in line for line in tries), bot.output()
        assert not any("Failed to connect" in line for line in bot.lines), bot.output()


async def test_run_in_socket_mode_answers_and_stops_on_sigterm(
    tmp_path: Path,
    workdir: Path,
    backend_sim: BackendSimulator,
    slack_emulator: SlackEmulator,
) -> None:
    backend_sim.seed_instances(2)
    env = _socket_env(tmp_path, backend_sim, slack_emulator, slack_emulator.app_token)
    bot: BotProcess = await BotProcess.start(env, workdir)
    try:
        url = await bot.listening(START_WITHIN_SECS)
        await slack_emulator.wait_for_socket(timeout=START_WITHIN_SECS)
        await slack_emulator.send_slash_command(VIA_SOCKET, "list", channel_id="C0OPS")
        await slack_emulator.wait_for(
            lambda: bool(slack_emulator.ephemerals("U0OPERATOR")), 10, what="the list"
        )
        async with httpx.AsyncClient(base_url=url) as http:
            async with asyncio.timeout(START_WITHIN_SECS):
                while (ready := await http.get("/readyz")).status_code != 200:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
    finally:
        code = await bot.stop(GRACE_SECS + 5)
    assert code == 0, bot.output()
    assert ready.json()["checks"]["slack socket"] == "ok"
    assert slack_emulator.socket_mode.open_connections == []
    assert slack_emulator.violations() == []
