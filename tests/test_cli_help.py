"""Every ``starpod-bot`` command's --help reads cleanly, and --version works.

Issue 16: Typer printed required arguments as ``{ref}`` and every flag with a type
(``--help <bool>``); ``starpod-bot --version`` failed with "Missing command".
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from bot.cli import app


def _command_paths() -> list[tuple[str, ...]]:
    """Every group and command of the real app, found by walking it (new ones included)."""
    paths: list[tuple[str, ...]] = [()]

    def walk(command: object, path: tuple[str, ...]) -> None:
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                paths.append((*path, name))
                walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


PATHS = _command_paths()


def test_the_walk_finds_the_commands() -> None:
    assert {("instance", "pause"), ("instance", "kill"), ("db", "upgrade"), ("run",)} <= set(PATHS)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "starpod-bot")
def test_help_has_no_placeholders_or_flag_types(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Usage:" in text
    assert "{" not in text and "}" not in text, text
    assert "<bool>" not in text, text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    # An instance argument reads as the metavar ID, not as {ref}.
    if path in {("instance", verb) for verb in ("pause", "restart", "kill", "health", "logs")}:
        assert usage.rstrip().endswith("[OPTIONS] ID"), usage


def test_version_prints_the_installed_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"starpod-bot {version('starpod-bot')}\n"
