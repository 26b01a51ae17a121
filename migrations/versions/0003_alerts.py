"""Alerts: incidents, the Slack outbox and mutes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_incidents",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("instance_id", sa.String(length=128), nullable=True),
        sa.Column("instance_name", sa.String(length=255), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("open_key", sa.String(length=128), nullable=True),
        sa.Column("flapping", sa.Boolean(), nullable=False),
        sa.Column("announced", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_note", sa.Text(), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exhausted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("restart_attempts", sa.Integer(), nullable=False),
        sa.Column("recurrences", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("root_ts", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "kind IN ('stale', 'error', 'health_unknown', 'backend_unreachable', 'restart_budget_exhausted')",
            name=op.f("ck_alert_incidents_kind"),
        ),
        sa.CheckConstraint("scope IN ('instance', 'fleet')", name=op.f("ck_alert_incidents_scope")),
        sa.CheckConstraint(
            "state IN ('open', 'acknowledged', 'resolved')", name=op.f("ck_alert_incidents_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_incidents")),
        sa.UniqueConstraint("open_key", name=op.f("uq_alert_incidents_open_key")),
    )
    with op.batch_alter_table("alert_incidents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_incidents_instance_id_resolved_at"),
            ["instance_id", "resolved_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_alert_incidents_state_opened_at"), ["state", "opened_at"], unique=False
        )

    op.create_table(
        "alert_mutes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("instance_id", sa.String(length=128), nullable=False),
        sa.Column("instance_name", sa.String(length=255), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("no_restart", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_how", sa.String(length=16), nullable=True),
        sa.Column("ended_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_mutes")),
    )
    with op.batch_alter_table("alert_mutes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_mutes_ended_at_until"), ["ended_at", "until"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_alert_mutes_instance_id_ended_at"),
            ["instance_id", "ended_at"],
            unique=False,
        )

    op.create_table(
        "alert_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "incident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("stream", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=255), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ts", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "kind IN ('root', 'reply', 'update', 'notice')", name=op.f("ck_alert_outbox_kind")
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'sent', 'failed', 'superseded')",
            name=op.f("ck_alert_outbox_state"),
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["alert_incidents.id"],
            name=op.f("fk_alert_outbox_incident_id_alert_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_outbox")),
    )
    with op.batch_alter_table("alert_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_outbox_incident_id_state"), ["incident_id", "state"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_alert_outbox_state_id"), ["state", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_outbox_state_id"))
        batch_op.drop_index(batch_op.f("ix_alert_outbox_incident_id_state"))

    op.drop_table("alert_outbox")
    with op.batch_alter_table("alert_mutes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_mutes_instance_id_ended_at"))
        batch_op.drop_index(batch_op.f("ix_alert_mutes_ended_at_until"))

    op.drop_table("alert_mutes")
    with op.batch_alter_table("alert_incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_incidents_state_opened_at"))
        batch_op.drop_index(batch_op.f("ix_alert_incidents_instance_id_resolved_at"))

    op.drop_table("alert_incidents")
