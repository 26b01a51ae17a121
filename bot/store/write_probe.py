"""Does the database still take writes? One small write ``/readyz`` and ``/starpod status`` ask.

A database that answers ``SELECT 1`` may still refuse every write: a full disk, a
read-only file or volume, a PostgreSQL server in read-only mode. The probe rewrites one
row of ``leader_lease`` named :data:`PROBE_NAME` (never a real lease: leadership reads
only its own name), so the answer costs one small transaction.

On SQLite the probe runs on a connection of its own in a thread, waiting at most
:data:`SQLITE_WAIT_SECS` for the write lock: a long sweep transaction holding the lock must
not make the probe (and so ``/readyz``) time out, nor take a pooled connection. It
inserts and deletes the row in one transaction, so the stored format of no column matters.

A write that only waited on a lock (another writer held it) is not a refusal: the
database takes writes, it was busy. Every answer is recorded in ``db.writes``
(:class:`~bot.store.writability.WriteHealth`): only a committed probe ends a refusal
episode, and the refusal is logged there, once per episode.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.database import Database, is_transient
from bot.store.errors import DatabaseBusyError, StoreUnwritable
from bot.store.models import LeaderLease

PROBE_NAME = "write-probe"
SQLITE_WAIT_SECS = 2.0


def _sqlite_write(path: Path) -> None:
    """One write transaction on the file (raises what SQLite says)."""
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=SQLITE_WAIT_SECS)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT OR REPLACE INTO leader_lease"
            " (name, holder, acquired_at, renewed_at, expires_at) VALUES (?, ?, '', '', '')",
            (PROBE_NAME, "readiness"),
        )
        conn.execute("DELETE FROM leader_lease WHERE name = ?", (PROBE_NAME,))
        conn.execute("COMMIT")
    finally:
        conn.close()


async def _sqlite_refusal(path: Path) -> BaseException | None:
    try:
        await asyncio.to_thread(_sqlite_write, path)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return None  # another writer held the lock: busy, not refusing
        return exc
    except sqlite3.Error as exc:
        return exc
    return None


async def _sql_refusal(db: Database, holder: str) -> BaseException | None:
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
        # A second attempt only for what says nothing about writes: a connection the server
        # ended (a restart, a failover; run retries it on a new one) or a busy database.
        await db.run(write, attempts=2)
    except DatabaseBusyError:
        return None  # it takes writes; another writer was first
    except StoreUnwritable as exc:
        return exc
    except DBAPIError as exc:
        if is_transient(exc, db.dialect):
            return None
        return exc
    return None


async def write_refusal(db: Database, *, holder: str = "readiness") -> str | None:
    """None when a write commits, else why the database refused it (naming the database).

    Every answer goes to ``db.writes``: a refusal begins or continues the episode (logged
    once), a commit ends it.
    """
    if db.sqlite_path is not None:
        refused = await _sqlite_refusal(db.sqlite_path)
    else:
        refused = await _sql_refusal(db, holder)
    if refused is None:
        db.writes.accepted()
        return None
    refusal = refused if isinstance(refused, StoreUnwritable) else db.writes.error(refused)
    db.writes.refused(refusal)
    return str(refusal)
