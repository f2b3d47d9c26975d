"""Events: what people (and anonymous visitors) did, counted by conditions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from definitions.values import JSONValue
from journeys.store import tables as t
from journeys.store.database import Database, aware, hold_people, now

__all__ = ["EventStore"]


class EventStore:
    """The events table.

    Args:
        db: the store's database.

    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self,
        recipient_id: str | None,
        name: str,
        data: Mapping[str, JSONValue] | None = None,
        at: datetime | None = None,
        *,
        anonymous_id: str | None = None,
        event_id: str | None = None,
        create_person: bool = False,
    ) -> int | None:
        """Store an event of a person (or an anonymous visitor); returns its id.

        Returns None when ``event_id`` was recorded before: a repeat changes nothing.
        With ``create_person``, a person without a profile gets an empty one, in the same
        transaction (so a concurrent delete of the person takes both or neither).
        """
        try:
            async with self.db.writer.begin() as conn:
                if create_person and recipient_id is not None:
                    await hold_people(conn, [recipient_id])
                result = await conn.execute(
                    t.events.insert().values(
                        recipient_id=recipient_id,
                        name=name,
                        data=dict(data or {}),
                        timestamp=at or now(),
                        anonymous_id=anonymous_id,
                        event_id=event_id,
                    )
                )
        except IntegrityError:
            if event_id is None:
                raise
            return None
        key = result.inserted_primary_key
        return int(key[0]) if key else 0

    async def count(self, recipient_id: str, name: str, since: datetime | None = None) -> int:
        """How many times the recipient did an event (since a time, when given)."""
        query = (
            select(func.count())
            .select_from(t.events)
            .where(t.events.c.recipient_id == recipient_id, t.events.c.name == name)
        )
        if since is not None:
            query = query.where(t.events.c.timestamp >= since)
        async with self.db.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def of_person(self, recipient_id: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        """A person's events, newest first."""
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(
                select(t.events)
                .where(t.events.c.recipient_id == recipient_id)
                .order_by(t.events.c.timestamp.desc(), t.events.c.id.desc())
                .limit(limit)
            )
            return [
                {
                    "id": r.id,
                    "name": r.name,
                    "data": r.data,
                    "timestamp": aware(r.timestamp),
                    "event_id": r.event_id,
                    "anonymous_id": r.anonymous_id,
                }
                for r in rows
            ]
