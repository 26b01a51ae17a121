"""Acting once per click, even when Slack delivers the same click twice.

Slack re-sends an interaction it believes was not acknowledged, with the same
``action_ts``; a nervous double tap sends two with different ones. The first case is
caught here (a small TTL set); the second by :class:`InFlight`, which refuses a second
action on an instance while one is running.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


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


@dataclass(frozen=True)
class Running:
    """An action in progress on one instance."""

    verb: str
    actor: str
    started: float


class InFlight:
    """One changing action per instance at a time, in this process."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._running: dict[str, Running] = {}

    def claim(self, instance_id: str, verb: str, actor: str) -> Running | None:
        """Claim ``instance_id``; returns None on success, or what is already running."""
        current = self._running.get(instance_id)
        if current is not None:
            return current
        self._running[instance_id] = Running(verb, actor, self._monotonic())
        return None

    def release(self, instance_id: str) -> None:
        """Free ``instance_id`` for the next action."""
        self._running.pop(instance_id, None)

    def age(self, running: Running) -> float:
        """Seconds since ``running`` started."""
        return self._monotonic() - running.started
