"""Replay guards: Slack deliveries already taken in, and single-use kill confirmations.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_deliveries",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_slack_deliveries")),
    )
    op.create_index(
        op.f("ix_slack_deliveries_expires_at"), "slack_deliveries", ["expires_at"], unique=False
    )
    op.create_table(
        "kill_confirmations",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_kill_confirmations")),
    )
    op.create_index(
        op.f("ix_kill_confirmations_expires_at"),
        "kill_confirmations",
        ["expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_kill_confirmations_expires_at"), table_name="kill_confirmations")
    op.drop_table("kill_confirmations")
    op.drop_index(op.f("ix_slack_deliveries_expires_at"), table_name="slack_deliveries")
    op.drop_table("slack_deliveries")
