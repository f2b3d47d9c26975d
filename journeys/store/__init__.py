"""The engine's own store: profiles, events, triggers, runs and messages.

SQLAlchemy 2 (async) on SQLite by default, PostgreSQL by URL; the schema is kept by Alembic
migrations that run when the store opens.
"""

from journeys.store.store import (
    MessageRecord,
    PersonPage,
    RunRecord,
    Store,
    TriggerRecord,
    normalise_url,
)

__all__ = ["MessageRecord", "PersonPage", "RunRecord", "Store", "TriggerRecord", "normalise_url"]
