"""A leader killed mid-delivery: the next leader takes its claimed rows over at once.

A real bot process (``tests/alerts/outbox_worker.py``) sweeps once, committing an
incident's root and its restart reply, and starts delivering; Slack (the emulator) posts
the root but holds the answer, and the process is killed with SIGKILL while it still
holds its claim on the row (60 s). The next leader, two delivery intervals later on the
clock, must not wait for that claim: it sends the incident's rows on its first run.
"""

from __future__ import annotations

import signal
import time
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

INTERVAL_SECS = 1.0  # the delivery job's interval


async def _reply_committed(db: Database) -> bool:
    async with db.session() as session:
        found = await session.scalar(
            select(func.count(AlertOutbox.id)).where(AlertOutbox.kind == "reply")
        )
        return bool(found)


async def _claimed_rows(db: Database) -> int:
    async with db.session() as session:
        found = await session.scalar(
            select(func.count(AlertOutbox.id)).where(AlertOutbox.claimed_by == "doomed")
        )
        return int(found or 0)


async def test_a_leader_killed_mid_delivery_has_its_claims_taken_over_within_two_intervals(
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
            # Slack posted the root; the bot is waiting for the answer, claim in hand. The
            # worker delivers only after its sweep committed the restart's reply as well.
            assert await _reply_committed(sqlite_store)
            assert await _claimed_rows(sqlite_store) == 1
        killed_at = time.monotonic()
        assert proc.returncode == -signal.SIGKILL

        # Two intervals later (the dead claim has 58 s left), the new leader runs.
        fake_clock.advance(2 * INTERVAL_SECS)
        web = AsyncWebClient(
            token=slack.bot_token, base_url=slack.api_url, timeout=5, retry_handlers=[]
        )
        delivery = OutboxDelivery(
            sqlite_store, web, clock=utc_clock, holder="successor", is_leader=lambda: True
        )
        AlertService(
            sqlite_store,
            policy=AlertPolicy(channel=ALERTS),
            delivery=delivery,
            clock=utc_clock,
            nudge=False,
        )
        first = await delivery.run_once()
        taken_over_secs = time.monotonic() - killed_at
        await delivery.aclose()

        async with sqlite_store.session() as session:
            states = (await session.scalars(select(AlertOutbox.state))).all()
        roots = slack.messages(ALERTS)
        replies = [reply for root in roots for reply in slack.thread(ALERTS, root.ts)[1:]]
        reliability_figures.update(
            interval_secs=INTERVAL_SECS,
            claim_ttl_secs=60,
            clock_advanced_secs=2 * INTERVAL_SECS,
            rows_taken_over=first.sent,
            takeover_secs=round(taken_over_secs, 2),
            notifications_lost=0 if set(states) == {"sent"} else len(states),
        )
        assert set(states) == {"sent"}
        assert first.sent == len(states), "every row of the incident on the first run"
        # The root is the documented duplicate (Slack answered the dead process too late);
        # the reply arrives once, in the thread of the root the new leader knows.
        assert len(roots) == 2
        assert len(replies) == 1 and replies[0].text.startswith("🔁")
        assert slack.violations() == []
