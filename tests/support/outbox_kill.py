"""A bot killed in the middle of outbox delivery, for the SIGKILL tests of the alerts.

A real bot process (``tests/alerts/outbox_worker.py``) sweeps once, which commits an
incident's root message and its restart reply to the outbox, and only then delivers (so
Slack's post of the root is the signal that both rows are in). Slack (the emulator) posts
the root but holds its answer; on leaving the block the process gets SIGKILL while it still
holds its claim on the root: the duplicate window of ``bot/alerts/delivery.py``.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator
from bot.store.database import Database

if TYPE_CHECKING:
    from tests.conftest import FakeClock

WORKER = Path(__file__).parent.parent / "alerts" / "outbox_worker.py"
ALERTS = "C0ALERTS"


@asynccontextmanager
async def killed_mid_delivery(
    db: Database, sim: BackendSimulator, slack: SlackEmulator, clock: FakeClock
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Yield the worker once Slack posted the root (answer held); SIGKILL it on exit."""
    victim = sim.seed_instances(1)[0]
    sim.stop_heartbeat(victim, sticky=True)
    clock.advance(100)
    slack.hold_answers({"chat.postMessage"})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        "--db", db.url,
        "--backend", sim.url,
        "--slack", slack.api_url,
        "--token", slack.bot_token,
        "--now", str(clock()),
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await slack.wait_for(lambda: len(slack.messages(ALERTS)) == 1, timeout=60)
        yield proc
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        # Even when an assertion failed: a held answer would hold the emulator's exit.
        slack.release_answers()
