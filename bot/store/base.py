"""Declarative base and the column types every model shares."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, MetaData
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator, TypeEngine

# Explicit constraint names keep autogenerate stable: without them PostgreSQL
# invents names and SQLite has none, so migrations would differ by dialect.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _parse_sqlite_utc(value: str | None) -> datetime | None:
    """Parse SQLite's naive UTC text straight into an aware datetime (one C call)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value + "+00:00")
    except ValueError:  # written by hand with its own offset
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _refuse_naive(value: datetime) -> None:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value!r}: the store only accepts aware datetimes")


@functools.lru_cache(maxsize=8192)
def _sqlite_utc_text(value: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME storage format, fixed width so text order is time order.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _bind_sqlite_utc(value: datetime | None) -> str | None:
    """Aware datetime → SQLite's naive UTC text, memoised: the 10,000 samples of a sweep
    share one ``sampled_at`` and a few ``last_heartbeat`` ticks, and converting each anew
    was half the cost of writing them (bench/sweep.py)."""
    if value is None:
        return None
    _refuse_naive(value)
    return _sqlite_utc_text(value)


class _SqliteUtcText(SQLITE_DATETIME):
    """SQLite's DATETIME, read back as aware UTC; about four times faster than the default
    parse-then-replace, which matters for heartbeat_history's thousands of rows."""

    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        return _parse_sqlite_utc


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC on every dialect.

    PostgreSQL keeps ``timestamptz``; SQLite has no timezone type, so values
    are stored as naive UTC text (fixed width, so comparisons stay correct)
    and come back with ``tzinfo=UTC``. Naive datetimes are refused on the way
    in: guessing their zone is how history ends up an hour off.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """SQLite gets the faster reader; every other dialect the plain timestamptz."""
        if dialect.name == "sqlite":
            # SQLAlchemy's SQLite DATETIME constructor carries no annotations.
            return dialect.type_descriptor(_SqliteUtcText())  # type: ignore[no-untyped-call]
        return dialect.type_descriptor(self.impl)

    def bind_processor(self, dialect: Dialect) -> Any:
        """SQLite: one memoised conversion to text; others: process_bind_param."""
        if dialect.name == "sqlite":
            return _bind_sqlite_utc
        return super().bind_processor(dialect)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive values; convert aware ones to UTC (naive UTC on SQLite)."""
        if value is None:
            return None
        _refuse_naive(value)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime whatever the driver gave back."""
        if value is None or value.tzinfo is UTC:
            return value
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Root of every ORM model; its metadata is what migrations compare against."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
