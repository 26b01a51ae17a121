"""Chaos: Slack answers bursts of 429s and 500s and drops connections while incidents happen.

The whole bot runs (monitor, alerts, outbox delivery) on a fake clock; instances go stale
over 40 sweeps, some healing after a restart, some never (sticky), so incidents open, get
thread replies, root edits, escalations and recoveries. Meanwhile the Slack emulator answers
a share of Web API calls with 429 (``Retry-After``), 500, or closes the connection without
answering, in bursts. When the faults stop and the outbox drains:

- zero notifications lost: every outbox row is ``sent`` (or an edit superseded by a newer
  one), none ``failed``, none still pending;
- none out of order within an incident: each incident's thread holds exactly its reply rows,
  in the order they were written, and its root shows the latest state;
- Slack never rejected a request for the bot's own fault (``violations() == []``).
"""

from __future__ import annotations

import os
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

pytestmark = pytest.mark.slow

LONG = os.environ.get("STARPOD_LONG_TESTS") == "1"
ALERTS = "C0ALERTS"
INTERVAL_SECS = 30.0


def _bursts(slack: SlackEmulator, number: int) -> None:
    """The fault schedule of sweep ``number``: a steady 429 rate plus bursts."""
    if number % 5 == 0:
        slack.fail_next(4, status=429, retry_after=2)
    elif number % 5 == 1:
        slack.fail_next(3, status=500)
    elif number % 5 == 2:
        slack.fail_next(3, drop=True)
    elif number % 5 == 3:
        slack.fail_next(2, status=503)


async def test_alerts_survive_slack_rate_limits_errors_and_dropped_connections(
    sim: BackendSimulator,
    slack_emulator: SlackEmulator,
    fake_clock: FakeClock,
    sqlite_store: Database,
    start_bot: Callable[..., Any],
    reliability_figures: dict[str, object],
) -> None:
    sweeps = 120 if LONG else 40
    ids = sim.seed_instances(30 if LONG else 12)
    # (sweep, instance, sticky): sticky stalls survive restarts, so the budget runs out.
    stalls = [(2 + 3 * k, ids[k], k % 3 == 2) for k in range(len(ids) // 2)]
    async with start_bot(sim, sqlite_store) as bot:
        slack_emulator.set_fault_rate(0.2, status=429, retry_after=1, seed=3)
        for number in range(sweeps):
            for at, instance_id, sticky in stalls:
                if at == number:
                    sim.stop_heartbeat(instance_id, sticky=sticky)
                if at + 12 == number and sticky:
                    sim.resume_heartbeat(instance_id)  # a fixed instance, much later
            _bursts(slack_emulator, number)
            await bot.sweep()
            fake_clock.advance(INTERVAL_SECS)
            await bot.delivery.run_once()

        # Faults off; let the outbox drain (back-offs are on the fake clock).
        slack_emulator.set_fault_rate(0.0)
        # Back-offs grow to 5 minutes, so a long run needs a longer drain: run until nothing
        # is pending, within 2 hours of fake time (a stuck row still fails the test).
        for _ in range(240):
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
        injected = Counter(
            "dropped" if c.status == 0 else str(c.status)
            for c in slack_emulator.calls
            if c.injected
        )
        violations = slack_emulator.violations()

    assert violations == [], violations
    states = Counter(row.state for row in rows)
    assert states["failed"] == 0 and states["pending"] == 0, states
    assert set(states) <= {"sent", "superseded"}, states
    assert injected["429"] and injected["500"] and injected["dropped"], injected

    by_incident: dict[int | None, list[AlertOutbox]] = {}
    for row in rows:
        by_incident.setdefault(row.incident_id, []).append(row)
    checked = 0
    for incident in incidents:
        own = by_incident.get(incident.id, [])
        roots = [r for r in own if r.kind == "root" and r.state == "sent"]
        if not roots:
            continue
        assert len(roots) == 1, (incident.id, roots)
        root = roots[0]
        thread = slack_emulator.thread(root.channel, root.ts or "")
        assert thread, f"incident {incident.id}: root {root.ts} is not in Slack"
        delivered = [m.text for m in thread[1:]]
        written = [r.payload["text"] for r in own if r.kind == "reply" and r.state == "sent"]
        # Exactly the replies written, in the order written: none lost, none reordered.
        assert delivered == written, (incident.id, delivered, written)
        edits = [r for r in own if r.kind == "update" and r.state == "sent"]
        latest = edits[-1].payload if edits else root.payload
        assert thread[0].text == latest["text"], incident.id
        checked += 1
    assert checked >= len(stalls) // 2, checked

    reliability_figures.update(
        sweeps=sweeps,
        incidents=len(incidents),
        slack_messages=states["sent"],
        slack_faults_injected=dict(injected),
        notifications_lost=0,
        out_of_order=0,
    )
