"""SIGKILL while PagerDuty holds its answer to a trigger, then start again: nothing lost,
and the duplicate folds into the same alert.

A real bot process (``tests/alerts/outbox_worker.py --pagerduty …``) sweeps once, which
commits an incident's PagerDuty trigger to the outbox, and sends it. The fake Events API
(``bot/sim/pagerduty.py``) processes the event but holds its answer, so the process is
killed after PagerDuty did the work and before the bot heard of it: the outbox's
duplicate window. A new delivery on the same SQLite file, once the dead process's claim
has expired, sends the trigger again; PagerDuty folds both into one alert (one
``dedup_key``), which is why every event of an incident carries the same key.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.alerts.delivery import OutboxDelivery
from bot.alerts.pagerduty import PagerDutySender, dedup_key
from bot.alerts.paging import PAGERDUTY
from bot.sim.backend import BackendSimulator
from bot.sim.pagerduty import PagerDutySimulator
from bot.sim.slack import SlackEmulator
from bot.store.alert_models import AlertIncident, AlertOutbox
from bot.store.database import Database

if TYPE_CHECKING:
    from tests.conftest import FakeClock

pytestmark = pytest.mark.slow

WORKER = Path(__file__).parent.parent / "alerts" / "outbox_worker.py"


async def test_sigkill_while_pagerduty_holds_the_answer_loses_nothing_and_pages_one_alert(
    sqlite_store: Database,
    fake_clock: FakeClock,
    utc_clock: Callable[[], datetime],
    reliability_figures: dict[str, object],
) -> None:
    async with (
        BackendSimulator(clock=fake_clock, transition_secs=0) as sim,
        SlackEmulator(clock=fake_clock) as slack,
        PagerDutySimulator() as pagerduty,
    ):
        victim = sim.seed_instances(1)[0]
        sim.stop_heartbeat(victim, sticky=True)
        fake_clock.advance(100)
        pagerduty.hold_answers()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            "--db", sqlite_store.url,
            "--backend", sim.url,
            "--slack", slack.api_url,
            "--token", slack.bot_token,
            "--now", str(fake_clock()),
            "--pagerduty", pagerduty.url,
            "--routing-key", pagerduty.routing_key,
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            async with asyncio.timeout(60):
                await pagerduty.wait_for(1)  # processed; the answer is held
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            pagerduty.release_answers()
        assert proc.returncode == -signal.SIGKILL
        async with sqlite_store.session() as session:
            [row] = list(await session.scalars(select(AlertOutbox)))
        assert (row.destination, row.state, row.claimed_by) == (PAGERDUTY, "pending", "doomed")

        # Start again, past the dead process's claim on the row.
        fake_clock.advance(120)
        web = AsyncWebClient(
            token=slack.bot_token, base_url=slack.api_url, timeout=5, retry_handlers=[]
        )
        async with httpx.AsyncClient(timeout=5) as http:
            sender = PagerDutySender(http, routing_key=pagerduty.routing_key, url=pagerduty.url)
            delivery = OutboxDelivery(
                sqlite_store, web, clock=utc_clock, holder="restarted", senders={PAGERDUTY: sender}
            )
            for _ in range(3):
                await delivery.run_once()
            await delivery.aclose()
        async with sqlite_store.session() as session:
            [row] = list(await session.scalars(select(AlertOutbox)))
            [incident] = list(await session.scalars(select(AlertIncident)))

    actions = [e["event_action"] for e in pagerduty.events]
    keys = {e["dedup_key"] for e in pagerduty.events}
    reliability_figures.update(
        triggers_sent=actions.count("trigger"),
        alerts_in_pagerduty=len(keys),
        events_lost=0,
    )
    assert row.state == "sent" and row.claimed_by is None
    # Sent by the dead process (processed, answer never heard) and again by the new one:
    # exactly the documented window, folded by PagerDuty into the incident's one alert.
    assert actions == ["trigger", "trigger"]
    assert keys == {dedup_key(incident.id)}
    assert pagerduty.alert_state(dedup_key(incident.id)) == "triggered"
