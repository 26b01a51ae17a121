"""Errors raised by the store.

One root per boundary (architecture rule 5); context travels as keyword-only
arguments and attributes, never only inside the message::

    StoreError                      (bot.errors.StarpodBotError) raised by the store on purpose
    ├── UnsupportedDatabaseError    DATABASE_URL names a backend we do not speak
    ├── DatabaseUnavailable         DATABASE_URL's database cannot be opened (no server,
    │                               no such database, no SQLite folder)
    ├── DatabaseBusyError           a write stayed locked/serialization-failed after every retry
    ├── MigrationError              Alembic could not bring the schema to head
    ├── LeadershipRefused           SQLite: another process already holds the file
    ├── StoreUnwritable             the database answers but refuses writes (full disk,
    │                               read-only file, volume or server)
    └── CorruptChunkError           a stored heartbeat chunk does not decode

Errors from SQLAlchemy that are not transient (integrity errors, bad SQL,
an unreachable server) are *not* wrapped: they are bugs or outages and keep
their own type and traceback.
"""

from __future__ import annotations

from bot.errors import StarpodBotError


class StoreError(StarpodBotError):
    """Root of every error the store raises on purpose."""


class UnsupportedDatabaseError(StoreError):
    """The database URL names a backend other than SQLite or PostgreSQL."""

    def __init__(self, message: str, *, url_scheme: str) -> None:
        super().__init__(message)
        self.url_scheme = url_scheme


class DatabaseUnavailable(StoreError):
    """The database ``DATABASE_URL`` names cannot be opened; the message says why.

    A configuration problem (the CLI's exit code 2): PostgreSQL refusing or not found,
    no such database, or a SQLite file whose folder does not exist (it is not created).
    The message does not name the setting (the store does not know how it was set): the
    CLI and the runtime put ``bot.config.setting_name("database.url")`` in front.
    """

    def __init__(self, message: str, *, target: str) -> None:
        super().__init__(message)
        self.target = target  # host:port/database or the SQLite path; never a password


class DatabaseBusyError(StoreError):
    """A transaction kept failing on a lock or a serialization conflict.

    Raised by :meth:`bot.store.database.Database.run` after its last attempt;
    the write was *not* applied, so the caller still owns it.
    """

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class MigrationError(StoreError):
    """The migrations could not be found or could not be applied."""


class LeadershipRefused(StoreError):
    """Another starpod-bot process already uses this SQLite database file."""

    def __init__(self, *, path: str, holder: str | None, pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else f"holder {holder or 'unknown'}"
        super().__init__(
            f"another starpod-bot process is already using {path} ({who}); "
            "SQLite supports one process — use PostgreSQL for replicas"
        )
        self.path = path
        self.holder = holder
        self.pid = pid


class StoreUnwritable(StoreError):
    """The database answers reads but refuses every write: it is full or read-only.

    One message for every dialect, naming the database (its file, or its URL with the
    password masked) and saying what the driver said, e.g.
    ``database is full: /data/bot.db refuses writes (database or disk is full)``.
    ``kind`` is ``"full"``, ``"read-only"`` or ``"unwritable"`` (another refusal the write
    probe saw). The write was *not* applied; nothing committed before it is affected.
    """

    def __init__(self, *, database: str, kind: str, reason: str) -> None:
        what = {"full": "database is full", "read-only": "database is read-only"}.get(
            kind, "database cannot be written"
        )
        super().__init__(f"{what}: {database} refuses writes ({reason})")
        self.database = database
        self.kind = kind
        self.reason = reason


class CorruptChunkError(StoreError):
    """A heartbeat chunk's bytes do not decode (a format this version does not know, or damage)."""
