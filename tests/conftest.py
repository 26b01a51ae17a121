"""Fixtures shared by every test folder. Folder-specific ones live in tests/<area>/conftest.py."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator

import pytest

from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator


class FakeClock:
    """A clock tests advance by hand: ``clock()`` gives unix seconds."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def backend_sim() -> AsyncIterator[BackendSimulator]:
    """A running backend simulator on 127.0.0.1 whose transitions settle at once."""
    async with BackendSimulator(transition_secs=0) as sim:
        yield sim


@pytest.fixture
def postgres_url() -> str:
    """The PostgreSQL URL for tests, or a skip saying how to enable them."""
    url = os.environ.get("STARPOD_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("STARPOD_TEST_POSTGRES_URL is not set; PostgreSQL tests skipped")
    return url


@pytest.fixture
async def slack_emulator() -> AsyncIterator[SlackEmulator]:
    """A running Slack emulator on 127.0.0.1 (real clock; channels C0ALERTS, C0OPS, C0GENERAL).

    Point the bot at ``slack_emulator.api_url`` with ``slack_emulator.bot_token`` and sign
    nothing yourself: ``send_slash_command``/``send_block_action`` sign with
    ``slack_emulator.signing_secret``. Assert ``slack_emulator.violations() == []`` at the end.
    """
    async with SlackEmulator() as emulator:
        yield emulator


@pytest.fixture
def reliability_figures(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """A dict a reliability/fuzz/security test fills with what it measured.

    When ``STARPOD_RELIABILITY_OUT`` names a file, the figures are appended to it as one JSON
    line (``bench/reliability.py`` builds RELIABILITY.md from them); otherwise they are dropped.
    """
    figures: dict[str, object] = {}
    yield figures
    out = os.environ.get("STARPOD_RELIABILITY_OUT")
    if out and figures:
        line = json.dumps({"test": request.node.nodeid, **figures}, default=str)
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
