"""Engine and session factories, the retrying write path, and migrations.

Nothing here runs on import: a :class:`Database` is built by the runtime from
the configured URL and passed down. Every writer goes through
:meth:`Database.run`, which retries the transient failures of both dialects
(a locked SQLite file, a PostgreSQL deadlock or serialization failure, a
PostgreSQL session ended under it before its commit) so a busy or restarting
database delays a write but never loses it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import URL, Connection, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool, StaticPool
from sqlalchemy.util import await_only

from bot.store.errors import (
    DatabaseBusyError,
    DatabaseUnavailable,
    MigrationError,
    UnsupportedDatabaseError,
)
from bot.store.writability import WriteHealth, unwritable

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_URL = "sqlite:///./starpod-bot.db"
DEFAULT_BUSY_TIMEOUT_MS = 5000
# SQLite page cache per connection, KiB (SQLite's default is 2 MiB): a day of one
# instance's samples is ~3,000 scattered pages, and cached, heartbeat_history reads twice
# as fast. A cache fills as it is used, so it costs its full size in RSS sooner or later.
DEFAULT_CACHE_KIB = 32 * 1024

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
# PostgreSQL: serialization_failure, deadlock_detected.
_PG_RETRY_SQLSTATES = frozenset({"40001", "40P01"})
# PostgreSQL ended the session: admin_shutdown (pg_terminate_backend, a failover's
# switch), crash_shutdown, cannot_connect_now; and class 08, connection_exception.
_PG_SESSION_ENDED_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
_SQLITE_BEGIN_MODES = frozenset({"", "DEFERRED", "IMMEDIATE", "EXCLUSIVE"})


def lock_key(name: str) -> int:
    """A stable signed 64-bit PostgreSQL advisory-lock key derived from ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


# Serialises `db upgrade` across replicas that start at the same moment.
MIGRATION_LOCK_KEY = lock_key("starpod-bot-migrations")


def normalise_url(url: str) -> str:
    """Return ``url`` with the async driver this project uses.

    ``sqlite:///x`` becomes ``sqlite+aiosqlite:///x``; ``postgresql://``,
    ``postgres://`` and the psycopg spellings become ``postgresql+asyncpg://``
    (libpq's ``sslmode=`` is renamed to asyncpg's ``ssl=``). Anything else
    raises :class:`UnsupportedDatabaseError`.
    """
    try:
        parsed = make_url(url.strip())
    except ArgumentError as exc:
        raise UnsupportedDatabaseError(
            "DATABASE_URL is not a database URL (expected sqlite:///… or postgresql://…)",
            url_scheme="",
        ) from exc
    backend = parsed.drivername.split("+", 1)[0]
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
        if "sslmode" in parsed.query:
            query = dict(parsed.query)
            query["ssl"] = query.pop("sslmode")
            parsed = parsed.set(query=query)
    else:
        raise UnsupportedDatabaseError(
            f"unsupported database {backend!r}: use sqlite:///path or postgresql://…",
            url_scheme=backend,
        )
    return parsed.render_as_string(hide_password=False)


