"""People and segments: devices, segments, memberships, anonymous and deduplicated events.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the tables, columns and indexes."""
    with op.batch_alter_table("profiles") as batch:
        batch.add_column(sa.Column("email", sa.String(320), nullable=True))
        batch.create_index("ix_profiles_email", ["email"])
    with op.batch_alter_table("events") as batch:
        batch.alter_column("recipient_id", existing_type=sa.String(255), nullable=True)
        batch.add_column(sa.Column("anonymous_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("event_id", sa.String(255), nullable=True))
        batch.create_index("ix_events_anonymous_id", ["anonymous_id"])
        batch.create_index("ix_events_name_time", ["name", "timestamp"])
        batch.create_unique_constraint("uq_events_event_id", ["event_id"])
    op.create_table(
        "devices",
        sa.Column("recipient_id", sa.String(255), primary_key=True),
        sa.Column("token", sa.String(4096), primary_key=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("last_used", _TIME, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "segments",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("condition", sa.JSON, nullable=True),
        sa.Column("description", sa.String(1024), nullable=False, server_default=""),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "segment_members",
        sa.Column("segment", sa.String(255), primary_key=True),
        sa.Column("recipient_id", sa.String(255), primary_key=True),
        sa.Column("added_at", _TIME, nullable=False),
    )
    op.create_index("ix_segment_members_recipient_id", "segment_members", ["recipient_id"])
    op.create_table(
        "segment_state",
        sa.Column("segment", sa.String(255), primary_key=True),
        sa.Column("recipient_id", sa.String(255), primary_key=True),
        sa.Column("since", _TIME, nullable=False),
    )


def downgrade() -> None:
    """Remove them."""
    for table in ("segment_state", "segment_members", "segments", "devices"):
        op.drop_table(table)
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("uq_events_event_id", type_="unique")
        batch.drop_index("ix_events_name_time")
        batch.drop_index("ix_events_anonymous_id")
        batch.drop_column("event_id")
        batch.drop_column("anonymous_id")
    with op.batch_alter_table("profiles") as batch:
        batch.drop_index("ix_profiles_email")
        batch.drop_column("email")
