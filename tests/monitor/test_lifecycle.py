"""start()/send()/stop(), the scheduler jobs and the settings factory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import func, select

from bot.backend.client import InstanceClient
from bot.config import AlertSettings, MonitorSettings
from bot.monitor import EventKind, HealthMonitor, register_jobs
from bot.monitor.jobs import RETENTION_FIRST_DELAY, RETENTION_JOB_ID, run_retention
from bot.monitor.monitor import JOB_ID
from bot.sim.backend import BackendSimulator
from bot.store.database import Database
from bot.store.heartbeats.reads import count_samples
from bot.store.leader import SqliteLeadership
from bot.store.models import HeartbeatHourly

if TYPE_CHECKING:
    from tests.conftest import FakeClock
    from tests.monitor.conftest import Recorder

MakeMonitor = Callable[..., HealthMonitor]


async def _eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_start_sweeps_at_once_and_send_stops_it(
    sim: BackendSimulator, make_monitor: MakeMonitor
) -> None:
    sim.seed_instances(3)
    # An hour-long interval: only the immediate first run happens during the test.
    monitor = make_monitor().with_interval(timedelta(hours=1))
    handle = monitor.start()
    assert monitor.status().running
    await _eventually(lambda: monitor.status().last_sweep_at is not None)
    assert sim.calls[("list", "")] == 1
    with pytest.raises(RuntimeError, match="already started"):
        monitor.start()
    stopping = handle.send()
    assert handle.stop() is stopping  # one stop, however often asked
    await stopping
    assert not monitor.status().running
    assert monitor.status().instances_tracked == 3


def test_start_needs_a_running_loop(client: InstanceClient) -> None:
    with pytest.raises(RuntimeError, match="running event loop"):
        HealthMonitor(client).start()


async def test_stop_lets_a_running_sweep_finish(
    sim: BackendSimulator, make_monitor: MakeMonitor
) -> None:
    sim.seed_instances(2)
    sim.set_faults(latency_secs=0.3, endpoints=["list"])
    monitor = make_monitor()
    sweep = asyncio.create_task(monitor.sweep_once())
    await _eventually(lambda: sim.calls[("list", "")] == 1)
    await monitor.stop(wait=10)
    assert sweep.done() and (sweep.result()).swept and sweep.result().instances == 2


async def test_stop_cancels_a_sweep_that_outlives_the_wait(
    sim: BackendSimulator, make_monitor: MakeMonitor
) -> None:
    sim.seed_instances(1)
    sim.set_faults(latency_secs=30, endpoints=["list"])
    monitor = make_monitor()
    sweep = asyncio.create_task(monitor.sweep_once())
    await _eventually(lambda: sim.calls[("list", "")] == 1)
    await monitor.stop(wait=0.1)
    assert sweep.cancelled()


async def test_register_jobs_adds_the_sweep_and_retention(
    sim: BackendSimulator, make_monitor: MakeMonitor, sqlite_store: Database
) -> None:
    sim.seed_instances(2)
    settings = MonitorSettings(interval_secs=3600)
    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
    monitor = make_monitor(sqlite_store).with_interval(timedelta(hours=1))
    handle = register_jobs(scheduler, monitor=monitor, db=sqlite_store, settings=settings)
    sweep_job, retention_job = scheduler.get_job(JOB_ID), scheduler.get_job(RETENTION_JOB_ID)
    assert sweep_job is not None and retention_job is not None
    assert sweep_job.max_instances == 1 and sweep_job.coalesce
    assert sweep_job.trigger.interval == timedelta(hours=1) and sweep_job.trigger.jitter
    assert retention_job.trigger.interval == timedelta(hours=1)
    # Retention's first run: within a minute of start at the latest...
    assert retention_job.next_run_time <= datetime.now(UTC) + RETENTION_FIRST_DELAY
    retained: list[JobExecutionEvent] = []
    scheduler.add_listener(
        lambda event: retained.append(event) if event.job_id == RETENTION_JOB_ID else None,
        EVENT_JOB_EXECUTED | EVENT_JOB_ERROR,
    )
    scheduler.start()
    try:
        await _eventually(lambda: monitor.status().last_sweep_at is not None)
        # ...and right after the first sweep this replica led, as it does here.
        await _eventually(lambda: bool(retained))
        assert retained[0].exception is None
        await handle.send()
        assert scheduler.get_job(JOB_ID) is None
        assert scheduler.get_job(RETENTION_JOB_ID) is not None  # the runtime owns the rest
    finally:
        scheduler.shutdown(wait=False)


async def test_retention_rolls_up_old_samples_on_the_leader_only(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    sqlite_store: Database,
    utc_clock: Callable[[], datetime],
) -> None:
    sim.seed_instances(3)
    monitor = make_monitor(sqlite_store)
    for _ in range(4):
        await monitor.sweep_once()
        fake_clock.advance(30)
    settings = MonitorSettings(retention_raw_days=7)
    fake_clock.advance(8 * 86_400)
    standby = make_monitor(
        sqlite_store,
        leadership=SqliteLeadership(sqlite_store, holder="x:1:y", ttl=timedelta(minutes=1)),
    )
    assert await run_retention(sqlite_store, settings, monitor=standby, clock=utc_clock) == 0
    assert await run_retention(sqlite_store, settings, monitor=monitor, clock=utc_clock) == 12
    async with sqlite_store.session() as s:
        assert await count_samples(s) == (0, 0)
        assert await s.scalar(select(func.count()).select_from(HeartbeatHourly)) >= 3


async def test_from_settings_applies_every_setting(
    sim: BackendSimulator,
    client: InstanceClient,
    fake_clock: FakeClock,
    utc_clock: Callable[[], datetime],
    recorder: Recorder,
    sqlite_store: Database,
) -> None:
    ids = sim.seed_instances(4)
    settings = MonitorSettings(
        interval_secs=15,
        heartbeat_timeout_secs=40,
        restart_budget=1,
        restart_window_mins=10,
        restart_delays_secs=[0],
        health_concurrency=3,
    )
    alerts = AlertSettings(storm_min_instances=3, storm_share=0.5)
    monitor = HealthMonitor.from_settings(client, sqlite_store, settings, alerts, clock=utc_clock)
    monitor.on_event(recorder.handler)
    assert monitor.interval == timedelta(seconds=15)
    assert monitor.heartbeat_timeout == timedelta(seconds=40)
    await monitor.sweep_once()
    assert monitor.status().is_leader  # a SQLite lease, taken on the first sweep
    sim.stop_heartbeat(ids[0], sticky=True)
    fake_clock.advance(45)
    assert (await monitor.sweep_once()).restarted == [ids[0]]
    fake_clock.advance(15)
    assert (await monitor.sweep_once()).restarted == []  # a budget of one
    exhausted = recorder.kinds(EventKind.RESTART_BUDGET_EXHAUSTED)
    assert len(exhausted) == 1 and "1 times in 10 min" in exhausted[0].detail
    # Three stale of four is a storm with these alert settings.
    for instance_id in ids[1:3]:
        sim.stop_heartbeat(instance_id)
    fake_clock.advance(45)
    assert (await monitor.sweep_once()).storm
    await monitor.stop()


async def test_a_naive_clock_is_refused(client: InstanceClient, sim: BackendSimulator) -> None:
    monitor = HealthMonitor(client).with_clock(lambda: datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        await monitor.sweep_once()


async def test_sweep_observers_see_every_report(
    sim: BackendSimulator, fake_clock: FakeClock, make_monitor: MakeMonitor
) -> None:
    sim.seed_instances(2)
    reports = []

    def broken(_report: object) -> None:
        raise RuntimeError("an observer failing never breaks the sweep")

    monitor = make_monitor().on_sweep(broken).on_sweep(reports.append)
    await monitor.sweep_once()
    sim.set_faults(down=True)
    fake_clock.advance(30)
    await monitor.sweep_once()
    assert [(r.swept, r.instances, r.backend_error is None) for r in reports] == [
        (True, 2, True),
        (True, 0, False),
    ]