def _sqlite_file(url: URL) -> Path | None:
    """The file behind a SQLite URL, or None for an in-memory database."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return None
    if database.startswith("file:"):  # uri=true form
        database = database[len("file:") :].split("?", 1)[0]
    return Path(database)


def _switch_to_wal(cursor: Any, *, busy_timeout_ms: int) -> None:
    """Turn a new database file to WAL (persistent: this happens once per file).

    SQLite answers "database is locked" at once, without its busy handler, when
    another connection holds the file while the mode changes (two processes
    creating the database together). Wait and retry, without blocking the loop:
    this runs inside SQLAlchemy's greenlet, where ``await_only`` can sleep.
    """
    deadline = time.monotonic() + max(busy_timeout_ms, 1000) / 1000
    attempt = 0
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:
            code = getattr(exc, "sqlite_errorcode", _SQLITE_BUSY)
            if code & 0xFF not in (_SQLITE_BUSY, _SQLITE_LOCKED) or time.monotonic() > deadline:
                raise
        await_only(asyncio.sleep(_backoff(attempt)))
        attempt += 1


def _install_sqlite_hooks(
    engine: AsyncEngine, *, busy_timeout_ms: int, foreign_keys: bool, cache_kib: int
) -> None:
    """Set the pragmas on every new connection and take over BEGIN.

    Python's sqlite3 emits BEGIN itself, lazily and always DEFERRED; we switch
    that off so a writer can ask for ``BEGIN IMMEDIATE``: the write lock is then
    taken up front, where the busy timeout waits for it, instead of failing
    mid-transaction when a reader tries to upgrade to a writer.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: the other pragmas may need a lock themselves.
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode")
            if str(cursor.fetchone()[0]).lower() not in ("wal", "memory"):
                _switch_to_wal(cursor, busy_timeout_ms=busy_timeout_ms)
            # WAL makes NORMAL durable across application crashes and much faster.
            cursor.execute("PRAGMA synchronous = NORMAL")
            # The page cache (DEFAULT_CACHE_KIB unless the engine asks for another size).
            cursor.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = str(conn.get_execution_options().get("sqlite_begin", "")).upper()
        if mode not in _SQLITE_BEGIN_MODES:
            raise ValueError(f"unknown sqlite_begin mode {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def _build_engine(
    url: str,
    *,
    echo: bool,
    busy_timeout_ms: int,
    foreign_keys: bool = True,
    pooled: bool = True,
    cache_kib: int = DEFAULT_CACHE_KIB,
) -> AsyncEngine:
    """Create the async engine for a normalised URL with this project's settings."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        kwargs: dict[str, Any] = {}
        if path is None:
            # One shared connection, or every session would see its own empty database.
            kwargs["poolclass"] = StaticPool
        else:
            # A typo in the path must not grow a tree of folders somewhere: say so instead.
            if not path.parent.is_dir():
                raise DatabaseUnavailable(
                    f"the folder {path.parent} of the SQLite file does not exist "
                    "(it is not created for you: create it, or fix the path)",
                    target=str(path),
                )
            if not pooled:
                kwargs["poolclass"] = NullPool
        engine = create_async_engine(url, echo=echo, **kwargs)
        _install_sqlite_hooks(
            engine, busy_timeout_ms=busy_timeout_ms, foreign_keys=foreign_keys, cache_kib=cache_kib
        )
        return engine
    try:
        if not pooled:
            engine = create_async_engine(url, echo=echo, poolclass=NullPool)
        else:
            engine = create_async_engine(
                url,
                echo=echo,
                pool_size=10,
                max_overflow=10,
                # A replica outlives database restarts and idle-connection reapers.
                pool_pre_ping=True,
                pool_recycle=1800,
            )
    except ModuleNotFoundError as exc:
        raise UnsupportedDatabaseError(
            "PostgreSQL needs the asyncpg driver: pip install 'starpod-bot[postgres]'",
            url_scheme="postgresql",
        ) from exc
    _install_postgresql_hooks(engine)
    return engine


def session_ended(error: BaseException) -> bool:
    """True when PostgreSQL's driver error ``error`` says the session is gone.

    ``error`` is SQLAlchemy's error or the driver's. The server ended the session
    (SQLSTATE 57P01 admin_shutdown: ``pg_terminate_backend``, a failover's switch; 57P02,
    57P03), the connection broke (class 08), or asyncpg's protocol is in a state it cannot
    go on from (``InternalClientError``). The last is how an *idle* connection's end shows:
    the server sends it an unrequested FATAL error before closing the socket, asyncpg has
    no request to give it to, and until the socket's end is read every operation fails
    with "cannot switch to state …; another operation (2) is in progress". SQLAlchemy's own
    check (``is_disconnect``) only asks whether the socket is closed yet, so in between the
    connection was neither discarded nor seen as lost.
    """
    from asyncpg.exceptions import InternalClientError

    orig = getattr(error, "orig", None) or error
    for candidate in (orig, orig.__cause__):
        if isinstance(candidate, InternalClientError):
            return True
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str) and (
            state.startswith("08") or state in _PG_SESSION_ENDED_SQLSTATES
        ):
            return True
    return False


def _install_postgresql_hooks(engine: AsyncEngine) -> None:
    """Count every session the server ended (:func:`session_ended`) as a disconnect.

    A disconnect makes SQLAlchemy discard the connection (and the pool's older ones, ended
    with it in a restart or failover), makes ``pool_pre_ping`` open a new one instead of
    failing, and marks the error ``connection_invalidated``: :meth:`Database.run` retries
    on that (see :func:`connection_lost`).
    """

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        if not context.is_disconnect and session_ended(context.original_exception):
            context.is_disconnect = True


def connection_lost(exc: BaseException) -> bool:
    """True when ``exc`` came from a database connection that is gone (and was discarded).

    The server ended the session, or the socket closed: its open transaction went with it,
    uncommitted, so work that had not yet asked to commit can run again on a new
    connection. (SQLAlchemy marks such an error ``connection_invalidated``; on PostgreSQL
    :func:`_install_postgresql_hooks` makes sure every way the driver says so counts.)
    """
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def is_transient(exc: BaseException, dialect: str) -> bool:
    """True when ``exc`` is a lock/serialization failure worth retrying."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if dialect == "sqlite":
        code = getattr(orig, "sqlite_errorcode", None)
        if code is not None:
            # Extended codes (SQLITE_BUSY_SNAPSHOT = 517 …) keep the primary code in the low byte.
            return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
        message = str(orig).lower()
        return "database is locked" in message or "database table is locked" in message
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate is None and orig is not None:
        sqlstate = getattr(orig.__cause__, "sqlstate", None)
    return sqlstate in _PG_RETRY_SQLSTATES


