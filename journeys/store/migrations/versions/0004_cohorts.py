"""Cohorts: a trigger's recipients to page through, and runs that are one member of a cohort.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the trigger_recipients table and the runs' member and outcome columns."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("member", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("outcome", sa.JSON, nullable=True))
        batch.create_index("ix_runs_journey_recipient", ["journey", "recipient_id", "closed"])
    with op.batch_alter_table("triggers") as batch:
        batch.add_column(sa.Column("recipients", sa.Integer, nullable=True))
    op.create_table(
        "trigger_recipients",
        sa.Column("trigger_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("recipient_id", sa.String(255), nullable=False),
        sa.Column("data", sa.JSON, nullable=True),
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_table("trigger_recipients")
    with op.batch_alter_table("triggers") as batch:
        batch.drop_column("recipients")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_journey_recipient")
        batch.drop_column("outcome")
        batch.drop_column("member")
