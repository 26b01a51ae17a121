"""TaskTracker and the tracked scheduler: work registered, waited for, cancelled when late."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bot.scheduling import new_scheduler
from bot.tasks import TaskTracker


async def test_drain_waits_for_tracked_work_to_finish() -> None:
    tracker = TaskTracker("test work")
    release = asyncio.Event()
    finished: list[str] = []

    async def work() -> str:
        await release.wait()
        finished.append("work")
        return "done"

    task = tracker.track(work())
    assert len(tracker) == 1
    # Released only once drain is waiting: drain returns after the work, not before.
    asyncio.get_running_loop().call_soon(release.set)
    assert await tracker.drain(timeout=30) == 0
    assert finished == ["work"] and task.result() == "done" and len(tracker) == 0


async def test_drain_cancels_work_that_outlives_the_grace_period() -> None:
    tracker = TaskTracker()
    never = asyncio.Event()
    task = tracker.track(never.wait())
    assert await tracker.drain(timeout=0.05) == 1
    assert task.cancelled()


async def test_track_current_follows_a_task_someone_else_created_until_it_ends() -> None:
    tracker = TaskTracker()
    release = asyncio.Event()
    registered = asyncio.Event()

    async def listener() -> None:
        tracker.track_current()
        tracker.track_current()  # re-entrant
        registered.set()
        await release.wait()

    task = asyncio.create_task(listener())
    await registered.wait()
    assert len(tracker) == 1
    release.set()
    assert await tracker.drain(timeout=30) == 0
    assert task.done() and len(tracker) == 0


async def test_the_scheduler_drains_a_running_job_without_starting_new_ones() -> None:
    scheduler = new_scheduler()
    started, release = asyncio.Event(), asyncio.Event()
    runs: list[str] = []

    async def job() -> None:
        started.set()
        await release.wait()
        runs.append("finished")

    scheduler.add_job(job, "interval", seconds=3600, next_run_time=datetime.now(UTC), id="j")
    scheduler.start()
    try:
        await started.wait()
        assert len(scheduler.jobs_running) == 1
        asyncio.get_running_loop().call_soon(release.set)
        assert await scheduler.drain(timeout=30) == 0
        assert runs == ["finished"]
        assert scheduler.get_job("j") is not None  # paused, not forgotten
    finally:
        scheduler.shutdown(wait=False)
