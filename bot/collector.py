"""Full garbage collections when the Slack loop is idle, not in the middle of a sweep.

CPython starts a full (generation 2) collection by itself whenever enough objects have
survived the younger generations. During a sweep of 10,000 instances that is mid-sweep,
with the sweep's whole working set alive: 23-181 ms under the interpreter lock, and every
Slack acknowledgement in flight waits (BENCHMARKS.md, "Slack first": the ack p99 during
sweeps 2.10x idle; 0.95x with the garbage collector off). The sweep has its own loop and
thread (bot.monitor.own_loop), but threads share the lock, so the pause hits both loops.

:class:`IdleCollector` takes the full collections over. While it runs, CPython's automatic
full collections are off (generations 0 and 1, cheap and frequent, stay automatic). A
thread of its own, ``starpod-gc``, runs ``gc.collect(2)``:

- after each sweep (it is a sweep observer, ``HealthMonitor.on_sweep``), when the sweep's
  working set is garbage already and the collection walks little;
- at least every ``every_secs`` (a replica standing by sweeps nothing), and at most once
  per ``min_gap_secs``;
- each time only once the Slack loop is idle (bot.priority), waiting ``max_wait_secs`` at
  most: a stream of requests delays a collection, never prevents it.

Once a sweep has recorded the fleet, its collection also freezes the heap (``gc.freeze``):
what the monitor keeps for every instance is long-lived, and frozen objects are not walked
by any later collection. Frozen objects are still freed when their last reference goes;
only a cycle among them waits for the thaw (the runtime thaws at close).

::

    collector = IdleCollector(precedence_of(loop))
    monitor.on_sweep(collector)
    collector.start()        # the runtime: after the start-up heap is frozen
    ...
    await collector.aclose()

The thresholds are the process's: several collectors (tests start several runtimes in one
process) share one change, counted, and the last to stop restores what was there before.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import threading
import time
from typing import Protocol

from bot.priority import DEFAULT_MAX_WAIT_SECS, Precedence

log = logging.getLogger(__name__)

#: The generation 2 threshold that never comes: gen-1 collections to wait for (a C int).
NO_AUTOMATIC_FULL = 2**31 - 1
#: A full collection at least this often, sweep or not.
EVERY_SECS = 30.0
#: A full collection at most this often, however many sweeps end.
MIN_GAP_SECS = 1.0
#: How long a stop waits for the thread (a collection in progress finishes first).
JOIN_SECS = 5.0
#: Waiting for an idle Slack loop is done in slices this long, so a stop is seen between.
PARK_SLICE_SECS = 0.01


class _Sweep(Protocol):
    """What the collector reads of a :class:`bot.monitor.SweepReport`."""

    @property
    def swept(self) -> bool: ...
    @property
    def instances(self) -> int: ...
    @property
    def backend_error(self) -> str | None: ...


class _Schedule:
    """CPython's automatic full collections, off while any collector runs (counted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: tuple[int, int, int] | None = None

    def take(self) -> None:
        with self._lock:
            if self._users == 0:
                self._saved = gc.get_threshold()
                young, middle, _ = self._saved
                gc.set_threshold(young, middle, NO_AUTOMATIC_FULL)
            self._users += 1

    def give_back(self) -> None:
        with self._lock:
            if self._users <= 0:
                raise RuntimeError("the full collection schedule was given back once too often")
            self._users -= 1
            if self._users == 0 and self._saved is not None:
                gc.set_threshold(*self._saved)
                self._saved = None


_SCHEDULE = _Schedule()


