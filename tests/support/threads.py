"""Waiting in a test for another thread's state (a collector thread, a background loop), and
running work in a thread of its own (a per-thread state such as the CPU scheduling)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

WAIT_SECS = 30.0


def wait_until(condition: Callable[[], bool], within: float = WAIT_SECS) -> None:
    """Poll ``condition`` until true (another thread's state), failing after ``within``."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        time.sleep(0.001)


def in_a_thread(work: Callable[[], None]) -> None:
    """Run ``work`` in a thread of its own: on Linux a thread's scheduling policy and
    niceness are its own, so the test process's other threads keep theirs (neither can be
    taken back without privileges)."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # re-raised in the test's thread
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
