"""Profiles, events, triggers, runs and messages.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the first tables."""
    op.create_table(
        "profiles",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("recipient_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("timestamp", _TIME, nullable=False),
    )
    op.create_index(
        "ix_events_recipient_name_time", "events", ["recipient_id", "name", "timestamp"]
    )
    op.create_table(
        "triggers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("journey", sa.String(255), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True, unique=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("workflow_id", sa.String(600), primary_key=True),
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("journey", sa.String(255), nullable=False),
        sa.Column("recipient_id", sa.String(255), nullable=False),
        sa.Column("trigger_id", sa.String(64), nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("closed", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_runs_recipient_open", "runs", ["recipient_id", "closed"])
    op.create_index("ix_runs_trigger", "runs", ["trigger_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.String(700), primary_key=True),
        sa.Column("workflow_id", sa.String(600), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step", sa.String(255), nullable=False),
        sa.Column("recipient_id", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("address", sa.String(2048), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_index("ix_messages_recipient", "messages", ["recipient_id"])
    op.create_index("ix_messages_run", "messages", ["workflow_id", "run_id"])


def downgrade() -> None:
    """Drop them."""
    for table in ("messages", "runs", "triggers", "events", "profiles"):
        op.drop_table(table)
