"""The sweep on a loop of its own (bot.monitor.own_loop): in its thread, callbacks back home.

Real parts: the backend simulator on this test's loop, a SQLite file (two engines on it:
this loop's and the sweep loop's), the real client created for the sweep loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import TYPE_CHECKING

import pytest

from bot.backend.client import InstanceClient
from bot.monitor import EventKind, HealthMonitor, MonitorEvent
from bot.monitor.own_loop import SweepLoop, call_on
from bot.sim.backend import BackendSimulator
from bot.store.database import Database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from tests.conftest import FakeClock


class Threads:
    """Which thread and loop each hook of the monitor ran on."""

    def __init__(self) -> None:
        self.callbacks: list[tuple[str, int, asyncio.AbstractEventLoop]] = []
        self.handlers: list[tuple[EventKind, int]] = []
        self.guards: list[int] = []

    async def callback(self, instance_id: str, status: str, _health: object) -> None:
        self.callbacks.append((status, threading.get_ident(), asyncio.get_running_loop()))

    async def handler(self, session: AsyncSession | None, event: MonitorEvent) -> None:
        assert session is not None
        self.handlers.append((event.kind, threading.get_ident()))

    def guard(self, _instance_id: str) -> bool:
        self.guards.append(threading.get_ident())
        return False  # never restart: this test is about where things run


@pytest.fixture
async def sweep_loop() -> AsyncIterator[SweepLoop]:
    loop = SweepLoop()
    loop.start()
    yield loop
    await loop.aclose()


async def test_the_sweep_runs_on_its_thread_and_calls_back_on_the_callers_loop(
    fake_clock: FakeClock,
    utc_clock: Callable[[], datetime],
    sqlite_store: Database,
    sweep_loop: SweepLoop,
) -> None:
    threads = Threads()
    async with BackendSimulator(clock=fake_clock, seed=3, transition_secs=0) as sim:
        ids = sim.seed_instances(3)
        client = InstanceClient(sim.url, timeout=5.0, retry_backoff=0)
        db = Database(sqlite_store.url)  # the sweep loop's own engine on the same file
        monitor = (
            HealthMonitor(client, store=db)
            .with_clock(utc_clock)
            .on_status_change(threads.callback)
            .on_event(threads.handler)
            .with_restart_guard(threads.guard)
            .on_own_loop(sweep_loop)
        )
        try:
            assert await monitor.acquire_leadership()
            await monitor.sweep_once()
            sim.stop_heartbeat(ids[0])
            fake_clock.advance(200)
            report = await monitor.sweep_once()
        finally:
            await monitor.stop()
            await sweep_loop.aclose([client.aclose, db.dispose])
    here, main = threading.get_ident(), asyncio.get_running_loop()
    assert report.stale_ids == [ids[0]] and report.restarted == []
    # Deciding and recording ran in the sweep's thread, inside its transaction ...
    assert threads.handlers and {t for _, t in threads.handlers} == {sweep_loop_ident(threads)}
    assert EventKind.STALE in {kind for kind, _ in threads.handlers}
    assert sweep_loop_ident(threads) != here
    # ... the seed's callback and the restart guard on the loop that awaited the sweep.
    assert [(s, t, loop) for s, t, loop in threads.callbacks] == [("error", here, main)]
    assert threads.guards == [here]
    # What the sweep wrote is in the file, seen through this loop's engine.
    async with sqlite_store.session() as session:
        from bot.store.queries import last_statuses

        assert (await last_statuses(session))[ids[0]] == "error"


def sweep_loop_ident(threads: Threads) -> int:
    return threads.handlers[0][1]


async def test_cancelling_the_caller_cancels_the_work_on_the_sweep_loop(
    sweep_loop: SweepLoop,
) -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.create_task(sweep_loop.run(forever()))
    await asyncio.to_thread(started.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(cancelled.wait, 10)


async def test_closing_ends_the_thread_and_cancels_what_still_runs() -> None:
    sweep_loop = SweepLoop(name="starpod-sweep-close-test")
    sweep_loop.start()
    started, cancelled = threading.Event(), threading.Event()

    async def stuck() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    pending = asyncio.run_coroutine_threadsafe(stuck(), sweep_loop.loop)
    await asyncio.to_thread(started.wait, 10)
    await sweep_loop.aclose()
    assert not sweep_loop.running
    assert cancelled.is_set() and pending.cancelled()
    assert "starpod-sweep-close-test" not in {t.name for t in threading.enumerate()}


async def test_a_call_home_to_a_closed_loop_fails_clearly(sweep_loop: SweepLoop) -> None:
    gone = asyncio.new_event_loop()
    gone.close()

    async def from_the_sweep_loop() -> object:
        return await call_on(gone, lambda: "never")

    with pytest.raises(RuntimeError, match="closed"):
        await sweep_loop.run(from_the_sweep_loop())


async def test_a_sweep_loop_must_be_started_once(sweep_loop: SweepLoop) -> None:
    with pytest.raises(RuntimeError, match="already started"):
        sweep_loop.start()
    with pytest.raises(RuntimeError, match="not started"):
        _ = SweepLoop().loop
