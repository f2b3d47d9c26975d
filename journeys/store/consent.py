"""Consent: each recipient's preferences, and the people and addresses suppressed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from journeys.consent import Preferences
from journeys.store import tables as t
from journeys.store.coalesce import Coalescer
from journeys.store.database import CHUNK, Database, now
from journeys.store.dialects import insert, json_merge

__all__ = ["ConsentStore"]


class ConsentStore:
    """The preferences and suppressions tables.

    Args:
        db: the store's database.

    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._suppressions = Coalescer(self.suppressions, most=CHUNK // 4)

    # -- preferences -------------------------------------------------------------------------

    async def preferences(self, recipient_id: str) -> Preferences:
        """A recipient's preferences (the defaults when none were set)."""
        async with self.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t.preferences).where(t.preferences.c.recipient_id == recipient_id)
                )
            ).first()
        if row is None:
            return Preferences(recipient_id)
        return Preferences(
            recipient_id, bool(row.unsubscribed), dict(row.channels), dict(row.topics)
        )

    async def many_preferences(self, recipient_ids: Sequence[str]) -> dict[str, Preferences]:
        """Many recipients' preferences (the defaults for those who set none)."""
        found = {rid: Preferences(rid) for rid in recipient_ids}
        ids = list(recipient_ids)
        async with self.db.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                rows = await conn.execute(
                    select(t.preferences).where(
                        t.preferences.c.recipient_id.in_(ids[start : start + 500])
                    )
                )
                for row in rows:
                    found[row.recipient_id] = Preferences(
                        row.recipient_id,
                        bool(row.unsubscribed),
                        dict(row.channels),
                        dict(row.topics),
                    )
        return found

    async def update_preferences(
        self,
        recipient_id: str,
        *,
        unsubscribed: bool | None = None,
        channels: dict[str, bool] | None = None,
        topics: dict[str, bool] | None = None,
    ) -> Preferences:
        """Change some preferences, keeping the others; returns the result.

        One statement: channels and topics merge in the database, so concurrent updates
        of different keys all hold.
        """
        p = t.preferences.c
        statement = insert(self.db.dialect, t.preferences).values(
            recipient_id=recipient_id,
            unsubscribed=int(bool(unsubscribed)),
            channels=dict(channels or {}),
            topics=dict(topics or {}),
            updated_at=now(),
        )
        new = statement.excluded
        changes: dict[str, Any] = {
            "channels": json_merge(p.channels, new.channels),
            "topics": json_merge(p.topics, new.topics),
            "updated_at": new.updated_at,
        }
        if unsubscribed is not None:
            changes["unsubscribed"] = new.unsubscribed
        statement = statement.on_conflict_do_update(index_elements=[p.recipient_id], set_=changes)
        async with self.db.writer.begin() as conn:
            row = (
                await conn.execute(statement.returning(p.unsubscribed, p.channels, p.topics))
            ).one()
        return Preferences(
            recipient_id, bool(row.unsubscribed), dict(row.channels), dict(row.topics)
        )

    # -- suppressions ------------------------------------------------------------------------

    async def suppress(self, kind: str, value: str, reason: str) -> None:
        """Suppress a person (``kind="person"``) or an address (``kind="address"``).

        Suppressing again keeps the first reason.
        """
        statement = insert(self.db.dialect, t.suppressions).on_conflict_do_nothing(
            index_elements=[t.suppressions.c.kind, t.suppressions.c.value]
        )
        async with self.db.writer.begin() as conn:
            await conn.execute(
                statement.values(kind=kind, value=value, reason=reason, created_at=now())
            )

    async def unsuppress(self, kind: str, value: str) -> None:
        """Lift a suppression."""
        async with self.db.writer.begin() as conn:
            await conn.execute(
                t.suppressions.delete().where(
                    t.suppressions.c.kind == kind, t.suppressions.c.value == value
                )
            )

    async def suppression(self, recipient_id: str, addresses: list[str]) -> str | None:
        """The reason a person or one of these addresses is suppressed, or None.

        Asked while another question is being read, it is read with the next group's
        questions, in one query.
        """
        return await self._suppressions((recipient_id, addresses))

    async def suppressions(self, questions: Sequence[tuple[str, list[str]]]) -> list[str | None]:
        """:meth:`suppression` for many (person, addresses) at once, in order."""
        wanted = [
            [("person", recipient_id), *(("address", a.lower()) for a in addresses)]
            for recipient_id, addresses in questions
        ]
        values = sorted({value for pairs in wanted for _, value in pairs})
        found: dict[tuple[str, str], str] = {}
        async with self.db.engine.connect() as conn:
            for start in range(0, len(values), CHUNK):
                rows = await conn.execute(
                    select(t.suppressions).where(
                        t.suppressions.c.value.in_(values[start : start + CHUNK])
                    )
                )
                for row in rows:
                    found[(row.kind, row.value)] = f"{row.kind}: {row.reason}"
        return [next((found[p] for p in pairs if p in found), None) for pairs in wanted]
