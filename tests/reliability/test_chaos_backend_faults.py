"""Chaos: 60 sweeps against a backend answering 20 % 500s, 5 % hangs and 5 % garbage bodies.

The real monitor, the real client and a real SQLite store, on a fake clock (30 s per
sweep), so 60 sweeps take seconds. Some instances really go stale along the way. What must
hold, whatever the faults hit:

- no sweep raises (the scheduler would only log it, but it would mean a blind monitor);
- no healthy instance is ever asked to restart; every one that went stale is;
- one stale episode never gets two successful restarts;
- a backend outage is announced once per outage (three failed lists in a row), not once per
  failed sweep, and ends with a recovery;
- once the faults stop, every instance is running again and recorded as such.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from bot.monitor import EventKind, RestartBudget
from bot.monitor.policy import BACKEND_FAILURES_FOR_UNREACHABLE
from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator
from bot.store.alert_models import AlertIncident
from bot.store.database import Database
from bot.store.heartbeats.reads import count_samples
from bot.store.queries import last_statuses

if TYPE_CHECKING:
    from tests.conftest import FakeClock

pytestmark = pytest.mark.slow

# Test modules cannot import each other (importlib mode): the size switch is read here too.
LONG = os.environ.get("STARPOD_LONG_TESTS") == "1"

SWEEPS = 60
INTERVAL_SECS = 30.0
# Clean sweeps that bring a loaded machine's fleet back (see below)...
CLEAN_SWEEPS = 10
# ...and, when the faults failed every budgeted restart of a stalled instance, enough to
# outlast the restart budget's window (the monitor's is the default): the monitor rightly
# stops restarting it until its first restart leaves the window, then brings it back.
BUDGET_SWEEPS = int(RestartBudget().window / timedelta(seconds=INTERVAL_SECS)) + CLEAN_SWEEPS


COMMANDS = (
    "list",
    "health pod-005",
    "logs pod-006 --tail 20",
    "status",
    "history pod-007",
    "list --status error",
    "health pod-00",  # ambiguous: a clear answer listing candidates
    "logs nosuch",  # unknown: a clear "no instance matches"
)


async def test_sixty_sweeps_against_a_flaky_backend(
    sim: BackendSimulator,
    slack_emulator: SlackEmulator,
    fake_clock: FakeClock,
    sqlite_store: Database,
    start_bot: Callable[..., Any],
    reliability_figures: dict[str, object],
) -> None:
    fleet = 1000 if LONG else 40
    ids = sim.seed_instances(fleet)
    # Stalls start at different sweeps, so faults hit detection, restart and recovery alike.
    stall_at = {ids[0]: 2, ids[1]: 15, ids[2]: 30, ids[3]: 45}
    failed_lists = 0
    streaks: list[int] = []
    run = 0
    answers: Counter[str] = Counter()
    async with start_bot(sim, sqlite_store) as bot:
        sim.set_faults(error_rate=0.20, timeout_rate=0.05, garbage_rate=0.05, hang_secs=2.0)
        for number in range(SWEEPS):
            for instance_id, at in stall_at.items():
                if at == number:
                    sim.stop_heartbeat(instance_id)  # a restart revives it
            report = await bot.sweep()  # must never raise
            assert report.swept
            if report.backend_error is not None:
                failed_lists += 1
                run += 1
            else:
                if run:
                    streaks.append(run)
                run = 0
            # A user asks something every sweep, through the same faults.
            text = COMMANDS[number % len(COMMANDS)]
            answer = bot.visible(await bot.command(text))
            assert answer.strip(), f"/starpod {text} got an empty answer"
            assert bot.UNEXPECTED not in answer, f"/starpod {text}: {answer}"
            answers["backend error" if "Backend" in answer else "answered"] += 1
            fake_clock.advance(INTERVAL_SECS)
        if run:
            streaks.append(run)
        faults_seen = dict(sim.calls)

        # The faults stop: clean sweeps bring everything back. Two do on an idle machine; on
        # a loaded one a health call can still miss the 0.3 s deadline, and an instance the
        # monitor cannot confirm keeps its problem status (rightly) until a sweep that can.
        # So sweep until the store says the whole fleet runs, at most CLEAN_SWEEPS times,
        # or BUDGET_SWEEPS when a stalled instance's restart budget was spent: a restart
        # fails ~25 % of the time here, so now and then all three of one instance do (1 of
        # 40 simulator seeds; which request draws which fault follows the order of the
        # requests, which load changes: so the test passed alone and failed in a full run).
        sim.set_faults()
        clean_sweeps = 0
        recorded: dict[str, str] = {}
        while clean_sweeps < (
            BUDGET_SWEEPS if bot.events.of(EventKind.RESTART_BUDGET_EXHAUSTED) else CLEAN_SWEEPS
        ):
            report = await bot.sweep()
            clean_sweeps += 1
            fake_clock.advance(INTERVAL_SECS)
            async with sqlite_store.session() as session:
                recorded = await last_statuses(session)
            if report.backend_error is None and set(recorded.values()) == {"running"}:
                break
        status = bot.monitor.status()
        events = bot.events
        async with sqlite_store.session() as session:
            samples = sum(await count_samples(session))
            incidents = list(await session.scalars(select(AlertIncident)))
        assert slack_emulator.violations() == []

    restart_calls = {iid: n for (kind, iid), n in faults_seen.items() if kind == "restart"}
    healthy_restarted = sorted(set(restart_calls) - set(stall_at))
    assert healthy_restarted == [], f"healthy instances were restarted: {healthy_restarted}"
    for instance_id in stall_at:
        assert restart_calls.get(instance_id, 0) >= 1, f"{instance_id} went stale, never restarted"

    # A successful restart revives the heartbeat: one stale episode, one successful restart.
    succeeded = Counter(e.instance_id for e in events.of(EventKind.RESTART_ATTEMPTED))
    assert all(succeeded[i] <= 1 for i in stall_at), succeeded
    assert set(succeeded) <= set(stall_at)

    # One outage announcement per run of >= 3 failed lists, never one per failed sweep.
    outages = sum(1 for s in streaks if s >= BACKEND_FAILURES_FOR_UNREACHABLE)
    assert len(events.of(EventKind.BACKEND_UNREACHABLE)) == outages
    assert len(events.of(EventKind.BACKEND_RECOVERED)) == outages

    # After the faults: the fleet is running, recorded as running, the backend reachable.
    assert status.backend_reachable and status.last_error is None
    assert set(sim.state()["by_status"]) == {"running"}
    assert set(recorded) == set(ids)
    assert set(recorded.values()) == {"running"}, Counter(recorded.values())
    assert samples and samples > 0

    reliability_figures.update(
        instances=fleet,
        sweeps=SWEEPS,
        backend_requests=sum(faults_seen.values()),
        failed_list_sweeps=failed_lists,
        outage_announcements=outages,
        healthy_restarted=len(healthy_restarted),
        stale_restarted=f"{len(set(succeeded))}/{len(stall_at)}",
        commands_answered=sum(answers.values()),
        commands_with_backend_error=answers["backend error"],
        clean_sweeps_to_recover=clean_sweeps,
        crashes=0,
    )

    # In Slack: at most one degraded-backend incident, and no incident for a healthy instance.
    fleet_incidents = [i for i in incidents if i.scope == "fleet"]
    noisy = sorted(
        {i.instance_id or "" for i in incidents if i.scope == "instance"} - set(stall_at)
    )
    reliability_figures.update(
        fleet_incidents=len(fleet_incidents),
        incidents_for_healthy_instances=len(noisy),
    )
    # One fleet incident for the degraded backend, and one per outage (three failed lists in
    # a row); on a loaded machine list calls miss the deadline more often, so outages vary.
    assert len(fleet_incidents) <= max(1, outages), [(i.kind, i.opened_at) for i in fleet_incidents]
    # A health call failing by chance on a degraded backend must not open an incident for
    # a healthy instance (the monitor blames the backend when calls fail broadly).
    kinds = sorted({i.kind for i in incidents if i.instance_id in noisy})
    assert not noisy, f"{len(noisy)} healthy instances got incidents ({', '.join(kinds)})"
