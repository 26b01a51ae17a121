"""Fixtures for the security tests: the whole bot on loopback, with roles, keys and secrets.

The bot is the same assembly the chaos tests use (``tests/reliability/conftest.py``, loaded
here by path: test folders cannot import each other): the real Slack app and web server, the
monitor, alerts and delivery, the gateway, against the backend simulator (which demands a
bearer key) and the Slack emulator, on a migrated SQLite file.

Users: U0ADMIN (admin), U0OPERATOR (operator through the group S0OPS), U0VIEWER (viewer),
U0NOBODY (no role). Gateway keys: one per role.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator
from bot.store.database import Database
from tests.support.databases import migrated, sqlite_url

if TYPE_CHECKING:
    from tests.conftest import FakeClock

BACKEND_API_KEY = "sk-backend-secret-key-1b2c3d4e5f"
GATEWAY_KEYS = {
    "viewer": "gw-viewer-secret-11111111",
    "operator": "gw-operator-secret-22222222",
    "admin": "gw-admin-secret-33333333",
}


def _harness() -> ModuleType:
    name = "starpod_reliability_harness"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).parents[1] / "reliability" / "conftest.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def sim(fake_clock: FakeClock) -> AsyncIterator[BackendSimulator]:
    """A simulator on the fake clock that demands the backend API key."""
    async with BackendSimulator(
        clock=fake_clock, seed=13, transition_secs=0, api_key=BACKEND_API_KEY
    ) as s:
        yield s


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated(sqlite_url(tmp_path / "security.db")) as database:
        yield database


@pytest.fixture
async def bot(
    sim: BackendSimulator, slack_emulator: SlackEmulator, db: Database, fake_clock: FakeClock
) -> AsyncIterator[Any]:
    """The running bot with roles, the gateway and a backend key; 6 instances seeded."""
    sim.seed_instances(6)
    async with _harness().running_bot(
        sim,
        slack_emulator,
        db,
        fake_clock,
        access=True,
        backend_timeout=5.0,
        api_key=BACKEND_API_KEY,
        gateway_keys=GATEWAY_KEYS,
    ) as running:
        yield running


@pytest.fixture
async def open_bot(
    sim: BackendSimulator, slack_emulator: SlackEmulator, db: Database, fake_clock: FakeClock
) -> AsyncIterator[Any]:
    """The running bot with no access configuration: every user may kill."""
    sim.seed_instances(6)
    async with _harness().running_bot(
        sim,
        slack_emulator,
        db,
        fake_clock,
        access=False,
        backend_timeout=5.0,
        api_key=BACKEND_API_KEY,
    ) as running:
        yield running


@pytest.fixture
def start_replica(
    sim: BackendSimulator, slack_emulator: SlackEmulator, fake_clock: FakeClock
) -> Any:
    """``async with start_replica(db) as bot:`` one more replica on ``db`` (same sim, Slack)."""

    def start(db: Database) -> Any:
        return _harness().running_bot(
            sim,
            slack_emulator,
            db,
            fake_clock,
            access=True,
            backend_timeout=5.0,
            api_key=BACKEND_API_KEY,
        )

    return start