def _backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): jittered, capped at 1 s."""
    return min(1.0, 0.05 * 2.0**attempt) * random.uniform(0.5, 1.0)


def _why(exc: BaseException) -> str:
    """Why a connection could not be opened, in one line."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running, and on that port?)"
    if isinstance(exc, socket.gaierror):
        return "host not found"
    if isinstance(exc, TimeoutError):
        return "no answer (timed out)"
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = " ".join(str(cause).split())
    # SQLAlchemy's asyncpg adapter prefixes the driver's class: keep the server's words.
    text = text.split(">: ", 1)[-1]
    return text or type(cause).__name__


#: Alembic's version table (its default name: migrations/env.py keeps it).
VERSION_TABLE = "alembic_version"


def _stamped_revision(conn: Connection) -> str | None:
    """The revision in the version table; None when there is no table or no row."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    stamped = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(stamped) > 1:  # one linear history: several rows mean someone branched it
        raise MigrationError(f"the database is at several revisions at once: {sorted(stamped)}")
    return stamped[0] if stamped else None


class Database:
    """One database: its engine, its sessions, its writes and its migrations.

    ``url`` accepts the user's spelling (``sqlite:///x.db``, ``postgres://…``)
    and keeps the normalised one. Use as ``async with Database(url) as db:``
    or call :meth:`dispose` when done. ``writes`` shares another Database's refusal
    episode (:class:`~bot.store.writability.WriteHealth`) for the same database.
    """

    PING_TIMEOUT_S = 5.0

    url: str
    engine: AsyncEngine
    dialect: str
    sqlite_path: Path | None
    #: SQLite's page cache per connection (KiB); ignored on PostgreSQL.
    cache_kib: int

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        writes: WriteHealth | None = None,
        cache_kib: int = DEFAULT_CACHE_KIB,
    ) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        self.sqlite_path = _sqlite_file(parsed) if self.dialect == "sqlite" else None
        self._echo = echo
        self._busy_timeout_ms = busy_timeout_ms
        self.cache_kib = cache_kib
        self.engine = _build_engine(
            self.url, echo=echo, busy_timeout_ms=busy_timeout_ms, cache_kib=cache_kib
        )
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        #: Whether writes commit: the refusal episode of a full or read-only database. A
        #: second Database on the same URL (the sweep's loop) shares the first one's.
        self.writes = writes if writes is not None else WriteHealth(self.name)

    @property
    def name(self) -> str:
        """The database in messages: the SQLite file, else the URL with its password masked."""
        return str(self.sqlite_path) if self.sqlite_path is not None else self.safe_url

    @property
    def busy_timeout_ms(self) -> int:
        """How long a SQLite connection waits for the write lock before SQLITE_BUSY."""
        return self._busy_timeout_ms

    @property
    def safe_url(self) -> str:
        """The URL with its password masked, for logs and messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Database({self.safe_url!r})"

    def session(self) -> AsyncSession:
        """A new session for reads (``async with db.session() as s:``); write with :meth:`run`."""
        return self._sessions()

    async def run(self, fn: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 8) -> T:
        """Run ``fn(session)`` in one transaction, commit, and return its result.

        On a transient failure (SQLite busy/locked, PostgreSQL deadlock or
        serialization failure) the transaction is rolled back and ``fn`` is run
        again in a fresh session after a short back-off, so ``fn`` must do all of
        its work through the session it is given. After ``attempts`` failures
        :class:`DatabaseBusyError` is raised. A connection lost before the commit
        (the server ended the session: a restart, a failover) is retried the same
        way, on a new connection, with a one-line warning; one lost *during* the
        commit is not (the write may have landed) and propagates, as does the
        last attempt's. A database that refuses writes (full or read-only) raises
        :class:`~bot.store.errors.StoreUnwritable` naming it, and ``writes``
        records the episode. Any other error propagates at once.
        On SQLite the transaction starts with ``BEGIN IMMEDIATE``: writers queue
        for the lock (up to the busy timeout) instead of failing half way.
        """
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        options = {"sqlite_begin": "IMMEDIATE"} if self.dialect == "sqlite" else None
        for attempt in range(attempts):
            committing = False
            try:
                async with self._sessions() as session, session.begin():
                    if options:
                        await session.connection(execution_options=options)
                    result = await fn(session)
                    # The ORM's pending writes go now, so that only the COMMIT is left.
                    await session.flush()
                    committing = True  # the block's end commits
                return result
            except DBAPIError as exc:
                if unwritable(exc) is not None:
                    refusal = self.writes.error(exc)
                    self.writes.refused(refusal)
                    raise refusal from exc
                last = attempt + 1 >= attempts
                if connection_lost(exc) and not committing and not last:
                    delay = _backoff(attempt)
                    log.warning(
                        "database connection lost (%s); retry %d/%d in %.2fs on a new one",
                        _why(exc),
                        attempt + 1,
                        attempts - 1,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                if not is_transient(exc, self.dialect):
                    raise
                if last:
                    raise DatabaseBusyError(
                        f"database stayed busy after {attempts} attempts: {exc.orig}",
                        attempts=attempts,
                    ) from exc
                delay = _backoff(attempt)
                log.info(
                    "database busy (%s); retry %d/%d in %.2fs",
                    exc.orig,
                    attempt + 1,
                    attempts - 1,
                    delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def upgrade(self, revision: str = "head") -> None:
        """Apply the Alembic migrations up to ``revision`` (``head`` by default).

        A database already at the head is left as it is without importing Alembic: every
        start of the bot calls this, and Alembic with mako and pygments would stay in the
        running bot for nothing (5.5 MB; BENCHMARKS.md, "What the running bot imports").
        """
        from bot.store.migrate import head_revision

        if revision == "head" and await self.current_revision() == head_revision():
            return
        from alembic import command

        await self._migrate(lambda cfg: command.upgrade(cfg, revision))

    async def downgrade(self, revision: str) -> None:
        """Revert the Alembic migrations down to ``revision`` (``base`` drops everything)."""
        from alembic import command

        await self._migrate(lambda cfg: command.downgrade(cfg, revision))

    async def current_revision(self) -> str | None:
        """The revision the database is at, or None before the first migration.

        Read from Alembic's version table with a query, as Alembic reads it, without
        importing Alembic (see :meth:`upgrade`).
        """
        async with self._connect(self.engine) as conn:
            return await conn.run_sync(_stamped_revision)

    async def _migrate(self, action: Callable[[Any], None]) -> None:
        """Run an Alembic command on one connection, in one transaction.

        On SQLite a private connection has foreign keys off (batch migrations
        recreate tables; SQLite's own procedure) and the result is checked with
        ``PRAGMA foreign_key_check`` before commit. On PostgreSQL a transaction
        advisory lock makes replicas that start together migrate one at a time.
        """
        from alembic.util import CommandError

        from bot.store.migrate import alembic_config

        # A memory database lives on our one connection, so it must migrate there.
        private = self.dialect == "sqlite" and self.sqlite_path is not None
        engine = (
            _build_engine(
                self.url,
                echo=self._echo,
                busy_timeout_ms=self._busy_timeout_ms,
                foreign_keys=False,
                pooled=False,
            )
            if private
            else self.engine
        )

        def _run(sync_conn: Connection) -> None:
            action(alembic_config(self.url, connection=sync_conn))

        try:
            async with self._connect(engine) as conn:
                if self.dialect == "sqlite":
                    await conn.execution_options(sqlite_begin="IMMEDIATE")
                async with conn.begin():
                    if self.dialect == "postgresql":
                        await conn.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                        )
                    try:
                        await conn.run_sync(_run)
                    except CommandError as exc:
                        raise MigrationError(f"migration failed: {exc}") from exc
                    if private:
                        broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                        if broken:
                            raise MigrationError(
                                f"migration broke {len(broken)} foreign keys, e.g. {broken[0]}"
                            )
        finally:
            if private:
                await engine.dispose()

    @asynccontextmanager
    async def _connect(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        """A connection of ``engine``; failing to open one is DatabaseUnavailable, one line."""
        conn = engine.connect()
        try:
            await conn.start()
        except (OSError, TimeoutError, DBAPIError) as exc:
            if isinstance(exc, DBAPIError) and unwritable(exc) is not None:
                # Opening SQLite needs a write (its WAL's files) that a full volume refuses:
                # "database is full: <file>" says what to fix, "disk I/O error" does not.
                raise self.writes.error(exc) from exc
            raise self._unavailable(exc) from exc
        try:
            yield conn
        finally:
            await conn.close()

    def _unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        parsed = make_url(self.url)
        if self.dialect == "sqlite":
            target = str(self.sqlite_path or ":memory:")
            where = f"the SQLite file {target}"
        else:
            host = parsed.host or "the local socket"
            target = f"{host}:{parsed.port or 5432}/{parsed.database or ''}"
            where = f"PostgreSQL at {target}"
        return DatabaseUnavailable(f"cannot open {where}: {_why(exc)}", target=target)

    async def ping(self) -> bool:
        """True if the database answers ``SELECT 1`` within :attr:`PING_TIMEOUT_S` seconds."""
        try:
            async with asyncio.timeout(self.PING_TIMEOUT_S), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # a probe reports, it does not raise
            log.debug("database ping failed: %s", exc)
            return False
        return True

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.dispose()
