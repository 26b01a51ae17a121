"""Failed gateway authentication: rate limited per client, audited in aggregate.

Every request without a valid ``X-API-Key`` used to write its own audit row (with up to
500 characters of path): 200 of them filled a 2 MB volume. Now :class:`AuthFailures`
counts them per client address and minute:

- the audit log gets **one row per client per minute** (action ``auth_failed``, result
  ``refused``, the client and the count in its detail, no path). The row is inserted at
  the first failure and its count rewritten in place, at most once per
  ``write_every_secs`` per client, and once more when the client's next minute begins
  (so a client that stops may leave its last second of failures uncounted);
- past ``limit`` wrong keys in a minute, the client's requests answer **429** with
  ``Retry-After`` (the seconds left in the minute) before any key is looked at, valid or
  not, so a key cannot be guessed faster than ``limit`` a minute. A request with no key
  at all guesses nothing: it is counted in the row but not against the limit (a browser
  or a probe without a key is not locked out by its own 401s).

The client is the peer address of the connection (a forwarded-for header is the
caller's to forge). An attacker with many addresses (an IPv6 prefix holds billions) gets
at most ``max_rows_per_minute`` rows a minute: past that, every further client's refusals
are counted in one shared row for the minute. At most :data:`MAX_CLIENTS` clients are
remembered at once; past that the oldest minutes are forgotten first.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.store.audit import AuditLog

#: Wrong keys a client may present in one minute before it is answered 429.
DEFAULT_LIMIT = 10
#: Shortest time between two rewrites of one row (seconds).
WRITE_EVERY_SECS = 1.0
#: Rows opened per minute for single clients; the clients past it share one row.
MAX_ROWS_PER_MINUTE = 100
#: Clients remembered at once (each a few hundred bytes).
MAX_CLIENTS = 10_000
#: How a client address may appear in a row.
MAX_CLIENT_CHARS = 64
ACTION = "auth_failed"


def minute_of(at: datetime) -> datetime:
    """The start of the minute containing ``at``."""
    return at.replace(second=0, microsecond=0)


@dataclass(slots=True)
class _Row:
    """One audit row: the refused requests of one client (or of the overflow) in a minute."""

    client: str | None  # None: the clients past the minute's row budget
    start: datetime
    count: int = 0  # refused requests: no key, a wrong key, or a 429
    guesses: int = 0  # of which presented a wrong key
    throttled: int = 0  # of which answered 429
    clients: int = 1
    recorded: int = 0  # the count the audit row says
    row_id: int | None = None
    written_at: datetime | None = None

    def detail(self) -> str:
        who = self.client if self.client is not None else f"{self.clients} more client(s)"
        return (
            f"{self.count} refused gateway request(s) from {who} "
            f"in the minute from {self.start:%Y-%m-%d %H:%M} UTC"
            f" ({self.guesses} wrong keys, {self.throttled} answered 429)"
        )


@dataclass(slots=True)
class _Minute:
    """One client's minute: its wrong keys (the limit counts these) and its audit row."""

    client: str
    start: datetime
    row: _Row
    guesses: int = 0


class AuthFailures:
    """Per-client counts of failed gateway authentications (see the module docstring)."""

    def __init__(
        self,
        *,
        limit: int = DEFAULT_LIMIT,
        write_every_secs: float = WRITE_EVERY_SECS,
        max_rows_per_minute: int = MAX_ROWS_PER_MINUTE,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        if limit < 1 or max_rows_per_minute < 1:
            raise ValueError("limit and max_rows_per_minute must be at least 1")
        self.limit = limit
        self._write_every = timedelta(seconds=write_every_secs)
        self._max_rows = max_rows_per_minute
        self._max_clients = max_clients
        self._minutes: dict[str, _Minute] = {}
        # The minute rows are being opened in, how many, and its shared overflow row.
        self._window: datetime | None = None
        self._opened = 0
        self._overflow: _Row | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"AuthFailures(limit={self.limit}/min, {len(self._minutes)} clients)"

    @staticmethod
    def client_of(host: str | None) -> str:
        """How ``host`` (the peer address) is named in rows: bounded, never empty."""
        return (host or "unknown")[:MAX_CLIENT_CHARS]

    def retry_after(self, client: str, now: datetime) -> int | None:
        """Seconds until ``client`` may try again, or None when it is not throttled."""
        minute = self._minutes.get(client)
        if minute is None or minute.start != minute_of(now) or minute.guesses < self.limit:
            return None
        left = (minute.start + timedelta(minutes=1) - now).total_seconds()
        return max(1, math.ceil(left))

    async def refused(
        self,
        client: str,
        now: datetime,
        audit: AuditLog,
        *,
        guessed: bool = False,
        throttled: bool = False,
    ) -> None:
        """Count one refused request of ``client`` (``guessed``: it presented a wrong key;
        ``throttled``: it was answered 429) and bring its audit row up to date when due."""
        start = minute_of(now)
        current = self._minutes.get(client)
        ended: _Row | None = None
        if current is None or current.start != start:
            ended = current.row if current is not None else None
            current = _Minute(client, start, row=self._row_for(client, start))
            self._remember(current)
        current.guesses += guessed
        row = current.row
        row.count += 1
        row.guesses += guessed
        row.throttled += throttled
        due: list[_Row] = []
        if ended is not None and ended is not row and ended.count != ended.recorded:
            due.append(ended)  # the last word on the minute that ended
        if row.written_at is None or now - row.written_at >= self._write_every:
            due.append(row)
        if not due:
            return
        async with self._lock:
            for each in due:
                await self._write(each, now, audit)

    def _row_for(self, client: str, start: datetime) -> _Row:
        """The row a client's new minute counts in: its own, or the minute's shared one."""
        if self._window != start:
            self._window, self._opened, self._overflow = start, 0, None
        if self._opened < self._max_rows:
            self._opened += 1
            return _Row(client, start)
        if self._overflow is None:
            self._overflow = _Row(None, start, clients=0)
        self._overflow.clients += 1
        return self._overflow

    async def _write(self, row: _Row, now: datetime, audit: AuditLog) -> None:
        if row.count == row.recorded:  # another call wrote it while this one waited
            return
        count = row.count
        row_id = await audit.tally(
            row.row_id,
            at=now,
            user_id="gateway:unknown",
            action=ACTION,
            result="refused",
            detail=row.detail(),
        )
        if row_id is not None:
            row.row_id, row.recorded = row_id, count
        row.written_at = now

    def _remember(self, minute: _Minute) -> None:
        self._minutes.pop(minute.client, None)
        if len(self._minutes) >= self._max_clients:
            # Dicts keep insertion order: the first entries are the oldest minutes.
            for client in list(self._minutes)[: max(1, self._max_clients // 10)]:
                del self._minutes[client]
        self._minutes[minute.client] = minute
