"""A sweep cannot be held by one instance: per-call and per-sweep deadlines.

The simulator drips one instance's health answer (headers at once, then a byte every
20 s): without deadlines that call holds the sweep for the client's whole deadline. The
monitor runs on the fake clock (heartbeat ages), the deadlines on the event loop's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from time import perf_counter
from typing import TYPE_CHECKING

import httpx

from bot.monitor import HealthMonitor
from bot.monitor.policy import HEALTH_FAILURES_FOR_UNKNOWN, UNKNOWN_STATUS
from bot.sim.backend import BackendSimulator

if TYPE_CHECKING:
    from tests.conftest import FakeClock
    from tests.monitor.conftest import Recorder

MakeMonitor = Callable[..., HealthMonitor]

CALL = timedelta(seconds=0.3)
FETCH = timedelta(seconds=0.6)
CLIENT_TIMEOUT_SECS = 5.0  # the ``client`` fixture's own deadline (tests/monitor/conftest.py)


async def test_a_dripping_instance_is_unknown_for_the_sweep_and_a_stale_one_is_restarted(
    sim: BackendSimulator, make_monitor: MakeMonitor, fake_clock: FakeClock, recorder: Recorder
) -> None:
    dripping, stale, *_ = sim.seed_instances(5)
    sim.set_faults(drip_ids=[dripping], drip_secs=20)
    monitor = make_monitor().with_sweep_deadlines(CALL, FETCH)
    await monitor.sweep_once()
    sim.stop_heartbeat(stale, sticky=True)
    fake_clock.advance(120)  # past the 90 s heartbeat timeout
    started = perf_counter()
    report = await monitor.sweep_once()
    took = perf_counter() - started
    # The client's own deadline is 5 s and a drip byte 20 s: the sweep's per-call deadline
    # cut the drip short, so the sweep ended well before either (the bound is the figure a
    # missing deadline would reach, not the machine's speed).
    assert took < CLIENT_TIMEOUT_SECS, took
    assert report.restarted == [stale]
    assert report.backend_error is None
    # The dripping instance failed its health call; after the usual count it is unknown.
    for _ in range(HEALTH_FAILURES_FOR_UNKNOWN):
        fake_clock.advance(30)
        await monitor.sweep_once()
    assert (dripping, UNKNOWN_STATUS) in [(i, s) for i, s, _ in recorder.calls]


async def test_the_sweep_deadline_bounds_many_slow_calls_and_blames_the_backend(
    sim: BackendSimulator, make_monitor: MakeMonitor, recorder: Recorder
) -> None:
    ids = sim.seed_instances(8)
    sim.set_faults(drip_ids=ids, drip_secs=20)
    # One call in flight at a time: eight 0.3 s calls would take 2.4 s without the
    # sweep's own deadline.
    monitor = make_monitor().with_sweep_deadlines(CALL, FETCH).with_health_concurrency(1)
    for _ in range(HEALTH_FAILURES_FOR_UNKNOWN + 1):
        before = sum(sim.calls[("health", i)] for i in ids)
        report = await monitor.sweep_once()
        started = sum(sim.calls[("health", i)] for i in ids) - before
        # The sweep's deadline (0.6 s) stopped it after two or three of the eight 0.3 s calls
        # (one at a time); a slow machine starts fewer, never more. Counted at the backend,
        # not timed: without the deadline all eight would be asked.
        assert 1 <= started <= 3, started
        assert report.backend_error is None
    # Every call failed: the degraded-backend rule blames the backend, not the instances.
    assert not [c for c in recorder.calls if c[1] == UNKNOWN_STATUS]


async def test_drip_ids_are_settable_over_the_admin_api(sim: BackendSimulator) -> None:
    (one,) = sim.seed_instances(1)
    async with httpx.AsyncClient(base_url=sim.url) as http:
        answer = await http.post("/_sim/faults", json={"drip_ids": [one], "drip_secs": 5})
    assert answer.status_code == 200, answer.text
    assert answer.json()["faults"]["drip_ids"] == [one]
    assert sim.faults.active and sim.faults.drip_secs == 5
