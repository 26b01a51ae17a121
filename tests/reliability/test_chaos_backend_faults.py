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
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from bot.backend.client import InstanceClient
from bot.monitor import EventKind, HealthMonitor
from bot.monitor.policy import BACKEND_FAILURES_FOR_UNREACHABLE
from bot.sim.backend import BackendSimulator
from bot.store.database import Database
from bot.store.models import HeartbeatSample
from bot.store.queries import last_statuses

if TYPE_CHECKING:
    from tests.conftest import FakeClock
    from tests.reliability.conftest import EventLog

# Test modules cannot import each other (importlib mode): the size switch is read here too.
LONG = os.environ.get("STARPOD_LONG_TESTS") == "1"

SWEEPS = 60
INTERVAL_SECS = 30.0


async def test_sixty_sweeps_against_a_flaky_backend(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    utc_clock: Callable[[], datetime],
    sqlite_store: Database,
    event_log: EventLog,
    reliability_figures: dict[str, object],
) -> None:
    fleet = 1000 if LONG else 40
    ids = sim.seed_instances(fleet)
    # Stalls start at different sweeps, so faults hit detection, restart and recovery alike.
    stall_at = {ids[0]: 2, ids[1]: 15, ids[2]: 30, ids[3]: 45}
    sim.set_faults(error_rate=0.20, timeout_rate=0.05, garbage_rate=0.05, hang_secs=2.0)

    failed_lists = 0
    streaks: list[int] = []
    run = 0
    async with InstanceClient(sim.url, timeout=0.3, retry_backoff=0) as client:
        monitor = (
            HealthMonitor(client, store=sqlite_store)
            .with_clock(utc_clock)
            .with_interval(timedelta(seconds=INTERVAL_SECS))
            .on_event(event_log.handler)
            .on_status_change(event_log.callback)
        )
        for number in range(SWEEPS):
            for instance_id, at in stall_at.items():
                if at == number:
                    sim.stop_heartbeat(instance_id)  # a restart revives it
            report = await monitor.sweep_once()  # must never raise
            assert report.swept
            if report.backend_error is not None:
                failed_lists += 1
                run += 1
            else:
                if run:
                    streaks.append(run)
                run = 0
            fake_clock.advance(INTERVAL_SECS)
        if run:
            streaks.append(run)
        faults_seen = dict(sim.calls)

        # The faults stop: two clean sweeps bring everything back.
        sim.set_faults()
        for _ in range(2):
            report = await monitor.sweep_once()
            assert report.backend_error is None
            fake_clock.advance(INTERVAL_SECS)
        status = monitor.status()

    restart_calls = {iid: n for (kind, iid), n in faults_seen.items() if kind == "restart"}
    healthy_restarted = sorted(set(restart_calls) - set(stall_at))
    assert healthy_restarted == [], f"healthy instances were restarted: {healthy_restarted}"
    for instance_id in stall_at:
        assert restart_calls.get(instance_id, 0) >= 1, f"{instance_id} went stale, never restarted"

    # A successful restart revives the heartbeat: one stale episode, one successful restart.
    succeeded = Counter(e.instance_id for e in event_log.of(EventKind.RESTART_ATTEMPTED))
    assert all(succeeded[i] <= 1 for i in stall_at), succeeded
    assert set(succeeded) <= set(stall_at)

    # One outage announcement per run of >= 3 failed lists, never one per failed sweep.
    outages = sum(1 for s in streaks if s >= BACKEND_FAILURES_FOR_UNREACHABLE)
    assert len(event_log.of(EventKind.BACKEND_UNREACHABLE)) == outages
    assert len(event_log.of(EventKind.BACKEND_RECOVERED)) == outages

    # After the faults: the fleet is running, recorded as running, the backend reachable.
    assert status.backend_reachable and status.last_error is None
    assert set(sim.state()["by_status"]) == {"running"}
    async with sqlite_store.session() as session:
        recorded = await last_statuses(session)
        samples = await session.scalar(select(func.count()).select_from(HeartbeatSample))
    assert set(recorded) == set(ids)
    assert set(recorded.values()) == {"running"}, Counter(recorded.values())
    assert samples and samples > 0

    requests = sum(faults_seen.values())
    reliability_figures.update(
        instances=fleet,
        sweeps=SWEEPS,
        backend_requests=requests,
        failed_list_sweeps=failed_lists,
        outage_announcements=outages,
        health_unknown_events=len(event_log.of(EventKind.HEALTH_UNKNOWN)),
        healthy_restarted=len(healthy_restarted),
        stale_restarted=f"{len(set(succeeded))}/{len(stall_at)}",
        crashes=0,
    )
