"""Admission control: how many requests do their work at the same time.

Acks never wait here (they happen in middleware, before the listener starts). The work
after the ack does: with at most ``limit`` requests working at once, a burst of commands
queues cheaply instead of flooding the event loop's ready queue, where every callback of
every request would sit between an incoming request and its acknowledgement. Measured
in ``bench/ack_latency.py``: without the limit, a burst of 1,000 `/starpod list` pushed
the bot's ack p99 to 4x a bare Bolt app; with it, the two are alike.

A request that waits on something slow (polling the backend after a restart) gives its
slot back meanwhile with :meth:`WorkSlots.waiting`.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

DEFAULT_LIMIT = 8


class WorkSlots:
    """A semaphore that knows whether the current task holds one of its slots."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._semaphore = asyncio.Semaphore(limit)
        self._held: contextvars.ContextVar[bool] = contextvars.ContextVar(
            "starpod_work_slot", default=False
        )
        self._queued = 0

    @property
    def held(self) -> bool:
        """True when the current task holds a slot."""
        return self._held.get()

    @property
    def queued(self) -> int:
        """How many requests are waiting for a slot right now."""
        return self._queued

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Do the enclosed work in a slot (re-entrant: a holder does not wait again)."""
        if self._held.get():
            yield
            return
        self._queued += 1
        try:
            await self._semaphore.acquire()
        finally:
            self._queued -= 1
        token = self._held.set(True)
        try:
            yield
        finally:
            self._held.reset(token)
            self._semaphore.release()

    @asynccontextmanager
    async def waiting(self) -> AsyncIterator[None]:
        """Give the slot back while waiting (a sleep, a slow poll), then take one again."""
        if not self._held.get():
            yield
            return
        self._semaphore.release()
        token = self._held.set(False)
        try:
            yield
        finally:
            await self._semaphore.acquire()
            self._held.reset(token)
