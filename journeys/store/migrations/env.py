"""Alembic environment: migrations run on a connection handed over by the store."""

from __future__ import annotations

from alembic import context

from journeys.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through Store.migrate
    raise RuntimeError("run migrations through journeys.store.Store.migrate()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
