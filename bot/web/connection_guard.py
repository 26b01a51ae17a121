"""Connections that send nothing, or headers byte by byte, are closed; their number is capped.

uvicorn (h11) waits forever for a new connection's first request and for the rest of a
half-sent header block (``timeout_keep_alive`` only starts after a response), so a few
thousand idle or slowloris connections hold file descriptors and memory for good. This
h11 protocol adds two things, and nothing else:

- **a header deadline**: a request's headers must be complete within ``header_timeout``
  seconds, counted from the moment the connection opens (a fresh connection) or from the
  first byte of the next request (a kept-alive one, which may otherwise idle for
  ``timeout_keep_alive`` between requests); when it passes, the connection is closed;
- **a connection cap**: past ``max_connections`` open connections, a new one first evicts
  the oldest connection that is not in the middle of a request (idle, or still sending
  headers), so clients that send a whole request at once, such as a health probe, still
  get through while an attacker holds the cap; when every connection is busy with a real
  request, the new one is refused (closed at once).

Use :func:`guarded_h11_protocol` as uvicorn's ``http`` option: each call makes a protocol
class with its own registry of connections, so two servers in one process never mix.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

HEADER_TIMEOUT_SECS = 5.0
MAX_CONNECTIONS = 512
WARN_EVERY_SECS = 60.0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and an evicting connection cap."""

    header_timeout: ClassVar[float] = HEADER_TIMEOUT_SECS
    max_connections: ClassVar[int] = MAX_CONNECTIONS
    # Every open connection of this server; True while it waits for a request's headers.
    # Insertion order is the eviction order (oldest first).
    registry: ClassVar[OrderedDict[GuardedH11Protocol, bool]]
    closed_by_guard: ClassVar[dict[str, int]]
    _last_warning: ClassVar[list[float]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        registry = type(self).registry
        if len(registry) >= self.max_connections and not self._evict_oldest_waiting():
            self._close("refused")
            return
        registry[self] = True
        self._arm()

    def data_received(self, data: bytes) -> None:
        waiting = type(self).registry.get(self)
        if waiting and self._header_deadline is None:
            self._arm()  # the first byte of the next request on a kept-alive connection
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle and self in type(self).registry:
            # Headers complete: a request is running; the connection is not evictable.
            self._disarm()
            type(self).registry[self] = False

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self in type(self).registry:
            # Idle between requests: uvicorn's keep-alive timer applies, and it may be evicted.
            type(self).registry[self] = True
            type(self).registry.move_to_end(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        type(self).registry.pop(self, None)
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if type(self).registry.get(self):
            self._close("header timeout")

    def _evict_oldest_waiting(self) -> bool:
        for other, waiting in type(self).registry.items():
            if waiting:
                other._close("evicted at the connection cap")
                return True
        return False

    def _close(self, why: str) -> None:
        type(self).registry.pop(self, None)
        self._disarm()
        counts = type(self).closed_by_guard
        counts[why] = counts.get(why, 0) + 1
        now = time.monotonic()
        last = type(self)._last_warning
        if not last or now - last[0] >= WARN_EVERY_SECS:
            last[:] = [now]
            log.warning("closing connections (latest: %s; so far: %s)", why, counts)
        self.transport.close()


def guarded_h11_protocol(
    *, header_timeout: float = HEADER_TIMEOUT_SECS, max_connections: int = MAX_CONNECTIONS
) -> type[GuardedH11Protocol]:
    """A protocol class for uvicorn's ``http`` option, with its own connection registry."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {
            "header_timeout": header_timeout,
            "max_connections": max_connections,
            "registry": OrderedDict(),
            "closed_by_guard": {},
            "_last_warning": [],
        },
    )
