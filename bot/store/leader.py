"""One leader among replicas: only the leader sweeps and restarts.

APScheduler forbids sharing a job store between schedulers, so replicas elect
a leader through the database they already share:

* PostgreSQL — :class:`PostgresAdvisoryLeadership` holds a session-level
  ``pg_try_advisory_lock`` on a *dedicated* connection. The lock lives exactly
  as long as that connection: when the leader dies its socket closes, the
  server drops the lock, and the next standby to call :meth:`acquire` leads.
  Standbys call ``acquire()`` once per interval, so a takeover happens within
  two intervals.
* SQLite — one process per file. :class:`SqliteLeadership` keeps a lease row
  with an expiry; a second process finds a live lease and is refused
  (:meth:`SqliteLeadership.refusal` builds the :class:`LeadershipRefused` the
  runtime raises). A lease left by a crashed process on this host (its pid is
  gone, or is now ours after a container restart) is taken over at once;
  otherwise it is taken over when it expires.

Usage, before every sweep::

    leadership = leadership_for(db, holder=default_holder(), ttl=3 * interval)
    if await leadership.acquire():   # takes over, or confirms and renews
        await sweep()
    ...
    await leadership.release()       # on shutdown
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from bot.store.database import Database, normalise_url
from bot.store.errors import LeadershipRefused
from bot.store.models import LeaderLease

log = logging.getLogger(__name__)

#: ``lock_key("starpod-bot-monitor")``: the first 8 bytes of its SHA-256, signed.
#: Fixed so that every replica of every version agrees on it.
MONITOR_LOCK_KEY = -5599267259958347366

# Advisory-lock queries on the dedicated connection must answer quickly or
# we assume it is gone (and, with it, the lock).
_PG_TIMEOUT_S = 5.0


def default_holder() -> str:
    """``host:pid:token`` naming this process; the token tells apart equal pids in containers."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@runtime_checkable
class Leadership(Protocol):
    """The leader-election interface the monitor codes against."""

    is_leader: bool

    async def acquire(self) -> bool:
        """Try to lead without waiting; True if we are (or just became) the leader."""
        ...

    async def check(self) -> bool:
        """True if we still lead (verifying the lock or lease is really still ours)."""
        ...

    async def release(self) -> None:
        """Stop leading and free the lock or lease for another replica."""
        ...


class PostgresAdvisoryLeadership:
    """Leadership through a PostgreSQL advisory lock on a dedicated connection.

    The connection is not from the application's pool (a pooled connection
    would be handed to other work and recycled, taking the lock with it). It
    runs in autocommit: no transaction stays open while we lead.
    """

    def __init__(self, url: str, *, key: int = MONITOR_LOCK_KEY, holder: str | None = None) -> None:
        self.url = normalise_url(url)
        if make_url(self.url).get_backend_name() != "postgresql":
            raise ValueError("PostgresAdvisoryLeadership needs a postgresql:// URL")
        self.key = key
        self.holder = holder or default_holder()
        self.is_leader = False
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None
        # pg_locks shows a bigint key as two unsigned 32-bit halves.
        unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
        self._classid, self._objid = unsigned >> 32, unsigned & 0xFFFF_FFFF

    def __repr__(self) -> str:
        return f"PostgresAdvisoryLeadership(key={self.key}, leader={self.is_leader})"

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            self._engine = create_async_engine(
                self.url,
                poolclass=NullPool,
                connect_args={
                    "timeout": _PG_TIMEOUT_S,
                    "server_settings": {
                        "application_name": f"starpod-bot leader {self.holder}"[:63],
                        # A leader cut off by the network loses its lock in
                        # about a minute instead of the kernel's two hours.
                        "tcp_keepalives_idle": "30",
                        "tcp_keepalives_interval": "10",
                        "tcp_keepalives_count": "3",
                    },
                },
            )
            conn = await self._engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def _drop(self) -> None:
        """Forget the connection (and so the lock), quietly: it may already be dead."""
        conn, engine = self._conn, self._engine
        self._conn = self._engine = None
        self.is_leader = False
        try:
            if conn is not None:
                async with asyncio.timeout(_PG_TIMEOUT_S):
                    await conn.close()
        except Exception as exc:  # the socket is often gone already; nothing to save
            log.debug("closing the leader connection failed: %s", exc)
        if engine is not None:
            await engine.dispose()

    async def acquire(self) -> bool:
        """Take the lock if it is free; a leader just re-checks. Never waits for the lock."""
        if self.is_leader:
            return await self.check()
        try:
            async with asyncio.timeout(_PG_TIMEOUT_S):
                conn = await self._connection()
                got = bool(
                    await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
                )
        except Exception as exc:  # an unreachable database means: not the leader
            log.warning("leader election: database unreachable (%s); standing by", exc)
            await self._drop()
            return False
        if got:
            log.info("leader election: this replica is now the leader (%s)", self.holder)
        self.is_leader = got
        return got

    async def check(self) -> bool:
        """True if our connection is alive and still holds the lock."""
        if not self.is_leader or self._conn is None:
            return False
        try:
            async with asyncio.timeout(_PG_TIMEOUT_S):
                held = bool(
                    await self._conn.scalar(
                        text(
                            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                            " AND pid = pg_backend_pid() AND granted"
                            " AND classid = :classid AND objid = :objid AND objsubid = 1)"
                        ),
                        {"classid": self._classid, "objid": self._objid},
                    )
                )
        except Exception as exc:  # a dead connection took the lock with it
            log.warning("leader election: lost the leader connection (%s)", exc)
            held = False
        if not held:
            log.warning("leader election: no longer the leader (%s)", self.holder)
            await self._drop()
        return held

    async def release(self) -> None:
        """Unlock and close the dedicated connection."""
        if self._conn is not None and self.is_leader:
            try:
                async with asyncio.timeout(_PG_TIMEOUT_S):
                    await self._conn.scalar(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": self.key}
                    )
            except Exception as exc:  # closing the connection frees the lock anyway
                log.debug("advisory unlock failed: %s", exc)
        await self._drop()


