"""Waiting in a test for another thread's state (a collector thread, a background loop)."""

from __future__ import annotations

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
