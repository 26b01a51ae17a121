"""Migrations: they build exactly what the models describe, on both dialects."""

from __future__ import annotations

import asyncio
import re

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from bot.store.database import Database
from bot.store.errors import MigrationError
from bot.store.migrate import alembic_config, head_revision, migrations_dir
from bot.store.schema import metadata

TABLES = {
    "instances",
    "heartbeat_series",
    "heartbeat_batches",
    "heartbeat_head",
    "heartbeat_chunks",
    "heartbeat_hourly",
    "status_changes",
    "restart_attempts",
    "leader_lease",
    "instance_leases",
}


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "render_as_batch": connection.dialect.name == "sqlite"},
    )
    return compare_metadata(context, metadata)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_models_and_migrations_agree(db: Database) -> None:
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


async def test_upgrade_creates_the_tables_and_is_idempotent(empty_db: Database) -> None:
    assert await empty_db.current_revision() is None
    await empty_db.upgrade()
    await empty_db.upgrade()  # a second start must be a no-op
    head = ScriptDirectory.from_config(alembic_config(empty_db.url)).get_current_head()
    assert await empty_db.current_revision() == head
    async with empty_db.engine.connect() as conn:
        tables = await conn.run_sync(_tables)
    assert tables >= TABLES | {"alembic_version"}


async def test_downgrade_to_base_removes_everything(db: Database) -> None:
    await db.downgrade("base")
    assert await db.current_revision() is None
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(_tables)
    assert tables.isdisjoint(TABLES)
    await db.upgrade()  # and back again
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_replicas_upgrading_together_both_succeed(db_url: str) -> None:
    # Two replicas starting at once: one migrates, the other waits and finds head.
    async with Database(db_url) as first, Database(db_url) as second:
        await asyncio.gather(first.upgrade(), second.upgrade())
        head = ScriptDirectory(str(migrations_dir())).get_current_head()
        assert await first.current_revision() == await second.current_revision() == head


def test_revisions_form_one_numbered_line() -> None:
    script = ScriptDirectory(str(migrations_dir()))
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    for revision in revisions:
        assert re.fullmatch(r"\d{4}", revision.revision), revision.revision
        assert revision.path is not None
        # The file name starts with its revision id (0001_initial.py).
        assert re.search(rf"/{revision.revision}_\w+\.py$", revision.path), revision.path
    assert script.get_revision("0001").down_revision is None


def test_the_head_read_from_file_names_is_alembics() -> None:
    # What a start compares with, without importing Alembic (Database.upgrade).
    assert head_revision() == ScriptDirectory(str(migrations_dir())).get_current_head()


async def test_a_version_table_with_two_revisions_is_refused(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES ('0001')")
    with pytest.raises(MigrationError, match="several revisions"):
        await db.current_revision()


async def test_the_comparison_notices_a_drift(db: Database) -> None:
    # Guards the test above: a schema that differs from the models must show up.
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql("DROP INDEX ix_status_changes_instance_id_at")
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert [d[0] for d in diff] == ["add_index"]
