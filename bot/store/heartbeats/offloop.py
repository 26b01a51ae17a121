"""Run heavy store work off the event loop: a worker thread, its own loop, its own engine.

Compaction and retention decode and encode hundreds of thousands of samples; on the
loop that answers Slack that would stall every ack for seconds. :func:`run_off_loop`
opens a second :class:`~bot.store.database.Database` on the same URL inside a worker
thread (SQLite in WAL mode and PostgreSQL both serve several connections) and runs the
work there; the calling loop only awaits the thread. Cancelling the caller asks the work
to stop at its next checkpoint (``stop()`` turns true) and waits for it: a transaction
is never cut in half.

An in-memory SQLite database exists only on its one connection, so there the work runs
on the caller's loop (tests and throw-away demos only).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.store.database import Database

T = TypeVar("T")


async def run_off_loop(
    db: Database, work: Callable[[Database, Callable[[], bool]], Awaitable[T]]
) -> T:
    """``await work(own_db, stop)`` in a worker thread; see the module docstring."""
    if db.dialect == "sqlite" and db.sqlite_path is None:
        return await work(db, lambda: False)
    stop = threading.Event()

    def in_thread() -> T:
        async def main() -> T:
            async with Database(db.url, busy_timeout_ms=db.busy_timeout_ms) as own:
                return await work(own, stop.is_set)

        return asyncio.run(main())

    task = asyncio.ensure_future(asyncio.to_thread(in_thread))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        stop.set()
        # Let the current transaction finish; its result no longer matters to anyone.
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: it is logged by nobody, the caller is gone
        raise
