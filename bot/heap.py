"""The C heap of a long-running bot: fewer glibc arenas, and freed memory given back.

A sweep of 10,000 instances allocates tens of MB at once (models, health, samples,
statement parameters) and frees them when it ends. glibc's malloc keeps what was freed
inside its heaps for reuse, so the RSS of the process stays at the high-water mark of the
largest sweep, and every thread that allocates while another holds an arena's lock gets
an arena of its own (up to 8 per core), each with its own high-water mark: the sweep's
thread, SQLite's connection threads, the default executor. Measured in BENCHMARKS.md
("Memory of the real bot").

Both remedies are glibc's own calls, made through :mod:`ctypes`:

- :func:`limit_arenas` (``mallopt(M_ARENA_MAX, n)``), once at start, before the threads
  exist: threads share ``n`` arenas;
- :func:`trim` (``malloc_trim(0)``), after a sweep: the free pages of every arena are
  returned to the kernel.

Elsewhere (musl, macOS, Windows) neither call exists and both do nothing and return
False: their allocators have their own policies.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.monitor.reports import SweepReport

log = logging.getLogger(__name__)

#: ``mallopt``'s parameter for the arena count (glibc's malloc.h).
M_ARENA_MAX = -8
#: Arenas the bot's threads share: the Slack loop's, the sweep's, and one for the rest.
ARENA_MAX = 2


class _Glibc(Protocol):
    def mallopt(self, param: int, value: int) -> int: ...
    def malloc_trim(self, pad: int) -> int: ...


@functools.cache
def glibc() -> _Glibc | None:
    """The process's C library when it is glibc, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        # Only glibc has this; musl has mallopt but ignores it, and no malloc_trim.
        libc.gnu_get_libc_version  # noqa: B018
        mallopt, malloc_trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    malloc_trim.argtypes, malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return libc


def limit_arenas(count: int = ARENA_MAX) -> bool:
    """Let the threads created from now on share ``count`` malloc arenas (glibc only).

    True when glibc accepted the setting; False elsewhere. Call it before threads start:
    an arena, once created, is never given up.
    """
    libc = glibc()
    if libc is None:
        return False
    return libc.mallopt(M_ARENA_MAX, count) == 1


def trim() -> bool:
    """Return the free memory of every malloc arena to the kernel (glibc only).

    True when glibc released some; False when there was nothing to release, or elsewhere.
    ctypes releases the interpreter lock for the call, so it can run in a worker thread
    while the event loops go on.
    """
    libc = glibc()
    if libc is None:
        return False
    return libc.malloc_trim(0) == 1


class SweepTrimmer:
    """A sweep observer (``HealthMonitor.on_sweep``) that trims the heap after each sweep.

    The trim runs in a worker thread (a few ms at 10,000 instances) so neither event loop
    waits for it. ``trims`` counts the trims done and ``released`` those that gave memory
    back; :meth:`wait` awaits the one in progress (tests, shutdown).
    """

    def __init__(self, trim_heap: Callable[[], bool] = trim) -> None:
        self._trim = trim_heap
        self._pending: asyncio.Task[None] | None = None
        self.trims = 0
        self.released = 0

    def __call__(self, report: SweepReport) -> None:
        if not report.swept or (self._pending is not None and not self._pending.done()):
            return
        self._pending = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        released = await asyncio.to_thread(self._trim)
        self.trims += 1
        self.released += int(released)

    async def wait(self) -> None:
        """Return once the trim in progress (if any) has finished."""
        if self._pending is not None:
            await asyncio.shield(self._pending)
