"""The sweep's own event loop, in a thread of its own.

A sweep of 10,000 instances is seconds of Python work (HTTP, JSON, deciding, writing). On
the loop that serves Slack, every acknowledgement waits behind it (BENCHMARKS.md, Slack ack
latency); on a loop of its own it only shares the interpreter, and with a ``gate`` each
iteration of its loop first lets the Slack loop's work pass (bot.priority).

::

    sweep_loop = SweepLoop()
    sweep_loop.start()
    report = await sweep_loop.run(monitor_work())   # awaited from the Slack loop
    await sweep_loop.aclose(closers)                # closes the thread's resources there

What runs on the sweep loop must own its loop-bound resources (an aiohttp session, a
database engine's connections), so the runtime gives the monitor a backend client and a
database of its own. Calls the other way, from the sweep to code that belongs to the
Slack loop (status-change callbacks, the restart guard), go through :func:`call_on`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from bot.priority import Precedence, background_loop

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long closing waits for the thread to end once its loop is told to stop.
JOIN_SECS = 5.0


class SweepLoop:
    """An asyncio loop running in a daemon thread; coroutines are handed to it with :meth:`run`."""

    def __init__(self, name: str = "starpod-sweep", *, gate: Precedence | None = None) -> None:
        self.name = name
        #: The Slack loop's precedence: each iteration of this loop lets its work pass first.
        self.gate = gate
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def __repr__(self) -> str:
        return f"SweepLoop({self.name!r}, running={self.running})"

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`aclose`."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The thread's loop (started)."""
        if self._loop is None:
            raise RuntimeError("the sweep loop is not started")
        return self._loop

    def start(self) -> None:
        """Start the thread and its loop; returns once the loop runs."""
        if self._thread is not None:
            raise RuntimeError("this SweepLoop was already started")
        self._loop = asyncio.new_event_loop() if self.gate is None else background_loop(self.gate)
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
        finally:
            # Whatever is still pending (a sweep cancelled at shutdown) ends here, in its loop.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the sweep loop and await its result from the calling loop.

        Cancelling the caller cancels ``coro`` on the sweep loop as well.
        """
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wrap_future(future)

    async def aclose(self, closers: Sequence[Callable[[], Awaitable[object]]] = ()) -> None:
        """Run ``closers`` on the sweep loop (its client, its database), then end the thread."""
        if self._thread is None or self._loop is None:
            return
        if self.running:
            for closer in closers:
                try:
                    await self.run(_awaited(closer))
                except Exception:  # the others and the thread must still close
                    log.exception("closing a resource of the sweep loop failed")
            self._loop.call_soon_threadsafe(self._loop.stop)
        thread = self._thread
        await asyncio.to_thread(thread.join, JOIN_SECS)
        if thread.is_alive():
            log.warning("the sweep thread did not end within %.0f s", JOIN_SECS)


async def _awaited(fn: Callable[[], Awaitable[object]]) -> object:
    return await fn()


async def call_on(loop: asyncio.AbstractEventLoop | None, fn: Callable[[], object]) -> object:
    """Call ``fn`` (sync, or returning an awaitable) on ``loop`` and return its result.

    Directly when ``loop`` is None or the running loop; otherwise handed over thread-safely
    (``run_coroutine_threadsafe``) and awaited from here. Exceptions come back as raised.
    """
    if loop is None or loop is asyncio.get_running_loop():
        result = fn()
        return await result if inspect.isawaitable(result) else result

    async def invoke() -> object:
        result = fn()
        return await result if inspect.isawaitable(result) else result

    coro = invoke()
    try:
        future = asyncio.run_coroutine_threadsafe(coro, loop)
    except RuntimeError:  # that loop is closed: the process is stopping
        coro.close()
        raise
    return await asyncio.wrap_future(future)
