"""Does the database still take writes? One small write ``/readyz`` and ``/starpod status`` ask.

A database that answers ``SELECT 1`` may still refuse every write: a full disk, a
read-only file or volume, a PostgreSQL server in read-only mode. The probe rewrites one
row of ``leader_lease`` named :data:`PROBE_NAME` (never a real lease: leadership reads
only its own name), so the answer costs one small transaction.

A write that only waited on a lock (another writer held it) is not a refusal: the
database takes writes, it was busy.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.database import Database, is_transient
from bot.store.errors import DatabaseBusyError
from bot.store.models import LeaderLease

log = logging.getLogger(__name__)

PROBE_NAME = "write-probe"


async def write_refusal(db: Database, *, holder: str = "readiness") -> str | None:
    """None when a write commits, else why the database refused it (naming the database)."""
    now = datetime.now(UTC)

    async def write(session: AsyncSession) -> None:
        row = await session.get(LeaderLease, PROBE_NAME)
        if row is None:
            session.add(
                LeaderLease(
                    name=PROBE_NAME, holder=holder, acquired_at=now, renewed_at=now, expires_at=now
                )
            )
        else:
            row.holder, row.renewed_at, row.expires_at = holder, now, now

    try:
        await db.run(write, attempts=1)
    except DatabaseBusyError:
        return None
    except DBAPIError as exc:
        if is_transient(exc, db.dialect):
            return None
        log.warning("write probe: %s refuses writes: %s", db.safe_url, exc.orig)
        return f"{db.safe_url} refuses writes: {exc.orig}"
    return None
