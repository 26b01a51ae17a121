"""Initial schema: instances, heartbeat samples and hourly roll-ups, status changes,
restart attempts, and the SQLite leader lease.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=64), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
    )
    op.create_table(
        "leader_lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leader_lease")),
    )
    op.create_table(
        "heartbeat_hourly",
        sa.Column("instance_id", sa.String(length=128), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("cpu_min", sa.Float(), nullable=False),
        sa.Column("cpu_avg", sa.Float(), nullable=False),
        sa.Column("cpu_max", sa.Float(), nullable=False),
        sa.Column("memory_min", sa.Integer(), nullable=False),
        sa.Column("memory_avg", sa.Float(), nullable=False),
        sa.Column("memory_max", sa.Integer(), nullable=False),
        sa.Column("disk_last", sa.Integer(), nullable=False),
        sa.Column("disk_last_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_heartbeat_hourly_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_id", "hour", name=op.f("pk_heartbeat_hourly")),
    )
    op.create_index(
        op.f("ix_heartbeat_hourly_hour"), "heartbeat_hourly", ["hour"], unique=False
    )
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
    op.create_table(
        "restart_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("instance_id", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("cause IN ('monitor', 'user')", name=op.f("ck_restart_attempts_cause")),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_restart_attempts_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_restart_attempts")),
    )
    op.create_index(
        op.f("ix_restart_attempts_instance_id_at"),
        "restart_attempts",
        ["instance_id", "at"],
        unique=False,
    )
    op.create_table(
        "status_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("instance_id", sa.String(length=128), nullable=False),
        sa.Column("from_status", sa.String(length=64), nullable=True),
        sa.Column("to_status", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "cause IN ('monitor', 'user', 'backend')", name=op.f("ck_status_changes_cause")
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_status_changes_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_changes")),
    )
    op.create_index(
        op.f("ix_status_changes_instance_id_at"),
        "status_changes",
        ["instance_id", "at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_status_changes_instance_id_at"), table_name="status_changes")
    op.drop_table("status_changes")
    op.drop_index(op.f("ix_restart_attempts_instance_id_at"), table_name="restart_attempts")
    op.drop_table("restart_attempts")
    op.drop_index(op.f("ix_heartbeat_samples_sampled_at"), table_name="heartbeat_samples")
    op.drop_index(
        op.f("ix_heartbeat_samples_instance_id_sampled_at"), table_name="heartbeat_samples"
    )
    op.drop_table("heartbeat_samples")
    op.drop_index(op.f("ix_heartbeat_hourly_hour"), table_name="heartbeat_hourly")
    op.drop_table("heartbeat_hourly")
    op.drop_table("leader_lease")
    op.drop_table("instances")
