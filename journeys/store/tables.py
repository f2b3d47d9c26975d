"""The store's tables, described once for queries and migrations alike."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

__all__ = [
    "devices",
    "events",
    "messages",
    "metadata",
    "preferences",
    "profiles",
    "runs",
    "segment_members",
    "segment_state",
    "segments",
    "suppressions",
    "trigger_recipients",
    "triggers",
]

metadata = MetaData()

profiles = Table(
    "profiles",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("attributes", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The ``email`` attribute lower-cased, for look-ups and filters.
    Column("email", String(320), nullable=True, index=True),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipient_id", String(255), nullable=True),
    Column("name", String(255), nullable=False),
    Column("data", JSON, nullable=False),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("anonymous_id", String(255), nullable=True, index=True),
    # The sender's id of the event (Customer.io's ``id``): a repeat is ignored.
    Column("event_id", String(255), nullable=True, unique=True),
    Index("ix_events_recipient_name_time", "recipient_id", "name", "timestamp"),
    Index("ix_events_name_time", "name", "timestamp"),
)

triggers = Table(
    "triggers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("journey", String(255), nullable=False),
    Column("idempotency_key", String(255), nullable=True, unique=True),
    Column("data", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # How many recipients a cohort trigger has (NULL: one run per recipient).
    Column("recipients", Integer, nullable=True),
)

trigger_recipients = Table(
    "trigger_recipients",
    metadata,
    Column("trigger_id", String(64), primary_key=True),
    # Order of the recipients in the trigger() call; cohorts take them in pages.
    Column("position", Integer, primary_key=True),
    Column("recipient_id", String(255), nullable=False),
    Column("data", JSON, nullable=True),
)

runs = Table(
    "runs",
    metadata,
    Column("workflow_id", String(600), primary_key=True),
    Column("run_id", String(64), primary_key=True),
    Column("journey", String(255), nullable=False),
    Column("recipient_id", String(255), nullable=False),
    Column("trigger_id", String(64), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("closed", Integer, nullable=False, default=0),
    # 1 when the run is one recipient of a cohort workflow (run_id is then ``m_…``).
    Column("member", Integer, nullable=False, default=0, server_default="0"),
    # The run's final RunProgress (JSON), written when it ends.
    Column("outcome", JSON, nullable=True),
    Index("ix_runs_recipient_open", "recipient_id", "closed"),
    Index("ix_runs_trigger", "trigger_id"),
    Index("ix_runs_journey_recipient", "journey", "recipient_id", "closed"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(700), primary_key=True),
    Column("workflow_id", String(600), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("step", String(255), nullable=False),
    Column("recipient_id", String(255), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("address", String(2048), nullable=True),
    Column("state", String(32), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("provider_id", String(255), nullable=True),
    Column("reason", String(255), nullable=True),
    Index("ix_messages_recipient", "recipient_id"),
    Index("ix_messages_run", "workflow_id", "run_id"),
)

preferences = Table(
    "preferences",
    metadata,
    Column("recipient_id", String(255), primary_key=True),
    Column("unsubscribed", Integer, nullable=False, default=0),
    Column("channels", JSON, nullable=False),
    Column("topics", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("value", String(2048), primary_key=True),
    Column("reason", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("recipient_id", String(255), primary_key=True),
    Column("token", String(4096), primary_key=True),
    Column("platform", String(32), nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("last_used", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

segments = Table(
    "segments",
    metadata,
    Column("name", String(255), primary_key=True),
    # manual (people added by id) or dynamic (a condition defined through the API)
    Column("kind", String(16), nullable=False),
    Column("condition", JSON, nullable=True),
    Column("description", String(1024), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

segment_members = Table(
    "segment_members",
    metadata,
    Column("segment", String(255), primary_key=True),
    Column("recipient_id", String(255), primary_key=True, index=True),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

segment_state = Table(
    "segment_state",
    metadata,
    Column("segment", String(255), primary_key=True),
    Column("recipient_id", String(255), primary_key=True),
    # Membership last seen, for telling when a person enters a segment.
    Column("since", DateTime(timezone=True), nullable=False),
)
