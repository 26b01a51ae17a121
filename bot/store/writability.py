"""Does the database take writes? Which refusals mean "full or read-only", and the episode.

A full disk, a read-only file or volume, and a PostgreSQL server that is read-only or out
of space all look the same to the bot: reads answer, every write is refused. Each
dialect says so in its own words; :func:`unwritable` recognises them (SQLite's result
codes ``SQLITE_FULL``, ``SQLITE_READONLY`` and ``SQLITE_IOERR_SHMSIZE``, PostgreSQL's
SQLSTATE ``53100`` disk_full and ``25006`` read_only_sql_transaction) and
:meth:`WriteHealth.error` turns one into the one :class:`~bot.store.errors.StoreUnwritable`
every caller sees.

:class:`WriteHealth` (one per :class:`~bot.store.database.Database`, ``db.writes``)
remembers the episode: the first refusal logs one error, later ones only at debug level,
so a sweep every second does not write a line every second. Only a committed write probe
(:mod:`bot.store.write_probe`) ends the episode: on a nearly full disk one small write may
land while the next one fails, and an episode must not flap on that.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bot.store.errors import StoreUnwritable

log = logging.getLogger(__name__)

FULL = "full"
READ_ONLY = "read-only"
OTHER = "unwritable"

_SQLITE_READONLY = 8
_SQLITE_FULL = 13
_SQLITE_KINDS = {_SQLITE_FULL: FULL, _SQLITE_READONLY: READ_ONLY}
# SQLITE_IOERR_SHMSIZE: the WAL's shared-memory file could not grow, which on a full
# volume is what opening the database after a clean shutdown (the file was removed) says.
_SQLITE_EXTENDED_KINDS = {4874: FULL}
_SQLITE_MESSAGES = {"database or disk is full": FULL, "readonly database": READ_ONLY}
# disk_full, read_only_sql_transaction
_PG_KINDS = {"53100": FULL, "25006": READ_ONLY}


def _sqlstate(error: BaseException) -> str | None:
    for candidate in (error, error.__cause__):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def unwritable(error: BaseException) -> str | None:
    """``"full"`` or ``"read-only"`` when ``error`` says the database refuses writes, else None.

    ``error`` is what the driver raised (``sqlite3.Error``, asyncpg's error) or
    SQLAlchemy's ``DBAPIError`` wrapping it.
    """
    orig = getattr(error, "orig", None) or error
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int) and code in _SQLITE_EXTENDED_KINDS:
        return _SQLITE_EXTENDED_KINDS[code]
    if isinstance(code, int) and code & 0xFF in _SQLITE_KINDS:
        return _SQLITE_KINDS[code & 0xFF]
    state = _sqlstate(orig)
    if state in _PG_KINDS:
        return _PG_KINDS[state]
    if isinstance(orig, sqlite3.Error) or "sqlite" in type(orig).__module__:
        message = str(orig).lower()
        for words, kind in _SQLITE_MESSAGES.items():
            if words in message:
                return kind
    return None


def _reason(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    # asyncpg's messages are one line; keep only the first of anything longer.
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def _utcnow() -> datetime:
    return datetime.now(UTC)


class WriteHealth:
    """The database's refusal episode: when it began and why, logged once.

    ``database`` names the database in every message: the SQLite file, or the URL with
    its password masked.
    """

    def __init__(self, database: str, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.database = database
        self._clock = clock
        #: The refusal of the current episode (None: the database takes writes).
        self.refusal: StoreUnwritable | None = None
        #: When the current episode began (None: none).
        self.since: datetime | None = None
        self._since_monotonic = 0.0
        #: Episodes begun since the process started.
        self.episodes = 0
        # The sweep's thread and the Slack loop both report to one WriteHealth.
        self._lock = threading.Lock()

    @property
    def writable(self) -> bool:
        """False from the first refusal until a write probe commits again."""
        return self.refusal is None

    def error(self, error: BaseException, *, kind: str | None = None) -> StoreUnwritable:
        """The :class:`StoreUnwritable` for a refused write (its kind found, or given)."""
        return StoreUnwritable(
            database=self.database, kind=kind or unwritable(error) or OTHER, reason=_reason(error)
        )

    def refused(self, refusal: StoreUnwritable) -> None:
        """A write was refused: begins an episode (logged once) or continues it."""
        with self._lock:
            began = self.refusal is None
            self.refusal = refusal
            if began:
                self.since = self._clock()
                self._since_monotonic = time.monotonic()
                self.episodes += 1
        if not began:
            log.debug("still refusing writes: %s", refusal)
            return
        log.error(
            "%s; health sweeps, auto-restarts and alerts wait until it takes writes again, "
            "read-only commands still answer",
            refusal,
        )

    def accepted(self) -> float | None:
        """A write probe committed: ends the episode. Returns its length in seconds, if any."""
        with self._lock:
            if self.refusal is None:
                return None
            took = time.monotonic() - self._since_monotonic
            self.refusal, self.since = None, None
        log.warning("%s takes writes again after %.1f s", self.database, took)
        return took
