"""A short shared cache of the fleet list, for resolving references that are not full ids.

A prefix or a name can only be resolved against the whole fleet (9.6 MB at 50,000
instances). Without a cache every such reference, from any caller (a gateway key, a
Slack user, an anonymous-looking script), costs one fleet list. :class:`FleetCache`
keeps the last list for ``ttl`` seconds and lets concurrent misses share one request
(single-flight), so resolving never costs more than one list per ``ttl``, whatever the
rate of calls.

Only membership comes from the cached list: :meth:`bot.backend.client.InstanceClient.resolve`
fetches the picked instance again (one small GET) when the list was not fetched for this
call, so a caller never acts on a status up to ``ttl`` old.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from time import monotonic

from bot.backend.models import Instance

#: How long a fleet list serves references (seconds).
DEFAULT_TTL_SECS = 3.0

Fetch = Callable[[], Awaitable[list[Instance]]]


class FleetCache:
    """The last fleet list for ``ttl`` seconds; concurrent misses share one fetch."""

    def __init__(
        self, fetch: Fetch, *, ttl: float = DEFAULT_TTL_SECS, clock: Callable[[], float] = monotonic
    ) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self._clock = clock
        self._fleet: list[Instance] | None = None
        self._fetched_at = 0.0
        self._inflight: asyncio.Future[list[Instance]] | None = None
        self.fetches = 0  # lists asked of the backend (for tests and metrics)

    def __repr__(self) -> str:
        return f"FleetCache(ttl={self.ttl:g}s)"

    def invalidate(self) -> None:
        """Forget the list (the bot just created or killed an instance)."""
        self._fleet = None

    async def get(self) -> tuple[list[Instance], bool]:
        """The fleet and whether it was fetched for this call (False: served from the cache)."""
        if self._fleet is not None and self._clock() - self._fetched_at < self.ttl:
            return self._fleet, False
        if self._inflight is not None:
            # Someone is already fetching: share their answer (or their error).
            return await asyncio.shield(self._inflight), True
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Instance]] = loop.create_future()
        self._inflight = future
        try:
            self.fetches += 1
            fleet = await self._fetch()
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # nobody else may be waiting: mark it retrieved
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            self._fleet, self._fetched_at = fleet, self._clock()
            future.set_result(fleet)
            return fleet, True
        finally:
            self._inflight = None
