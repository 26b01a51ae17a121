"""Restart budget reset: recorded, told in the incident, and the monitor restarts again.

The real monitor on the backend simulator, the real AlertService and its outbox on a
SQLite file, the Slack emulator; all on the fake clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import select

from bot.store.models import RestartBudgetReset
from tests.alerts.conftest import ONCALL, Harness
from tests.alerts.test_incident_flow import action_ids, start

RESET_BUTTON = "starpod.incident.budget_reset"


async def exhaust(h: Harness, victim: str, sweeps: int = 4) -> None:
    for _ in range(sweeps):
        h.advance(100)
        await h.sweep()
    await h.deliver()


async def test_reset_gives_the_budget_back_says_so_and_a_new_exhaustion_pages_again(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(budget=2, delays=(0, 0))
    ids = await start(h)
    victim = ids[0]
    h.sim.stop_heartbeat(victim, sticky=True)  # restarts never bring it back
    await exhaust(h, victim)
    [root] = h.channel()
    assert RESET_BUTTON in action_ids(h.slack.find_message(root.ts) or root)
    assert h.sim.calls[("restart", victim)] == 2
    h.advance(100)
    assert (await h.sweep()).restarted == [], "spent: no third restart"

    result = await h.service.reset_restart_budget(victim, "U0OPS", source="incident")
    [incident] = await h.incidents()
    assert result.incident_id == incident.id and incident.exhausted_at is None
    async with h.db.session() as session:
        [row] = list(await session.scalars(select(RestartBudgetReset)))
    assert (row.instance_id, row.actor, row.source) == (victim, "U0OPS", "incident")
    await h.deliver()
    note = [r for r in h.replies(root) if "♻️" in r.text]
    assert len(note) == 1 and "<@U0OPS>" in json.dumps(note[0].blocks)
    edited = h.slack.find_message(root.ts)
    assert edited is not None and "auto-restart budget reset by <@U0OPS>" in json.dumps(
        edited.blocks
    )
    assert RESET_BUTTON not in action_ids(edited), "nothing spent to reset any more"

    h.advance(100)
    assert (await h.sweep()).restarted == [victim], "the budget is back"
    await exhaust(h, victim, sweeps=3)
    assert h.sim.calls[("restart", victim)] == 4
    escalations = [r for r in h.replies(root) if "📣" in r.text and ONCALL in r.text]
    assert len(escalations) == 2, "the new exhaustion pages on-call again"


async def test_reset_without_an_incident_is_recorded_and_tells_no_one(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    ids = await start(h)
    result = await h.service.reset_restart_budget(ids[1], "U0OPS")
    assert result.incident_id is None
    async with h.db.session() as session:
        [row] = list(await session.scalars(select(RestartBudgetReset)))
    assert row.instance_id == ids[1] and row.source == "slack"
    await h.deliver()
    assert h.channel() == []
