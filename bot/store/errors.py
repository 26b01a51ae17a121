"""Errors raised by the store.

One root per boundary (architecture rule 5); context travels as keyword-only
arguments and attributes, never only inside the message::

    StoreError                      (bot.errors.StarpodBotError) raised by the store on purpose
    ├── UnsupportedDatabaseError    DATABASE_URL names a backend we do not speak
    ├── DatabaseBusyError           a write stayed locked/serialization-failed after every retry
    ├── MigrationError              Alembic could not bring the schema to head
    └── LeadershipRefused           SQLite: another process already holds the file

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
