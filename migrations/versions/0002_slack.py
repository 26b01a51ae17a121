"""Slack surface: the audit log and one-time SSH key links.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=128), nullable=True),
        sa.Column("args", sa.String(length=500), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "result IN ('ok', 'refused', 'error', 'usage')", name=op.f("ck_audit_log_result")
        ),
        sa.CheckConstraint(
            "source IN ('slash', 'button', 'gateway', 'web')", name=op.f("ck_audit_log_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_index(
        op.f("ix_audit_log_instance_id_at"), "audit_log", ["instance_id", "at"], unique=False
    )
    op.create_table(
        "ssh_key_links",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_ssh_key_links")),
    )
    op.create_index(
        op.f("ix_ssh_key_links_expires_at"), "ssh_key_links", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ssh_key_links_expires_at"), table_name="ssh_key_links")
    op.drop_table("ssh_key_links")
    op.drop_index(op.f("ix_audit_log_instance_id_at"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_table("audit_log")