class IdleCollector:
    """Full collections on a thread of their own, when the Slack loop is idle; see the module.

    ``gate`` is the Slack loop's precedence (None: nothing to wait for). With
    ``take_schedule=False`` CPython keeps its automatic full collections and the collector
    only freezes the recorded fleet (one collection, then none: the benchmark's baseline).
    """

    def __init__(
        self,
        gate: Precedence | None = None,
        *,
        every_secs: float = EVERY_SECS,
        min_gap_secs: float = MIN_GAP_SECS,
        max_wait_secs: float = DEFAULT_MAX_WAIT_SECS,
        take_schedule: bool = True,
    ) -> None:
        if every_secs <= 0 or min_gap_secs < 0 or max_wait_secs <= 0:
            raise ValueError("every_secs and max_wait_secs must be positive, min_gap_secs >= 0")
        self.gate = gate
        self.take_schedule = take_schedule
        self._every = every_secs
        self._min_gap = min_gap_secs
        self._max_wait = max_wait_secs
        self._cond = threading.Condition()
        self._wanted = False
        self._freeze_wanted = False
        self._froze = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        #: Full collections done, the seconds they took in all, and the objects they freed.
        self.collections = 0
        self.collected_secs = 0.0
        self.freed = 0
        #: Collections that found the Slack loop busy for ``max_wait_secs`` and went ahead.
        self.waits_timed_out = 0
        #: True while the thread waits for the Slack loop to be idle.
        self.parked = False
        #: How many objects the freeze left frozen, once it happened.
        self.frozen: int | None = None

    def __repr__(self) -> str:
        return f"IdleCollector(running={self.running}, collections={self.collections})"

    @property
    def running(self) -> bool:
        """True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Turn CPython's automatic full collections off and start the thread."""
        if self._thread is not None or self._stopping:
            raise RuntimeError("this IdleCollector was already started or closed")
        if self.take_schedule:
            _SCHEDULE.take()
        self._thread = threading.Thread(target=self._main, name="starpod-gc", daemon=True)
        self._thread.start()

    async def aclose(self) -> None:
        """End the thread (a collection in progress finishes) and restore the schedule.

        Idempotent; a collector never started only refuses to start from then on.
        """
        with self._cond:
            closed, self._stopping = self._stopping, True
            self._cond.notify_all()
        thread = self._thread
        if thread is None or closed:
            return
        try:
            await asyncio.to_thread(thread.join, JOIN_SECS)
            if thread.is_alive():
                log.warning("the collector thread did not end within %.0f s", JOIN_SECS)
        finally:
            if self.take_schedule:
                _SCHEDULE.give_back()

    def request(self) -> None:
        """Ask for a full collection soon (thread-safe; requests in between coalesce)."""
        with self._cond:
            self._wanted = True
            self._cond.notify_all()

    def __call__(self, report: _Sweep) -> None:
        """The sweep observer: collect after a sweep, freeze after the first that recorded."""
        if not report.swept:
            return  # a standby round allocated next to nothing
        with self._cond:
            if not self._froze and report.backend_error is None and report.instances > 0:
                self._froze = self._freeze_wanted = True
            if self.take_schedule or self._freeze_wanted:
                self._wanted = True
                self._cond.notify_all()

    # -- the thread --------------------------------------------------------------------------

    def _main(self) -> None:
        due = self._next_due()
        while True:
            with self._cond:
                while not (self._stopping or self._wanted) and time.monotonic() < due:
                    self._cond.wait(None if math.isinf(due) else due - time.monotonic())
                if self._stopping:
                    return
            if not self._wait_for_idle():
                return
            with self._cond:
                # Taken now, after the wait: a sweep that ended meanwhile is served by this one.
                self._wanted = False
                freeze, self._freeze_wanted = self._freeze_wanted, False
            try:
                self._collect(freeze)
            except Exception:  # the thread outlives any one failure: collections must go on
                log.exception("full garbage collection failed")
            due = self._next_due()
            with self._cond:
                if self._cond.wait_for(lambda: self._stopping, self._min_gap):
                    return

    def _next_due(self) -> float:
        # Left to CPython, full collections need no schedule of ours.
        return time.monotonic() + self._every if self.take_schedule else float("inf")

    def _wait_for_idle(self) -> bool:
        """Wait until the Slack loop is idle, ``max_wait_secs`` at most; False: stopping."""
        gate = self.gate
        if gate is None:
            return True
        deadline = time.monotonic() + self._max_wait
        self.parked = True
        try:
            while not gate.idle_within(min(PARK_SLICE_SECS, max(0.0, deadline - time.monotonic()))):
                if self._stopping:
                    return False
                if time.monotonic() >= deadline:
                    self.waits_timed_out += 1
                    break
        finally:
            self.parked = False
        return not self._stopping

    def _collect(self, freeze: bool) -> None:
        started = time.perf_counter()
        freed = gc.collect(2)
        secs = time.perf_counter() - started
        if freeze:
            gc.freeze()
            self.frozen = gc.get_freeze_count()
            log.debug("heap frozen after the first recorded sweep: %d objects", self.frozen)
        self.freed += freed
        self.collected_secs += secs
        # Last: the count says the collection (and its freeze) is done.
        self.collections += 1
