"""Paging beyond Slack through the outbox, diagnostics replies, restart budget resets.

``alert_outbox.destination`` (slack, pagerduty, webhook) and two more kinds
(``diagnostics``: the incident's diagnostics reply, built when it is sent; ``event``: a
PagerDuty or webhook event); ``alert_incidents.paged_state`` (what the paging
destinations were last told); ``restart_budget_resets`` (who gave an instance its
auto-restart budget back, and when).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = "kind IN ('root', 'reply', 'update', 'notice')"
NEW_KINDS = "kind IN ('root', 'reply', 'update', 'notice', 'diagnostics', 'event')"
DESTINATIONS = "destination IN ('slack', 'pagerduty', 'webhook')"


def upgrade() -> None:
    # SQLite changes a CHECK constraint by copying the table: batch mode does that.
    with op.batch_alter_table("alert_outbox") as batch:
        batch.add_column(
            sa.Column("destination", sa.String(length=16), server_default="slack", nullable=False)
        )
        batch.drop_constraint(op.f("ck_alert_outbox_kind"), type_="check")
        batch.create_check_constraint("kind", NEW_KINDS)
        batch.create_check_constraint("destination", DESTINATIONS)
    with op.batch_alter_table("alert_incidents") as batch:
        batch.add_column(sa.Column("paged_state", sa.String(length=16), nullable=True))
    op.create_table(
        "restart_budget_resets",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("instance_id", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_restart_budget_resets")),
    )
    op.create_index(
        op.f("ix_restart_budget_resets_instance_id_at"),
        "restart_budget_resets",
        ["instance_id", "at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_restart_budget_resets_instance_id_at"), table_name="restart_budget_resets"
    )
    op.drop_table("restart_budget_resets")
    with op.batch_alter_table("alert_incidents") as batch:
        batch.drop_column("paged_state")
    op.execute("DELETE FROM alert_outbox WHERE kind IN ('diagnostics', 'event')")
    with op.batch_alter_table("alert_outbox") as batch:
        batch.drop_constraint(op.f("ck_alert_outbox_destination"), type_="check")
        batch.drop_constraint(op.f("ck_alert_outbox_kind"), type_="check")
        batch.create_check_constraint("kind", OLD_KINDS)
        batch.drop_column("destination")
