"""Preferences, suppressions, and the provider id and skip reason of messages.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the tables and columns."""
    op.create_table(
        "preferences",
        sa.Column("recipient_id", sa.String(255), primary_key=True),
        sa.Column("unsubscribed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("channels", sa.JSON, nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_table(
        "suppressions",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(2048), primary_key=True),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("provider_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("reason", sa.String(255), nullable=True))


def downgrade() -> None:
    """Remove them."""
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("reason")
        batch.drop_column("provider_id")
    op.drop_table("suppressions")
    op.drop_table("preferences")
