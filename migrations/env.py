"""Alembic environment for starpod-bot (async engines, both dialects).

How it is run
-------------
``Database.upgrade()`` (what ``starpod-bot db upgrade``, ``run`` and ``demo``
call) opens an async connection, starts one transaction and hands the
*sync* face of that connection to Alembic in ``config.attributes["connection"]``;
we migrate on it and the caller commits. Run by hand
(``alembic -c migrations/alembic.ini -x url=… upgrade head``), we build the
same engine the application uses from ``-x url=`` (or ``sqlalchemy.url``) and
drive it with ``asyncio.run``. The URL never comes from ``os.environ``.

Revision naming
---------------
Revision ids are short, ordered numbers, and file names start with them:
``0001_initial.py`` (``revision = "0001"``), then ``0002_slack.py``
(``revision = "0002"``, ``down_revision = "0001"``) and ``0003_alerts.py``
(``down_revision = "0002"``). One linear history: a new migration always
revises the current head, so pick the next free number and rebase if another
branch took it. Generate with ``--rev-id 0004`` and review what autogenerate
wrote. Models must be imported in ``bot/store/schema.py`` to be seen here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from bot.store.base import UtcDateTime
from bot.store.database import Database
from bot.store.schema import metadata

config = context.config


def _render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    # Migrations must not import application types (they would change under
    # old revisions); UtcDateTime is plain timestamptz in the DDL.
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    dialect = connection.dialect.name if connection is not None else (url or "").split(":")[0]
    context.configure(
        connection=connection,
        url=url if connection is None else None,
        target_metadata=metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=dialect.startswith("sqlite"),
        literal_binds=connection is None,
        render_item=_render_item,
    )


def _url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    url = url or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: pass -x url=sqlite:///path or postgresql://…")
    return url


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``) instead of running it."""
    _configure(url=Database(_url()).url)
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    async with Database(_url()) as db, db.engine.connect() as connection:
        await connection.run_sync(_run_on)
        await connection.commit()


def run_migrations_online() -> None:
    """Migrate on the caller's connection, or on our own engine when run by hand."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
    else:
        asyncio.run(_run_standalone())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
