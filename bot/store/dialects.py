"""What differs between SQLite and PostgreSQL in our statements, in one place."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


def insert_for(dialect: str, table: Any) -> Any:
    """An ``INSERT`` for ``table`` that supports ``on_conflict_do_*`` on ``dialect``."""
    if dialect == "postgresql":
        # Imported when used: a bot on SQLite never loads PostgreSQL's dialect (2.4 MB of
        # RSS; BENCHMARKS.md, "What the running bot imports").
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    if dialect == "sqlite":
        return sqlite_insert(table)
    raise NotImplementedError(f"no upsert for dialect {dialect!r}")


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """:func:`insert_for` the dialect ``session`` is bound to."""
    return insert_for(session.get_bind().dialect.name, table)
