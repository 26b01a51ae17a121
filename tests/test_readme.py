"""README.md stays true: its test command is what CI runs, and it documents every setting."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import SETTINGS_TABLE

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _commands() -> list[str]:
    blocks = re.findall(r"```\n(.*?)```", README, flags=re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.startswith("python3")]


def test_readme_gives_the_demo_and_the_test_command() -> None:
    commands = _commands()
    assert any(c.endswith("starpod-bot demo") for c in commands), commands
    assert any("pytest" in c for c in commands), commands


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = next(c for c in _commands() if "pytest" in c)
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_every_setting_is_documented() -> None:
    for spec in SETTINGS_TABLE:
        if spec.env:
            assert f"`{spec.env}`" in README, spec.env


def test_the_socket_mode_steps_quote_what_the_bot_says() -> None:
    from bot.runtime import SOCKET_CHECK

    section = README.split("### Socket Mode, step by step", 1)[1].split("\n## ", 1)[0]
    assert f'"{SOCKET_CHECK}": "Socket Mode is not connected"' in " ".join(section.split())
    assert "cannot start: Slack refused SLACK_APP_TOKEN" in section
    assert "Socket Mode connected" in section
    assert "starpod-bot demo --socket-mode" in section