def _pid_of(holder: str | None) -> int | None:
    """The pid in a ``host:pid[:token]`` holder string, if there is one."""
    parts = (holder or "").split(":")
    if len(parts) >= 2 and parts[1].isdigit():
        return int(parts[1])
    return None


# Holders of the SqliteLeadership objects built in this process. A lease naming our
# own host and pid but none of these was left by an earlier process that had our
# pid: a container restarted in place, where the bot is pid 1 every time.
_HOLDERS_IN_THIS_PROCESS: set[str] = set()


def _holder_is_dead(holder: str) -> bool:
    """True only when ``holder`` is a process on this host that no longer exists."""
    pid = _pid_of(holder)
    if pid is None or holder.split(":", 1)[0] != socket.gethostname():
        return False
    if pid == os.getpid():
        return holder not in _HOLDERS_IN_THIS_PROCESS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, belongs to someone else
        return False
    return False


class SqliteLeadership:
    """A lease row with an expiry: one starpod-bot process per SQLite file.

    ``clock`` is injectable so tests can move past the expiry without sleeping.
    ``ttl`` should cover a few sweep intervals: the lease is renewed by every
    successful :meth:`acquire` or :meth:`check`.
    """

    def __init__(
        self,
        db: Database,
        *,
        holder: str,
        ttl: timedelta,
        name: str = "monitor",
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        self.db = db
        self.holder = holder
        _HOLDERS_IN_THIS_PROCESS.add(holder)
        self.ttl = ttl
        self.name = name
        self._clock = clock
        self.is_leader = False
        #: Who held the lease when we last failed to get it.
        self.current_holder: str | None = None

    def __repr__(self) -> str:
        return f"SqliteLeadership(holder={self.holder!r}, leader={self.is_leader})"

    async def acquire(self) -> bool:
        """Take the lease if it is free, expired or left by a dead local process; renew ours."""
        now = self._clock()

        async def take(session: AsyncSession) -> str | None:
            lease = await session.get(LeaderLease, self.name)
            if lease is None:
                session.add(
                    LeaderLease(
                        name=self.name,
                        holder=self.holder,
                        acquired_at=now,
                        renewed_at=now,
                        expires_at=now + self.ttl,
                    )
                )
                return None
            if lease.holder != self.holder:
                if lease.expires_at > now and not _holder_is_dead(lease.holder):
                    return lease.holder
                log.info("leader election: taking over the lease of %s", lease.holder)
                lease.holder, lease.acquired_at = self.holder, now
            lease.renewed_at, lease.expires_at = now, now + self.ttl
            return None

        other = await self.db.run(take)
        self.current_holder = other or self.holder
        self.is_leader = other is None
        return self.is_leader

    async def check(self) -> bool:
        """Renew our lease; False if another process has taken it (or we never held it)."""
        if not self.is_leader:
            return False
        now = self._clock()

        async def renew(session: AsyncSession) -> bool:
            lease = await session.get(LeaderLease, self.name)
            if lease is None or lease.holder != self.holder:
                self.current_holder = lease.holder if lease else None
                return False
            lease.renewed_at, lease.expires_at = now, now + self.ttl
            return True

        try:
            self.is_leader = await self.db.run(renew)
        except Exception as exc:  # cannot confirm: do not act as leader this round
            log.warning("leader election: could not renew the lease (%s)", exc)
            self.is_leader = False
        return self.is_leader

    async def release(self) -> None:
        """Delete our lease row so the next process starts at once."""

        async def drop(session: AsyncSession) -> None:
            lease = await session.get(LeaderLease, self.name)
            if lease is not None and lease.holder == self.holder:
                await session.delete(lease)

        self.is_leader = False
        await self.db.run(drop)

    def refusal(self) -> LeadershipRefused:
        """The error the runtime raises when :meth:`acquire` said no."""
        path = str(self.db.sqlite_path) if self.db.sqlite_path is not None else ":memory:"
        holder = self.current_holder if self.current_holder != self.holder else None
        return LeadershipRefused(path=path, holder=holder, pid=_pid_of(holder))


def leadership_for(db: Database, *, holder: str, ttl: timedelta) -> Leadership:
    """The leadership that fits ``db``: an advisory lock on PostgreSQL, a lease on SQLite."""
    if db.dialect == "postgresql":
        return PostgresAdvisoryLeadership(db.url, holder=holder)
    return SqliteLeadership(db, holder=holder, ttl=ttl)
