"""SIGKILL in the middle of outbox delivery, then start again: no lost alert, and at most
the documented duplicate.

A real bot process (``tests/alerts/outbox_worker.py``) sweeps once, which commits an
incident's root message and its restart reply to the outbox, and starts delivering.
Slack (the emulator) posts the root but holds its answer, so the process is killed with
SIGKILL after Slack did the work and before the bot heard of it: the duplicate window of
``bot/alerts/delivery.py``. A new delivery on the same SQLite file, once the dead
process's claim has expired, must deliver everything: the root at most twice (once from
each process), the reply exactly once, in the thread of the root it knows.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select

from bot.alerts.delivery import OutboxDelivery
from bot.alerts.service import AlertPolicy, AlertService
from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator
from bot.store.alert_models import AlertOutbox
from bot.store.database import Database
from tests.support.outbox_kill import ALERTS, killed_mid_delivery

if TYPE_CHECKING:
    from tests.conftest import FakeClock

pytestmark = pytest.mark.slow


async def _outbox_rows(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count(AlertOutbox.id))) or 0)


async def test_sigkill_mid_delivery_loses_nothing_and_duplicates_at_most_the_window(
    sqlite_store: Database,
    fake_clock: FakeClock,
    utc_clock: Callable[[], datetime],
    reliability_figures: dict[str, object],
) -> None:
    async with (
        BackendSimulator(clock=fake_clock, transition_secs=0) as sim,
        SlackEmulator(clock=fake_clock) as slack,
    ):
        async with killed_mid_delivery(sqlite_store, sim, slack, fake_clock) as proc:
            # Slack has posted the root; its answer is still on the way when the bot dies.
            assert await _outbox_rows(sqlite_store) == 2
        assert proc.returncode == -signal.SIGKILL

        # Start again, past the dead process's claim on the row.
        fake_clock.advance(120)
        web = AsyncWebClient(
            token=slack.bot_token, base_url=slack.api_url, timeout=5, retry_handlers=[]
        )
        delivery = OutboxDelivery(sqlite_store, web, clock=utc_clock, holder="restarted")
        AlertService(
            sqlite_store,
            policy=AlertPolicy(channel=ALERTS),
            delivery=delivery,
            clock=utc_clock,
            nudge=False,
        )
        for _ in range(3):
            await delivery.run_once()
        await delivery.aclose()

        roots = slack.messages(ALERTS)
        replies = [reply for root in roots for reply in slack.thread(ALERTS, root.ts)[1:]]
        reliability_figures.update(
            roots_posted=len(roots), replies_posted=len(replies), notifications_lost=0
        )
        # The root was posted by the dead process and again by the new one: exactly the
        # documented window (Slack answered, the bot died before it could record the ts).
        assert len(roots) == 2
        assert all("heartbeat stale" in root.text for root in roots)
        # The restart reply waited for a root the bot knows, then arrived exactly once.
        assert len(replies) == 1 and replies[0].text.startswith("🔁")
        assert replies[0] in slack.thread(ALERTS, roots[-1].ts)
        assert slack.violations() == []
