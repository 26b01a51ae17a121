"""Fixtures for the runtime tests: settings pointing a real Runtime at the simulators.

The backend simulator and the Slack emulator run on 127.0.0.1, the database is a SQLite file
in ``tmp_path``, the web server binds port 0. The sweep interval is an hour: the first sweep
runs at start, and no test waits for a second one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator

GATEWAY_KEYS = (
    "ci:viewer:viewer-gateway-key,ops:operator:operator-gateway-key,boss:admin:admin-gateway-key"
)


def runtime_env(
    tmp_path: Path, backend: BackendSimulator, slack: SlackEmulator, **overrides: str
) -> dict[str, str]:
    """The environment of a bot pointed at these simulators (``overrides`` win)."""
    env = {
        "STARPOD_INSTANCE_BACKEND_URL": backend.url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "PORT": "0",
        "STARPOD_HTTP_HOST": "127.0.0.1",
        "STARPOD_ALERT_CHANNEL": "C0ALERTS",
        "STARPOD_MONITOR_INTERVAL": "3600",
        "STARPOD_GATEWAY_KEYS": GATEWAY_KEYS,
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


@pytest.fixture
def make_settings(
    tmp_path: Path, backend_sim: BackendSimulator, slack_emulator: SlackEmulator
) -> Callable[..., Settings]:
    """``make_settings(**env_overrides)`` → Settings read the way ``starpod-bot run`` reads them."""

    def make(**overrides: str) -> Settings:
        # config_file points nowhere real on purpose: only the env counts here.
        empty = tmp_path / "empty.toml"
        empty.write_text("")
        return load_settings(
            runtime_env(tmp_path, backend_sim, slack_emulator, **overrides), config_file=empty
        )

    return make
