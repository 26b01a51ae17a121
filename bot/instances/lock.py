"""One action per instance at a time, across every replica: a lease row in the database.

Taking the lock is one short transaction that works the same on SQLite and PostgreSQL:

1. ``INSERT … ON CONFLICT DO NOTHING RETURNING`` — the instance was free: ours;
2. else ``UPDATE … WHERE expires_at <= now RETURNING`` — the lease was left by a replica
   that died mid-action (or hung past the lease's time): taken over;
3. else the row names who holds it: :class:`~bot.instances.outcome.Holder`.

On PostgreSQL two replicas inserting at once meet on the primary key: the second waits
for the first to commit, then finds the row. On SQLite the transaction is
``BEGIN IMMEDIATE`` (see :class:`~bot.store.database.Database`), so they queue. Releasing
deletes the row only if it is still this acquisition's (its ``token``): a lease that
expired and was taken over is not ours to delete.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.instances.actor import Actor, Verb
from bot.instances.outcome import Holder
from bot.store.database import Database
from bot.store.dialects import insert_for
from bot.store.leader import default_holder
from bot.store.models import InstanceLease

log = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(minutes=3)
# A lease released between our insert and our read: look again, a few times at most.
_ATTEMPTS = 3


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Lease:
    """This process's hold on one instance; pass it back to :meth:`InstanceLocks.release`."""

    instance_id: str
    token: str
    verb: str
    acquired_at: datetime


class InstanceLocks:
    """Per-instance leases in ``db``, held under the name ``holder`` (this replica).

    ``ttl`` must cover the longest action (the backend call and the wait for its outcome):
    a lease older than that is taken to be left by a dead replica and is taken over.
    """

    def __init__(
        self,
        db: Database,
        *,
        holder: str | None = None,
        ttl: timedelta = DEFAULT_TTL,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        self.db = db
        self.holder = (holder or default_holder())[:255]
        self.ttl = ttl
        self._clock = clock

    def __repr__(self) -> str:
        return f"InstanceLocks(holder={self.holder!r}, ttl={self.ttl})"

    def _insert(self) -> Any:
        return insert_for(self.db.dialect, InstanceLease)

    async def acquire(
        self, instance_id: str, verb: Verb, actor: Actor, *, ttl: timedelta | None = None
    ) -> Lease | Holder:
        """Take the lease on ``instance_id``; the :class:`Holder` when someone else has it.

        ``ttl`` overrides the default lifetime for an action known to take longer.
        """
        lifetime = self.ttl if ttl is None else ttl
        for _ in range(_ATTEMPTS):
            now = self._clock()
            token = uuid.uuid4().hex
            values = {
                "token": token,
                "holder": self.holder,
                "verb": verb.value,
                "source": actor.source.value,
                "actor": actor.stored_id,
                "acquired_at": now,
                "expires_at": now + lifetime,
            }

            async def take(session: AsyncSession, values: dict[str, Any] = values) -> Any:
                inserted = await session.scalar(
                    self._insert()
                    .values(instance_id=instance_id, **values)
                    .on_conflict_do_nothing(index_elements=["instance_id"])
                    .returning(InstanceLease.token)
                )
                if inserted is not None:
                    return None
                expired = await session.execute(
                    update(InstanceLease)
                    .where(InstanceLease.instance_id == instance_id)
                    .where(InstanceLease.expires_at <= values["acquired_at"])
                    .values(**values)
                    .returning(InstanceLease.holder)
                )
                if expired.first() is not None:
                    return "taken over"
                row = (
                    await session.execute(
                        select(InstanceLease).where(InstanceLease.instance_id == instance_id)
                    )
                ).scalar_one_or_none()
                if row is None:
                    return "released meanwhile"
                return Holder(
                    verb=row.verb,
                    source=row.source,
                    actor=row.actor,
                    since=row.acquired_at,
                    holder=row.holder,
                )

            outcome = await self.db.run(take)
            if isinstance(outcome, Holder):
                return outcome
            if outcome == "released meanwhile":
                continue
            if outcome == "taken over":
                log.warning("took over the expired lease on %s for a %s", instance_id, verb)
            return Lease(instance_id, token, verb.value, now)
        raise RuntimeError(f"could not take or read the lease on {instance_id}")

    async def release(self, lease: Lease) -> None:
        """Free the instance, if the lease is still ours. Never raises (the lease expires)."""

        async def drop(session: AsyncSession) -> None:
            await session.execute(
                delete(InstanceLease)
                .where(InstanceLease.instance_id == lease.instance_id)
                .where(InstanceLease.token == lease.token)
            )

        try:
            await self.db.run(drop)
        except Exception:
            log.exception("could not release the lease on %s; it expires", lease.instance_id)

    @asynccontextmanager
    async def holding(
        self, instance_id: str, verb: Verb, actor: Actor
    ) -> AsyncIterator[Lease | Holder]:
        """``async with locks.holding(…) as got:`` — a :class:`Lease` (released on exit)
        or the :class:`Holder` that has it (nothing to release)."""
        got = await self.acquire(instance_id, verb, actor)
        try:
            yield got
        finally:
            if isinstance(got, Lease):
                await self.release(got)

    def age(self, holder: Holder) -> float:
        """Seconds since ``holder`` took its lease, by this process's clock (never negative)."""
        return max(0.0, (self._clock() - holder.since).total_seconds())
