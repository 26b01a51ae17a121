"""Slack first: the sweep's loop waits while the loop that answers Slack has work.

Slack gives the bot 3 seconds to acknowledge; a sweep of 10,000 instances is seconds of
Python work. The sweep runs on its own event loop in a thread, but the two threads share
one interpreter lock, and a thread that wants the lock back waits up to 5 ms for it at
every step of reading, parsing and answering a request (BENCHMARKS.md, Slack ack latency).
Threads under one lock cannot be given priorities, so the priority is cooperative, decided
once per loop iteration, where each loop calls its selector:

- the **foreground** loop (Slack, the web server, the gateway) is busy from the moment it
  wakes up with I/O to the moment it next waits for I/O;
- a **background** loop (the sweep) waits, before each of its iterations, until the
  foreground is idle, at most ``max_wait_secs`` (a stream of requests slows the sweep, it
  never stops it). Waiting releases the lock.

::

    precedence = Precedence()
    run_foreground(main(), precedence)   # the CLI: the loop that serves Slack
    ...
    loop = background_loop(precedence_of(asyncio.get_running_loop()))  # the sweep's thread

A loop not made by :func:`foreground_loop` has no precedence (None): background loops
built then never wait (tests, embedders).
"""

from __future__ import annotations

import asyncio
import selectors
import threading
import time
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: How long one background iteration waits at most for the foreground to be idle.
DEFAULT_MAX_WAIT_SECS = 0.05

_Events = list[tuple[selectors.SelectorKey, int]]


class Precedence:
    """Whether the foreground loop has work; thread-safe, counts what background loops waited."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = 0
        self._idle = threading.Event()
        self._idle.set()
        #: Background loops waiting right now.
        self.waiting = 0
        #: Background iterations that waited, and how long in all (seconds).
        self.yields = 0
        self.yielded_secs = 0.0

    def __repr__(self) -> str:
        return f"Precedence(busy={self.busy}, yields={self.yields})"

    @property
    def busy(self) -> bool:
        """True while the foreground has work."""
        return not self._idle.is_set()

    def enter(self) -> None:
        """The foreground has work (until the matching :meth:`leave`)."""
        with self._lock:
            self._busy += 1
            self._idle.clear()

    def leave(self) -> None:
        """That work is done."""
        with self._lock:
            if self._busy <= 0:
                raise RuntimeError("Precedence.leave() without a matching enter()")
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    def idle_within(self, secs: float) -> bool:
        """Block, the interpreter lock released, until the foreground is idle or ``secs``
        passed; True when it is idle on return. Not counted as a background loop's wait
        (bot.collector waits here before a collection)."""
        return self._idle.wait(secs)

    def wait_idle(self, max_wait_secs: float) -> bool:
        """Block, the interpreter lock released, until the foreground is idle or
        ``max_wait_secs`` passed; True when it is idle on return."""
        if self._idle.is_set():
            return True
        start = time.monotonic()
        with self._lock:
            self.waiting += 1
        try:
            return self._idle.wait(max_wait_secs)
        finally:
            with self._lock:
                self.waiting -= 1
                self.yields += 1
                self.yielded_secs += time.monotonic() - start


class _ForegroundSelector(selectors.DefaultSelector):
    """Marks the foreground busy from a wake-up with I/O until the loop next waits."""

    def __init__(self, precedence: Precedence) -> None:
        super().__init__()
        self._precedence = precedence
        self._busy = False

    def select(self, timeout: float | None = None) -> _Events:
        # A zero timeout means callbacks are still ready to run: still busy.
        if self._busy and timeout != 0:
            self._busy = False
            self._precedence.leave()
        events = super().select(timeout)
        if events and not self._busy:
            self._busy = True
            self._precedence.enter()
        return events

    def close(self) -> None:
        if self._busy:
            self._busy = False
            self._precedence.leave()
        super().close()


class _BackgroundSelector(selectors.DefaultSelector):
    """Lets the foreground's work pass before each iteration of its loop."""

    def __init__(self, precedence: Precedence, max_wait_secs: float) -> None:
        super().__init__()
        self._precedence = precedence
        self._max_wait_secs = max_wait_secs

    def select(self, timeout: float | None = None) -> _Events:
        self._precedence.wait_idle(self._max_wait_secs)
        return super().select(timeout)


_FOREGROUND: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Precedence] = (
    weakref.WeakKeyDictionary()
)


def foreground_loop(precedence: Precedence) -> asyncio.AbstractEventLoop:
    """A new event loop that marks ``precedence`` busy while it has work."""
    loop = asyncio.SelectorEventLoop(_ForegroundSelector(precedence))
    _FOREGROUND[loop] = precedence
    return loop


def background_loop(
    precedence: Precedence, *, max_wait_secs: float = DEFAULT_MAX_WAIT_SECS
) -> asyncio.AbstractEventLoop:
    """A new event loop whose every iteration first lets the foreground's work pass."""
    if max_wait_secs <= 0:
        raise ValueError("max_wait_secs must be positive")
    return asyncio.SelectorEventLoop(_BackgroundSelector(precedence, max_wait_secs))


def precedence_of(loop: asyncio.AbstractEventLoop) -> Precedence | None:
    """The precedence ``loop`` marks when it is a foreground loop, else None."""
    return _FOREGROUND.get(loop)


def run_foreground(main: Coroutine[Any, Any, T], precedence: Precedence | None = None) -> T:
    """``asyncio.run(main)`` on a foreground loop (a new :class:`Precedence` by default)."""
    marks = precedence or Precedence()
    with asyncio.Runner(loop_factory=lambda: foreground_loop(marks)) as runner:
        return runner.run(main)
