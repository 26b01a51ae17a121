"""Heartbeat history stored like a TSDB: series keys, an append-only head, hourly chunks.

Converts every row of ``heartbeat_samples`` into the head (integer epoch microseconds,
exact on both dialects), one head batch per hour of the old samples, then drops the old
table. The application's compaction (the scheduled job or ``starpod-bot db compact``)
turns that head into chunks; reads see the samples throughout.

The downgrade converts the head back. Chunks are an encoding this migration does not
know, so a downgrade with chunks present refuses (run it before compacting, or restore
a backup): nothing is dropped unread.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HOUR_US = 3_600_000_000


def _micros(column: str, dialect: str) -> str:
    """SQL for the exact epoch microseconds of a stored UtcDateTime column."""
    if dialect == "sqlite":
        # Stored as fixed-width naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'.
        return (
            f"(CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) * 1000000"
            f" + CAST(substr({column}, 21, 6) AS INTEGER))"
        )
    # Whole seconds and the microseconds of the minute: both exact in a double.
    return (
        f"(CAST(EXTRACT(EPOCH FROM date_trunc('second', {column})) AS BIGINT) * 1000000"
        f" + CAST(EXTRACT(MICROSECONDS FROM {column}) AS BIGINT) % 1000000)"
    )


def _timestamp(column: str, dialect: str) -> str:
    """SQL turning epoch microseconds back into the column type UtcDateTime stores."""
    if dialect == "sqlite":
        return (
            f"(strftime('%Y-%m-%d %H:%M:%S', {column} / 1000000, 'unixepoch')"
            f" || '.' || substr('000000' || ({column} % 1000000), -6, 6))"
        )
    return f"(to_timestamp(0) + {column} * interval '1 microsecond')"


def _create_tables() -> None:
    op.create_table(
        "heartbeat_series",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_heartbeat_series_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat_series")),
        sa.UniqueConstraint("instance_id", name=op.f("uq_heartbeat_series_instance_id")),
    )
    op.create_table(
        "heartbeat_batches",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("first_at", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.BigInteger(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat_batches")),
    )
    op.create_table(
        "heartbeat_head",
        sa.Column("batch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("series_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sampled_at", sa.BigInteger(), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("disk_mb", sa.Integer(), nullable=False),
        sa.Column("last_heartbeat", sa.BigInteger(), nullable=False),
        sa.Column("uptime_secs", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("batch", "series_id", "n", name=op.f("pk_heartbeat_head")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "heartbeat_chunks",
        sa.Column(
            "key",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_heartbeat_chunks")),
    )


def _create_old_samples() -> None:
    op.create_table(
        "heartbeat_samples",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("instance_id", sa.String(length=128), nullable=False),
        sa.Column("sampled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("disk_mb", sa.Integer(), nullable=False),
        sa.Column("last_heartbeat", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uptime_secs", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_heartbeat_samples_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat_samples")),
    )
    op.create_index(
        op.f("ix_heartbeat_samples_instance_id_sampled_at"),
        "heartbeat_samples",
        ["instance_id", "sampled_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_heartbeat_samples_sampled_at"), "heartbeat_samples", ["sampled_at"], unique=False
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _create_tables()
    op.execute(
        "INSERT INTO heartbeat_series (instance_id) "
        "SELECT DISTINCT instance_id FROM heartbeat_samples ORDER BY instance_id"
    )
    at = _micros("h.sampled_at", dialect)
    # Batch = the sample's epoch hour; n = its old id, unique, so no two rows collide.
    op.execute(
        "INSERT INTO heartbeat_head (batch, series_id, n, sampled_at, cpu_percent, memory_mb,"
        " disk_mb, last_heartbeat, uptime_secs) "
        f"SELECT {at} / {_HOUR_US}, s.id, h.id, {at}, h.cpu_percent, h.memory_mb, h.disk_mb, "
        f"{_micros('h.last_heartbeat', dialect)}, h.uptime_secs "
        "FROM heartbeat_samples h JOIN heartbeat_series s ON s.instance_id = h.instance_id "
        "ORDER BY 1, 2, 3"
    )
    op.execute(
        "INSERT INTO heartbeat_batches (id, first_at, last_at, samples) "
        "SELECT batch, MIN(sampled_at), MAX(sampled_at), COUNT(*) FROM heartbeat_head "
        "GROUP BY batch"
    )
    op.drop_index(op.f("ix_heartbeat_samples_sampled_at"), table_name="heartbeat_samples")
    op.drop_index(
        op.f("ix_heartbeat_samples_instance_id_sampled_at"), table_name="heartbeat_samples"
    )
    op.drop_table("heartbeat_samples")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if op.get_bind().execute(sa.text("SELECT COUNT(*) FROM heartbeat_chunks")).scalar():
        raise RuntimeError(
            "heartbeat_chunks holds compacted history that revision 0007 cannot store: "
            "refusing to drop it (restore a backup taken before the upgrade instead)"
        )
    _create_old_samples()
    op.execute(
        "INSERT INTO heartbeat_samples (instance_id, sampled_at, cpu_percent, memory_mb,"
        " disk_mb, last_heartbeat, uptime_secs) "
        f"SELECT s.instance_id, {_timestamp('h.sampled_at', dialect)}, h.cpu_percent,"
        f" h.memory_mb, h.disk_mb, {_timestamp('h.last_heartbeat', dialect)}, h.uptime_secs "
        "FROM heartbeat_head h JOIN heartbeat_series s ON s.id = h.series_id "
        "ORDER BY h.sampled_at, h.batch, h.n"
    )
    op.drop_table("heartbeat_chunks")
    op.drop_table("heartbeat_head")
    op.drop_table("heartbeat_batches")
    op.drop_table("heartbeat_series")
