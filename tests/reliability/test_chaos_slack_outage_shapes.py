"""Chaos: Slack is down for minutes, in each shape a real outage takes, while incidents
open, restart, escalate and recover; once it is back every message arrives, in order.

The whole bot runs (monitor, alerts, outbox delivery, on a fake clock). For twelve sweeps
every Web API call gets the same broken answer: an HTML error page (500, 502), the text
``upstream error`` (500, also labelled ``application/json``), a 503 in Slack's JSON, or a
dropped connection. Then Slack is back and the outbox drains:

- zero notifications lost: every row is ``sent`` (or an edit superseded), none ``failed``;
- none out of order: each incident's thread holds exactly its replies, as written, and
  its root shows the latest state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator
from bot.store.alert_models import AlertIncident, AlertOutbox
from bot.store.database import Database

if TYPE_CHECKING:
    from tests.conftest import FakeClock

INTERVAL_SECS = 30.0
OUTAGE_SWEEPS = 12

# name → fail_next options
SHAPES: dict[str, dict[str, Any]] = {
    "500-html": {"status": 500, "body": "html"},
    "502-html": {"status": 502, "body": "html"},
    "500-text": {"status": 500, "body": "text"},
    "500-text-as-json": {"status": 500, "body": "bad_json"},
    "503-json": {"status": 503},
    "dropped": {"drop": True},
}


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_every_alert_arrives_in_order_after_a_slack_outage_of_any_shape(
    shape: str,
    sim: BackendSimulator,
    slack_emulator: SlackEmulator,
    fake_clock: FakeClock,
    sqlite_store: Database,
    start_bot: Callable[..., Any],
    reliability_figures: dict[str, object],
) -> None:
    ids = sim.seed_instances(20)  # 5 stale of 20: incidents, not a storm
    async with start_bot(sim, sqlite_store) as bot:
        await bot.sweep()
        slack_emulator.fail_next(100_000, **SHAPES[shape])
        # Three stall for good (budget runs out: escalation), two heal after a restart.
        for victim in ids[:3]:
            sim.stop_heartbeat(victim, sticky=True)
        for victim in ids[3:5]:
            sim.stop_heartbeat(victim)
        for _ in range(OUTAGE_SWEEPS):
            fake_clock.advance(INTERVAL_SECS)
            await bot.sweep()
        sim.resume_heartbeat(ids[0])  # one of the stuck ones is fixed during the outage
        fake_clock.advance(INTERVAL_SECS)
        await bot.sweep()
        failed_requests = len([c for c in slack_emulator.calls if c.injected])
        slack_emulator.stop_failing()

        for _ in range(60):
            fake_clock.advance(INTERVAL_SECS)
            await bot.delivery.run_once()
            async with sqlite_store.session() as session:
                pending = await session.scalar(
                    select(func.count(AlertOutbox.id)).where(AlertOutbox.state == "pending")
                )
            if not pending:
                break
        async with sqlite_store.session() as session:
            rows = list(await session.scalars(select(AlertOutbox).order_by(AlertOutbox.id)))
            incidents = list(await session.scalars(select(AlertIncident)))
        violations = slack_emulator.violations()

    assert violations == [], violations
    states = Counter(row.state for row in rows)
    assert set(states) <= {"sent", "superseded"}, [
        (r.kind, r.state, r.last_error) for r in rows if r.state not in ("sent", "superseded")
    ]
    assert failed_requests > 0
    checked = 0
    for incident in incidents:
        own = [r for r in rows if r.incident_id == incident.id]
        [root] = [r for r in own if r.kind == "root"]
        thread = slack_emulator.thread(root.channel, root.ts or "")
        assert thread, f"incident {incident.id}: its root is not in Slack"
        written = [r.payload["text"] for r in own if r.kind == "reply"]
        assert [m.text for m in thread[1:]] == written, incident.id
        edits = [r for r in own if r.kind == "update" and r.state == "sent"]
        latest = edits[-1].payload if edits else root.payload
        assert thread[0].text == latest["text"], incident.id
        checked += 1
    assert checked == len(incidents) >= 5

    reliability_figures.update(
        shape=shape,
        outage_secs=int(OUTAGE_SWEEPS * INTERVAL_SECS),
        failed_requests=failed_requests,
        incidents=len(incidents),
        messages_delivered=states["sent"],
        failed_rows=states["failed"],
        notifications_lost=0,
        out_of_order=0,
    )
