"""Restart the bot again and again during open incidents: on-call is paged once per
reason, and a start edits no root whose content did not change.

Every start is a real process (``restart_worker.py``) on the same SQLite file: it
sweeps once, delivers, and exits. Three instances go stale for good; two starts spend
their auto-restart budgets (2 each), the third start finds the budgets exhausted and
pages. Every later start sees the same exhaustion again (the monitor's memory of having
announced it died with the process) and must neither page nor edit.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator
from bot.store.database import Database

if TYPE_CHECKING:
    from tests.conftest import FakeClock

WORKER = Path(__file__).with_name("restart_worker.py")
LONG = os.environ.get("STARPOD_LONG_TESTS") == "1"
ALERTS = "C0ALERTS"
ONCALL = "<!subteam^S0ONCALL>"
INCIDENTS = 3


async def start_once(
    db: Database, sim: BackendSimulator, slack: SlackEmulator, now: float, number: int
) -> dict[str, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        "--db", db.url,
        "--backend", sim.url,
        "--slack", slack.api_url,
        "--token", slack.bot_token,
        "--now", str(now),
        "--holder", f"start-{number}",
        "--channel", ALERTS,
        "--mention", ONCALL,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, out
    result: dict[str, int] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def test_restarts_during_open_incidents_page_once_and_edit_nothing(
    sqlite_store: Database,
    fake_clock: FakeClock,
    reliability_figures: dict[str, object],
) -> None:
    starts = 11 if LONG else 8
    async with (
        BackendSimulator(clock=fake_clock, transition_secs=0) as sim,
        SlackEmulator(clock=fake_clock) as slack,
    ):
        ids = sim.seed_instances(INCIDENTS + 1)
        for victim in ids[:INCIDENTS]:
            sim.stop_heartbeat(victim, sticky=True)
        updates_after_page = 0
        for number in range(starts):
            fake_clock.advance(100)
            await start_once(sqlite_store, sim, slack, fake_clock(), number)
            if number == 2:
                updates_after_page = len(slack.calls_to("chat.update"))

        posts = [c for c in slack.calls_to("chat.postMessage") if c.ok]
        pages = Counter(
            str(c.args.get("thread_ts") or (c.response or {}).get("ts"))
            for c in posts
            if ONCALL in str(c.args.get("text"))
        )
        gave_up = [c for c in posts if "gave up" in str(c.args.get("text"))]
        updates_later = len(slack.calls_to("chat.update")) - updates_after_page
        violations = slack.violations()

    reliability_figures.update(
        starts=starts,
        incidents=INCIDENTS,
        pages_per_incident=sorted(pages.values()),
        gave_up_pages=len(gave_up),
        root_edits_after_the_page=updates_later,
    )
    assert violations == []
    assert len(pages) == INCIDENTS, pages
    # The root (opening) and the one "gave up" escalation, whatever the number of starts.
    assert sorted(pages.values()) == [2] * INCIDENTS, pages
    assert len(gave_up) == INCIDENTS
    assert updates_later == 0, "a start edited roots whose content had not changed"
