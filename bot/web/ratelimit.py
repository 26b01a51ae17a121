"""A small per-client rate limit (sliding window, in memory, one process)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds per key; tracks at most ``max_keys``."""

    def __init__(
        self,
        *,
        limit: int = 10,
        window: float = 60.0,
        max_keys: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be at least 1 and window positive")
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        self._monotonic = monotonic
        self._hits: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Count a hit for ``key``; False when it is over the limit (the hit is not kept)."""
        now = self._monotonic()
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self._max_keys:
                self._forget_idle(now)
            hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] >= self._window:
            hits.popleft()
        if len(hits) >= self._limit:
            return False
        hits.append(now)
        return True

    def retry_after(self, key: str) -> int:
        """Whole seconds until ``key`` may try again (at least 1)."""
        hits = self._hits.get(key)
        if not hits:
            return 1
        return max(1, int(self._window - (self._monotonic() - hits[0])) + 1)

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, h in self._hits.items() if not h or now - h[-1] >= self._window]
        for key in idle:
            del self._hits[key]
        if len(self._hits) >= self._max_keys:
            # Still full of active keys: drop the oldest half rather than grow without bound.
            for key in list(self._hits)[: self._max_keys // 2]:
                del self._hits[key]
