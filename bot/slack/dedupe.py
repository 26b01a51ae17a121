"""Acting once per click, even when Slack delivers the same click twice.

Slack re-sends an interaction it believes was not acknowledged, with the same
``action_ts``; a nervous double tap sends two with different ones. The first case is
caught here (a small TTL set); the second by the instance lease of
:mod:`bot.instances.lock`, which refuses a second action on an instance while one is
running, on any replica.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class ClickDeduper:
    """Remembers click keys for ``ttl`` seconds (at most ``max_keys``, oldest dropped)."""

    def __init__(
        self,
        *,
        ttl: float = 600.0,
        max_keys: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max = max_keys
        self._monotonic = monotonic
        self._seen: OrderedDict[tuple[str, ...], float] = OrderedDict()

    def first_time(self, *key: str) -> bool:
        """True the first time ``key`` is seen within the TTL, False for a repeat."""
        now = self._monotonic()
        while self._seen:
            oldest_key, seen_at = next(iter(self._seen.items()))
            if now - seen_at < self._ttl and len(self._seen) < self._max:
                break
            self._seen.pop(oldest_key)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True
