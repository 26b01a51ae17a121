"""Instance leases (the per-instance action lock shared by every replica) and sources.

Status changes and restart attempts say where an action was asked for (``source``:
slack, gateway, incident, monitor, cli; None for what the sweep saw, and for older rows).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instance_leases",
        sa.Column("instance_id", sa.String(length=128), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("verb", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_instance_leases")),
    )
    for table in ("status_changes", "restart_attempts"):
        op.add_column(table, sa.Column("source", sa.String(length=16), nullable=True))


def downgrade() -> None:
    for table in ("restart_attempts", "status_changes"):
        # SQLite drops a column by copying the table: batch mode does that.
        with op.batch_alter_table(table) as batch:
            batch.drop_column("source")
    op.drop_table("instance_leases")
