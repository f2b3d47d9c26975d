"""The engine's own store, one object per aggregate over one database.

SQLAlchemy 2 (async) on SQLite by default, PostgreSQL by URL; the schema is kept by Alembic
migrations that run when the store opens. :class:`Store` opens it and holds the
aggregates: ``profiles`` (with devices), ``events``, ``runs`` (and triggers), ``members``
(a cohort trigger's recipients), ``messages``, ``consent`` (preferences and suppressions)
and ``segments``, each a module of this package sharing :mod:`journeys.store.database`.
"""

from journeys.store.consent import ConsentStore
from journeys.store.database import Database, PersonPage, normalise_url
from journeys.store.events import EventStore
from journeys.store.members import MemberStore
from journeys.store.messages import MessageKey, MessageRecord, MessageStore, Withdrawal
from journeys.store.profiles import ProfileStore
from journeys.store.runs import RunRecord, RunStore, TriggerRecord
from journeys.store.segments import SegmentStore
from journeys.store.store import Store

__all__ = [
    "ConsentStore",
    "Database",
    "EventStore",
    "MemberStore",
    "MessageKey",
    "MessageRecord",
    "MessageStore",
    "PersonPage",
    "ProfileStore",
    "RunRecord",
    "RunStore",
    "SegmentStore",
    "Store",
    "TriggerRecord",
    "Withdrawal",
    "normalise_url",
]
