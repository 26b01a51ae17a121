"""One sweep at a time against the simulator, with and without a store (fake clock)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from bot.monitor import EventKind, HealthMonitor
from bot.sim.backend import BackendSimulator
from bot.store.database import Database

if TYPE_CHECKING:
    from tests.conftest import FakeClock
    from tests.monitor.conftest import Recorder

MakeMonitor = Callable[..., HealthMonitor]


async def test_fresh_instances_are_never_restarted(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    store: Database | None,
) -> None:
    ids = sim.seed_instances(5)
    monitor = make_monitor(store)
    for _ in range(6):
        report = await monitor.sweep_once()
        assert report.swept and report.instances == 5 and report.running == 5
        assert report.stale_ids == [] and report.restarted == []
        fake_clock.advance(30)
    assert all(sim.calls[("restart", i)] == 0 for i in ids)
    assert all(sim.calls[("health", i)] == 6 for i in ids)
    assert recorder.calls == [] and recorder.events == []


async def test_a_stale_instance_is_announced_then_restarted_exactly_once(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    store: Database | None,
) -> None:
    ids = sim.seed_instances(4)
    stalled = ids[1]
    monitor = make_monitor(store)
    await monitor.sweep_once()
    sim.stop_heartbeat(stalled)
    fake_clock.advance(60)
    report = await monitor.sweep_once()
    assert report.stale_ids == [] and report.restarted == []  # 60 s is within the timeout
    fake_clock.advance(40)

    report = await monitor.sweep_once()
    assert report.stale_ids == [stalled]
    assert report.restarted == [stalled]
    assert sim.calls[("restart", stalled)] == 1
    # The seed's callback: instance id, status error, the health data that showed it.
    assert len(recorder.calls) == 1
    instance_id, status, health = recorder.calls[0]
    assert (instance_id, status) == (stalled, "error")
    assert health is not None and health.heartbeat_age(fake_clock_dt(fake_clock)) > 90
    stale = recorder.kinds(EventKind.STALE)
    assert len(stale) == 1 and stale[0].from_status == "running" and stale[0].to_status == "error"
    assert stale[0].detail == "heartbeat stale: 100 s old (timeout 90 s)"
    attempted = recorder.kinds(EventKind.RESTART_ATTEMPTED)
    assert len(attempted) == 1 and attempted[0].attempt == 1

    # The restart revived the heartbeat: the next sweep sees it recover, nothing restarts.
    fake_clock.advance(30)
    report = await monitor.sweep_once()
    assert report.stale_ids == [] and report.restarted == []
    assert sim.calls[("restart", stalled)] == 1
    assert recorder.calls[1][:2] == (stalled, "running")
    recovered = recorder.kinds(EventKind.RECOVERED)
    assert len(recovered) == 1 and recovered[0].from_status == "error"
    for _ in range(5):
        fake_clock.advance(30)
        await monitor.sweep_once()
    assert sim.calls[("restart", stalled)] == 1
    assert len(recorder.calls) == 2
    assert all(sim.calls[("restart", i)] == 0 for i in ids if i != stalled)


def fake_clock_dt(clock: FakeClock) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


async def test_paused_stopped_and_other_statuses_are_never_checked(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    store: Database | None,
) -> None:
    quiet = [
        *sim.seed_instances(2, status="paused"),
        *sim.seed_instances(2, status="stopped"),
        *sim.seed_instances(1, status="error"),
    ]
    creating = sim.add_instance(status="creating")
    running = sim.seed_instances(1)
    monitor = make_monitor(store)
    for _ in range(4):
        await monitor.sweep_once()
        fake_clock.advance(600)  # their frozen heartbeats are hours old by now
    for instance_id in [*quiet, creating]:
        assert sim.calls[("health", instance_id)] == 0
        assert sim.calls[("restart", instance_id)] == 0
    assert sim.calls[("health", running[0])] == 4
    # The error instance is announced once when first seen; nothing else fires.
    assert [c[:2] for c in recorder.calls] == [(quiet[4], "error")]


async def test_a_status_change_fires_one_callback_not_one_per_sweep(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    store: Database | None,
) -> None:
    ids = sim.seed_instances(3)
    seen_async: list[tuple[str, str]] = []

    async def async_callback(instance_id: str, status: str, _health: object) -> None:
        seen_async.append((instance_id, status))

    def broken_callback(*_args: object) -> None:
        raise RuntimeError("a broken callback never stops the sweep")

    monitor = make_monitor(store).on_status_change(broken_callback)
    monitor.on_status_change(async_callback)
    await monitor.sweep_once()
    assert recorder.calls == []

    sim.set_status(ids[0], "paused")
    for _ in range(3):
        fake_clock.advance(30)
        await monitor.sweep_once()
    assert recorder.calls == [(ids[0], "paused", None)]
    assert seen_async == [(ids[0], "paused")]
    changed = recorder.kinds(EventKind.STATUS_CHANGED)
    assert [(e.instance_id, e.from_status, e.to_status) for e in changed] == [
        (ids[0], "running", "paused")
    ]

    sim.set_status(ids[0], "running")
    fake_clock.advance(30)
    await monitor.sweep_once()
    assert recorder.calls[-1][:2] == (ids[0], "running")
    assert len(recorder.calls) == 2


async def test_restart_budget_and_growing_delays(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    store: Database | None,
) -> None:
    ids = sim.seed_instances(3)
    stuck = ids[0]
    monitor = make_monitor(store)
    await monitor.sweep_once()
    # A sticky stall survives restarts: the instance never heals, the budget must hold.
    sim.stop_heartbeat(stuck, sticky=True)
    fake_clock.advance(91)
    start = fake_clock()
    restart_times: list[float] = []
    for _ in range(int(45 * 60 / 30)):
        before = sim.calls[("restart", stuck)]
        await monitor.sweep_once()
        if sim.calls[("restart", stuck)] > before:
            restart_times.append(fake_clock() - start)
        fake_clock.advance(30)

    # Immediately, then 60 s later, then 300 s after that; then nothing until the first
    # leaves the 30-minute window, and never more than 3 in any 30 minutes.
    assert restart_times == [0, 60, 360, 1800, 2100, 2400]
    for i, t in enumerate(restart_times):
        assert sum(1 for u in restart_times[: i + 1] if t - u < 1800) <= 3
    exhausted = recorder.kinds(EventKind.RESTART_BUDGET_EXHAUSTED)
    # Said once per exhaustion (after each restart that spent the budget), not every sweep.
    assert [e.at.timestamp() - start for e in exhausted] == [390, 1830, 2130, 2430]
    assert exhausted[0].instance_id == stuck and exhausted[0].attempt == 3
    deferred = recorder.kinds(EventKind.RESTART_DEFERRED)
    assert [(e.attempt, e.until.timestamp() - start) for e in deferred[:2]] == [(2, 60), (3, 360)]
    # The stale transition was announced once, however many sweeps it lasted.
    assert [c[:2] for c in recorder.calls] == [(stuck, "error")]
    assert all(sim.calls[("restart", i)] == 0 for i in ids[1:])


async def test_backend_down_means_no_restarts_and_one_unreachable_event(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    store: Database | None,
) -> None:
    ids = sim.seed_instances(3)
    monitor = make_monitor(store)
    await monitor.sweep_once()
    sim.stop_heartbeat(ids[0])
    sim.set_faults(down=True)
    for sweep in range(6):
        fake_clock.advance(60)
        report = await monitor.sweep_once()
        assert report.backend_error is not None and report.restarted == []
        assert monitor.status().consecutive_backend_failures == sweep + 1
    assert sim.calls[("restart", ids[0])] == 0
    unreachable = recorder.kinds(EventKind.BACKEND_UNREACHABLE)
    assert len(unreachable) == 1 and "503" in unreachable[0].detail
    assert not monitor.status().backend_reachable
    assert recorder.calls == []

    # Back again: one "recovered", and the stale instance is handled normally.
    sim.set_faults()
    report = await monitor.sweep_once()
    assert len(recorder.kinds(EventKind.BACKEND_RECOVERED)) == 1
    assert monitor.status().backend_reachable
    assert report.restarted == [ids[0]]
    fake_clock.advance(30)
    await monitor.sweep_once()
    assert len(recorder.kinds(EventKind.BACKEND_RECOVERED)) == 1


async def test_backend_refusing_connections_counts_as_down(
    sim: BackendSimulator, fake_clock: FakeClock, make_monitor: MakeMonitor, recorder: Recorder
) -> None:
    sim.seed_instances(2)
    monitor = make_monitor()
    await monitor.sweep_once()
    await sim.stop()
    for _ in range(4):
        fake_clock.advance(30)
        report = await monitor.sweep_once()
        assert report.backend_error is not None and "unreachable" in report.backend_error.lower()
    assert len(recorder.kinds(EventKind.BACKEND_UNREACHABLE)) == 1
    await sim.start()
    await monitor.sweep_once()
    assert len(recorder.kinds(EventKind.BACKEND_RECOVERED)) == 1


async def test_failing_health_calls_mark_unknown_after_three_never_stale(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    store: Database | None,
) -> None:
    ids = sim.seed_instances(2)
    monitor = make_monitor(store)
    await monitor.sweep_once()
    sim.set_faults(error_rate=1.0, endpoints=["health"])
    for _ in range(2):
        fake_clock.advance(200)  # long enough to be stale, were health known
        report = await monitor.sweep_once()
        assert report.changes == [] and report.stale_ids == []
    fake_clock.advance(200)
    report = await monitor.sweep_once()
    assert sorted(report.changes) == sorted((i, "running", "unknown") for i in ids)
    unknown = recorder.kinds(EventKind.HEALTH_UNKNOWN)
    assert len(unknown) == 2
    assert "failed 3 times in a row" in unknown[0].detail and "500" in unknown[0].detail
    fake_clock.advance(30)
    await monitor.sweep_once()
    assert len(recorder.kinds(EventKind.HEALTH_UNKNOWN)) == 2
    assert all(sim.calls[("restart", i)] == 0 for i in ids)
    assert sorted(recorder.calls) == sorted((i, "unknown", None) for i in ids)

    sim.set_faults()
    fake_clock.advance(30)
    await monitor.sweep_once()
    recovered = recorder.kinds(EventKind.RECOVERED)
    assert sorted(e.instance_id for e in recovered) == sorted(ids)
    assert recovered[0].detail == "health check answers again"


async def test_inline_health_needs_no_health_calls(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    store: Database | None,
) -> None:
    ids = sim.seed_instances(4)
    sim.inline_health = True
    monitor = make_monitor(store)
    await monitor.sweep_once()
    sim.stop_heartbeat(ids[2])
    fake_clock.advance(95)
    report = await monitor.sweep_once()
    assert report.restarted == [ids[2]]
    assert all(sim.calls[("health", i)] == 0 for i in ids)
    assert sim.calls[("list", "")] == 2


async def test_a_storm_is_one_event_and_no_restarts(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    store: Database | None,
) -> None:
    ids = sim.seed_instances(10)
    monitor = make_monitor(store)
    await monitor.sweep_once()
    for instance_id in ids[:6]:
        sim.stop_heartbeat(instance_id)
    for _ in range(3):
        fake_clock.advance(100)
        report = await monitor.sweep_once()
        assert report.storm and report.restarted == []
    storms = recorder.kinds(EventKind.STORM)
    assert len(storms) == 1
    assert sorted(storms[0].stale_ids) == sorted(ids[:6])
    assert "6 of 10 running instances" in storms[0].detail
    assert all(sim.calls[("restart", i)] == 0 for i in ids)
    # Status changes are still recorded and announced, one per instance.
    assert sorted(c[0] for c in recorder.calls) == sorted(ids[:6])
    assert monitor.status().stale_count == 6

    # Below the storm threshold, the remaining stale instances are restarted one by one.
    for instance_id in ids[:2]:
        sim.resume_heartbeat(instance_id)
    fake_clock.advance(30)
    report = await monitor.sweep_once()
    assert not report.storm
    assert sorted(report.restarted) == sorted(ids[2:6])


async def test_the_storm_rule_is_configurable(
    sim: BackendSimulator, fake_clock: FakeClock, make_monitor: MakeMonitor, recorder: Recorder
) -> None:
    ids = sim.seed_instances(4)
    monitor = make_monitor().with_storm(2, 0.5)
    await monitor.sweep_once()
    sim.stop_heartbeat(ids[0])
    sim.stop_heartbeat(ids[1])
    fake_clock.advance(100)
    report = await monitor.sweep_once()
    assert report.storm and report.restarted == []


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_the_restart_guard_skips_muted_instances_silently(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    asynchronous: bool,
) -> None:
    ids = sim.seed_instances(3)
    muted = {ids[0]}

    def guard(instance_id: str) -> bool:
        return instance_id not in muted

    async def async_guard(instance_id: str) -> bool:
        return guard(instance_id)

    monitor = make_monitor().with_restart_guard(async_guard if asynchronous else guard)
    await monitor.sweep_once()
    sim.stop_heartbeat(ids[0])
    sim.stop_heartbeat(ids[1])
    fake_clock.advance(100)
    report = await monitor.sweep_once()
    assert report.restarted == [ids[1]]
    assert sim.calls[("restart", ids[0])] == 0
    # The muted instance's staleness is still announced; its restart is simply not done.
    assert sorted(c[0] for c in recorder.calls) == sorted(ids[:2])
    restart_events = [e for e in recorder.events if e.kind.startswith("restart")]
    assert {e.instance_id for e in restart_events} == {ids[1]}


async def test_a_failed_restart_is_recorded_and_counts_toward_the_budget(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    store: Database | None,
) -> None:
    ids = sim.seed_instances(3)
    monitor = make_monitor(store)
    await monitor.sweep_once()
    sim.stop_heartbeat(ids[0])
    sim.set_faults(error_rate=1.0, endpoints=["restart"])
    fake_clock.advance(100)
    report = await monitor.sweep_once()
    assert report.restart_failed == [ids[0]] and report.restarted == []
    failed = recorder.kinds(EventKind.RESTART_FAILED)
    assert len(failed) == 1 and "500" in failed[0].detail and failed[0].attempt == 1
    fake_clock.advance(30)
    report = await monitor.sweep_once()
    assert report.restart_failed == [] and sim.calls[("restart", ids[0])] == 1
    assert recorder.kinds(EventKind.RESTART_DEFERRED)[0].attempt == 2


async def test_instances_with_unusual_statuses_are_recorded_raw(
    sim: BackendSimulator, fake_clock: FakeClock, make_monitor: MakeMonitor, recorder: Recorder
) -> None:
    ids = sim.seed_instances(2)
    monitor = make_monitor()
    await monitor.sweep_once()
    sim.set_status(ids[1], "provisioning")
    sim.set_variant(capitalised_status=True)
    fake_clock.advance(30)
    report = await monitor.sweep_once()
    # "Running" is the same status as "running"; an unknown one is kept as sent (lower case).
    assert report.changes == [(ids[1], "running", "provisioning")]
    assert sim.calls[("health", ids[1])] == 1


async def test_status_and_configuration(
    sim: BackendSimulator, fake_clock: FakeClock, make_monitor: MakeMonitor
) -> None:
    sim.seed_instances(3)
    monitor = make_monitor().with_interval(timedelta(seconds=10))
    monitor.with_heartbeat_timeout(timedelta(seconds=20)).with_health_concurrency(2)
    status = monitor.status()
    assert status.last_sweep_at is None and status.instances_tracked == 0 and status.is_leader
    await monitor.sweep_once()
    status = monitor.status()
    assert status.last_sweep_at is not None and status.last_sweep_at.timestamp() == fake_clock()
    assert status.instances_tracked == 3 and status.backend_reachable and not status.standing_by
    assert status.last_sweep_secs is not None and status.last_error is None
    with pytest.raises(ValueError):
        monitor.with_interval(timedelta(0))
    with pytest.raises(ValueError):
        monitor.with_health_concurrency(0)
