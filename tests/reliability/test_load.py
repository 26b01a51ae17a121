"""Load: users send commands while the monitor sweeps a large fleet, in the same process.

Full size (``STARPOD_LONG_TESTS=1``): 50 users for 60 s while the monitor sweeps 10,000
instances back to back. CI: 10 users for 8 s over 1,000 instances. Every command must be
acknowledged within Slack's 3 s (the emulator raises ``SlackAckTimeout`` otherwise), every
one must get an answer that is not an error, and the process's memory must stay flat across
sweep cycles (RSS after each sweep is reported).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackAckTimeout, SlackEmulator
from bot.store.database import Database

if TYPE_CHECKING:
    from tests.conftest import FakeClock

pytestmark = pytest.mark.slow

LONG = os.environ.get("STARPOD_LONG_TESTS") == "1"
USERS = 50 if LONG else 10
SECONDS = 60.0 if LONG else 8.0
FLEET = 10_000 if LONG else 1_000
# Sweep cycles the memory check compares (the first ones warm the caches up).
MIN_SWEEPS = 3


async def test_users_and_a_large_sweep_share_the_process(
    sim: BackendSimulator,
    slack_emulator: SlackEmulator,
    fake_clock: FakeClock,
    sqlite_store: Database,
    start_bot: Callable[..., Any],
    reliability_figures: dict[str, object],
) -> None:
    sim.seed_instances(FLEET)
    sim.inline_health = False  # one health call per running instance: the heavy path
    process = psutil.Process()
    rss_mb: list[float] = []
    acks: list[float] = []
    late: list[str] = []
    sent = 0
    async with start_bot(sim, sqlite_store, backend_timeout=10.0, access=False) as bot:
        stop = asyncio.Event()
        swept_enough = asyncio.Event()

        async def sweeper() -> None:
            while not stop.is_set():
                await bot.sweep()
                rss_mb.append(process.memory_info().rss / 2**20)
                if len(rss_mb) >= MIN_SWEEPS:
                    swept_enough.set()
                fake_clock.advance(30)

        async def user(number: int) -> None:
            nonlocal sent
            uid = f"U0LOAD{number:03d}"
            texts = ["list", f"health pod-{number % 50 + 1:03d}", "status", "history pod-001"]
            turn = 0
            mine = 0
            while not stop.is_set():
                text = texts[turn % len(texts)]
                turn += 1
                started = time.monotonic()
                try:
                    reply = await slack_emulator.send_slash_command(
                        bot.events_url, text, user_id=uid
                    )
                except SlackAckTimeout:
                    late.append(text)
                    continue
                acks.append(time.monotonic() - started)
                assert reply.status_code == 200
                sent += 1
                mine += 1
                # A person reads the answer before typing the next command.
                await slack_emulator.wait_for(
                    lambda n=mine: len(slack_emulator.ephemerals(uid)) >= n, 60, what="the answer"
                )
                await asyncio.sleep(0.05)

        sweeping = asyncio.create_task(sweeper())
        users = [asyncio.create_task(user(n)) for n in range(USERS)]
        await asyncio.sleep(SECONDS)
        # The load lasts SECONDS and at least MIN_SWEEPS sweep cycles: how many cycles fit
        # in SECONDS depends on the machine (two on a loaded one), the memory check needs 3.
        await asyncio.wait_for(swept_enough.wait(), 60)
        stop.set()
        await asyncio.gather(*users)
        await sweeping
        # Every command answered (answers go through response_url after the ack).
        await slack_emulator.wait_for(
            lambda: len(slack_emulator.ephemerals()) >= sent, 30, what="every answer"
        )
        answers = [bot.visible(m) for m in slack_emulator.ephemerals()]
        violations = slack_emulator.violations()

    errors = [a for a in answers if bot.UNEXPECTED in a or a.startswith(("❌", "🔒"))]
    assert late == [], f"{len(late)} commands were not acknowledged within 3 s"
    assert errors == [], errors[:3]
    assert violations == []
    assert len(rss_mb) >= MIN_SWEEPS, rss_mb
    # Flat: after the first cycles warmed caches up, later cycles do not keep growing.
    assert rss_mb[-1] <= rss_mb[1] * 1.25 + 30, rss_mb
    acks.sort()
    reliability_figures.update(
        users=USERS,
        seconds=SECONDS,
        instances=FLEET,
        commands=sent,
        ack_p50_ms=round(acks[len(acks) // 2] * 1000, 1),
        ack_max_ms=round(acks[-1] * 1000, 1),
        acks_over_3s=len(late),
        error_answers=len(errors),
        sweeps=len(rss_mb),
        rss_mb_per_sweep=[round(x) for x in rss_mb],
    )
