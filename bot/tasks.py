"""Work the bot started and must let finish before it stops: a small task tracker.

Bolt runs each listener as a task of its own after the acknowledgement, and APScheduler
runs each job as a task of its own; neither offers a public way to wait for them. The
bot's own code registers that work here instead, and shutdown drains it::

    tracker = TaskTracker("slack listeners")
    task = tracker.track(do_the_work())        # a new task, tracked until it ends
    tracker.track_current()                    # or: the running task, until it ends
    await tracker.drain(timeout=10)            # wait, then cancel what is still running

Nothing here knows about Slack or the scheduler, so every layer may use it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class TaskTracker:
    """The set of tasks doing tracked work right now; :meth:`drain` waits for them."""

    def __init__(self, name: str = "work") -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"TaskTracker({self.name!r}, running={len(self._tasks)})"

    def __len__(self) -> int:
        return len(self._tasks)

    def track(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """Run ``coro`` as a new task, tracked until it ends; await the task for its result."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def track_current(self) -> None:
        """Track the running task until it ends (re-entrant; a no-op outside a task).

        For work that already runs in a task someone else created (a Bolt listener, a
        scheduler job): registering it is enough for :meth:`drain` to wait for it.
        """
        task = asyncio.current_task()
        if task is None or task in self._tasks:
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 - a grace period, not a cancel scope
        """Wait up to ``timeout`` s for tracked work to end, then cancel the rest.

        Returns how many tasks had to be cancelled. The calling task is never waited on
        (a tracked job that stops the bot would otherwise wait for itself).
        """
        me = asyncio.current_task()
        pending = {t for t in self._tasks if t is not me and not t.done()}
        if not pending:
            return 0
        log.info("waiting up to %.1f s for %d running %s", timeout, len(pending), self.name)
        _, late = await asyncio.wait(pending, timeout=max(timeout, 0))
        if not late:
            return 0
        log.warning(
            "%d %s still running after %.1f s; cancelling them", len(late), self.name, timeout
        )
        for task in late:
            task.cancel()
        # Let them run their cleanup (finally blocks) before the resources they use close.
        await asyncio.wait(late, timeout=1.0)
        return len(late)
