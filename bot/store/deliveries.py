"""Acting once per Slack delivery, across replicas: the dedupe key lives in the database.

Slack signs a request with a timestamp and accepts it for five minutes, so a captured
request can be replayed within that window; Slack itself re-delivers a request it thinks
went unanswered (``X-Slack-Retry-Num`` over HTTP, ``retry_attempt`` in a Socket Mode
envelope) with the same payload. Every replica answers Slack, so "seen before" must be
shared: :meth:`DeliveryLog.first_time` inserts the payload's key with a unique
constraint, and only the replica whose insert landed acts.

A key is kept until every copy of its request would be refused by the signature check
anyway (``KEEP_FOR``: the five-minute window on either side of the signing time), then
pruned (at most once a minute per process, in the same transaction as an insert).

While the database refuses writes (full or read-only) the keys are kept in this process's
memory instead, for the same ten minutes: read-only commands keep answering, and a repeat
reaching this replica is still dropped (one reaching another replica is not: the actions
it could repeat need a write themselves, and are refused).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.database import Database
from bot.store.dialects import dialect_insert
from bot.store.errors import StoreUnwritable
from bot.store.slack_models import SlackDelivery

# A request signed at t is accepted while |now - t| <= 300 s, and t may be up to 300 s
# ahead of the clock that first sees it: ten minutes covers every copy.
KEEP_FOR = timedelta(seconds=600)
PRUNE_EVERY_SECS = 60.0


def delivery_key(body: dict[str, Any]) -> str:
    """SHA-256 hex of the payload as Bolt parsed it (the same for every copy of a request).

    Slack puts a fresh ``trigger_id`` (and ``response_url``) in every command and click, so
    two different requests never share a key, while a replay or a retry always does.
    """
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class DeliveryLog:
    """The database's record of Slack deliveries taken in (see the module doc)."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        *,
        keep_for: timedelta = KEEP_FOR,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._clock = clock
        self._keep_for = keep_for
        self._monotonic = monotonic
        self._last_prune: float | None = None
        # Keys taken in while the database refused writes: key → monotonic expiry.
        self._in_memory: dict[str, float] = {}

    async def first_time(self, key: str) -> bool:
        """True for the first delivery of ``key`` on any replica, False for every repeat."""
        now = self._clock()
        prune = self._last_prune is None or self._monotonic() - self._last_prune >= PRUNE_EVERY_SECS
        if prune:
            self._last_prune = self._monotonic()

        async def _claim(session: AsyncSession) -> bool:
            if prune:
                await session.execute(delete(SlackDelivery).where(SlackDelivery.expires_at < now))
            stmt = dialect_insert(session, SlackDelivery).values(
                key=key, seen_at=now, expires_at=now + self._keep_for
            )
            # An expired row not yet pruned is taken over; a live one stops the insert.
            stmt = stmt.on_conflict_do_update(
                index_elements=[SlackDelivery.key],
                set_={"seen_at": now, "expires_at": now + self._keep_for},
                where=SlackDelivery.expires_at < now,
            ).returning(SlackDelivery.key)
            return (await session.execute(stmt)).first() is not None

        try:
            return await self._db.run(_claim)
        except StoreUnwritable:
            return self._first_time_in_memory(key)

    def _first_time_in_memory(self, key: str) -> bool:
        now = self._monotonic()
        self._in_memory = {k: t for k, t in self._in_memory.items() if t > now}
        if key in self._in_memory:
            return False
        self._in_memory[key] = now + self._keep_for.total_seconds()
        return True

    async def prune(self) -> int:
        """Forget every expired key now; returns how many went."""
        now = self._clock()

        async def _prune(session: AsyncSession) -> int:
            result = await session.execute(
                delete(SlackDelivery).where(SlackDelivery.expires_at < now)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

        return await self._db.run(_prune)
