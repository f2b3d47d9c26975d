"""Segments: their definitions, manual members, conditions over people, and entries.

A condition (a segment's, a journey's ``when``) is compiled to SQL about ``profiles``
rows (:mod:`journeys.store.segment_sql`) and answered in one query. Segment entry locks
the person it reads first — ``FOR UPDATE`` on PostgreSQL, the write lock SQLite's write
transactions take — so concurrent calls about the same person apply one after the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from definitions.conditions import Condition, SegmentCondition
from definitions.values import JSONValue
from journeys.store import tables as t
from journeys.store.database import (
    Database,
    PersonPage,
    chunks,
    hold_people,
    lock_people,
    now,
    person_page,
)
from journeys.store.dialects import insert
from journeys.store.segment_sql import ConditionSQL

__all__ = ["SegmentStore"]

Lookup = Callable[[str], SegmentCondition | None]
"""Finds a segment a condition names but does not carry (one defined through the API)."""


class SegmentStore:
    """Segments defined through the API, manual members, and conditions over people.

    Args:
        db: the store's database.

    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def sql(self, lookup: Lookup | None = None) -> ConditionSQL:
        """A compiler of conditions to SQL for this store's database."""
        return ConditionSQL(self.db.dialect, lookup=lookup)

    # -- definitions -------------------------------------------------------------------------

    async def saved(self) -> dict[str, dict[str, JSONValue]]:
        """Segments defined through the API: name → {kind, condition, description}."""
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(select(t.segments))
            return {
                r.name: {"kind": r.kind, "condition": r.condition, "description": r.description}
                for r in rows
            }

    async def save(
        self, name: str, kind: str, condition: Mapping[str, JSONValue] | None, description: str = ""
    ) -> None:
        """Create or replace a segment defined through the API."""
        statement = insert(self.db.dialect, t.segments).values(
            name=name, kind=kind, condition=condition, description=description, created_at=now()
        )
        new = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=[t.segments.c.name],
            set_={"kind": new.kind, "condition": new.condition, "description": new.description},
        )
        async with self.db.writer.begin() as conn:
            await conn.execute(statement)

    async def delete(self, name: str) -> None:
        """Remove a segment defined through the API, and its manual members."""
        async with self.db.writer.begin() as conn:
            await conn.execute(delete(t.segments).where(t.segments.c.name == name))
            await conn.execute(delete(t.segment_members).where(t.segment_members.c.segment == name))

    # -- manual members ----------------------------------------------------------------------

    async def add_members(self, segment: str, recipient_ids: list[str]) -> None:
        """Add people to a manual segment (those without a profile get an empty one)."""
        if not recipient_ids:
            return
        ids = sorted(set(recipient_ids))
        at = now()
        statement = insert(self.db.dialect, t.segment_members).on_conflict_do_nothing(
            index_elements=[t.segment_members.c.segment, t.segment_members.c.recipient_id]
        )
        async with self.db.writer.begin() as conn:
            await hold_people(conn, ids)
            for start in range(0, len(ids), 1000):
                await conn.execute(
                    statement,
                    [
                        {"segment": segment, "recipient_id": r, "added_at": at}
                        for r in ids[start : start + 1000]
                    ],
                )

    async def remove_members(self, segment: str, recipient_ids: list[str]) -> None:
        """Take people out of a manual segment."""
        async with self.db.writer.begin() as conn:
            await conn.execute(
                delete(t.segment_members).where(
                    t.segment_members.c.segment == segment,
                    t.segment_members.c.recipient_id.in_(recipient_ids),
                )
            )

    async def is_member(self, segment: str, recipient_id: str) -> bool:
        """Whether a person is in a manual segment."""
        async with self.db.engine.connect() as conn:
            found = (
                await conn.execute(
                    select(literal(1)).where(
                        t.segment_members.c.segment == segment,
                        t.segment_members.c.recipient_id == recipient_id,
                    )
                )
            ).first()
        return found is not None

    # -- conditions over people --------------------------------------------------------------

    async def members(
        self,
        condition: Condition,
        *,
        after: str | None = None,
        limit: int = 100,
        lookup: Lookup | None = None,
    ) -> PersonPage:
        """The people a (compiled) condition holds for, a page at a time, in one query."""
        return await person_page(
            self.db.engine, self.sql(lookup).where(condition), after=after, limit=limit
        )

    async def count(self, condition: Condition, lookup: Lookup | None = None) -> int:
        """How many people a condition holds for."""
        query = (
            select(func.count()).select_from(t.profiles).where(self.sql(lookup).where(condition))
        )
        async with self.db.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def matching(
        self, condition: Condition, recipient_ids: Sequence[str], *, now: datetime | None = None
    ) -> tuple[set[str], set[str]]:
        """Which of these people a condition holds for, in one query per few hundred ids.

        Returns:
            (the ids it holds for, the ids that have no profile: the caller decides those,
            since a condition such as ``ne`` or ``not`` can hold for someone unknown).

        """
        compiler = self.sql()
        if now is not None:
            compiler.now = now
        where = compiler.where(condition)
        matched: set[str] = set()
        known: set[str] = set()
        async with self.db.engine.connect() as conn:
            for chunk in chunks(list(recipient_ids)):
                rows = await conn.execute(
                    select(t.profiles.c.id, where.label("hit")).where(t.profiles.c.id.in_(chunk))
                )
                for row in rows:
                    known.add(row.id)
                    if row.hit:
                        matched.add(row.id)
        return matched, set(recipient_ids) - known

    async def memberships(
        self, recipient_id: str, segments: Mapping[str, Condition], lookup: Lookup | None = None
    ) -> list[str]:
        """The segments (name → compiled condition) a person is in, in one query."""
        async with self.db.engine.connect() as conn:
            return await self._memberships(conn, recipient_id, segments, lookup)

    async def _memberships(
        self,
        conn: AsyncConnection,
        recipient_id: str,
        segments: Mapping[str, Condition],
        lookup: Lookup | None = None,
    ) -> list[str]:
        if not segments:
            return []
        compiler = self.sql(lookup)
        names = list(segments)
        columns = [compiler.where(segments[n]).label(f"s{i}") for i, n in enumerate(names)]
        row = (await conn.execute(select(*columns).where(t.profiles.c.id == recipient_id))).first()
        if row is None:
            return []
        return [n for i, n in enumerate(names) if row[i]]

    async def entered(
        self, recipient_id: str, segments: Mapping[str, Condition], lookup: Lookup | None = None
    ) -> set[str]:
        """Which of these segments (name → compiled condition) a person has just entered.

        Records which of them the person is in now; they entered those they are in now
        and were not in the last time. The person is locked while their memberships are
        computed and recorded, so of two concurrent calls one sees the other's record
        (an entry is reported once), and nothing is recorded for someone deleted.

        Most calls change nothing (the person is in the same segments as last time): a
        read without the lock says so first, and only a change takes the lock (and looks
        again under it).
        """
        tracked = set(segments)
        if not tracked:
            return set()
        async with self.db.engine.connect() as conn:
            if await self._unchanged(conn, recipient_id, segments, lookup):
                return set()
        async with self.db.writer.begin() as conn:
            if not await lock_people(conn, [recipient_id]):
                return set()
            now_in = set(await self._memberships(conn, recipient_id, segments, lookup))
            before = await self._recorded(conn, recipient_id)
            entered = (now_in - before) & tracked
            left = (before - now_in) & tracked
            if left:
                await conn.execute(
                    delete(t.segment_state).where(
                        t.segment_state.c.recipient_id == recipient_id,
                        t.segment_state.c.segment.in_(left),
                    )
                )
            if entered:
                await conn.execute(
                    insert(self.db.dialect, t.segment_state),
                    [
                        {"segment": s, "recipient_id": recipient_id, "since": now()}
                        for s in sorted(entered)
                    ],
                )
        return entered

    async def _recorded(self, conn: AsyncConnection, recipient_id: str) -> set[str]:
        """The segments a person was in the last time :meth:`entered` looked."""
        rows = await conn.execute(
            select(t.segment_state.c.segment).where(t.segment_state.c.recipient_id == recipient_id)
        )
        return set(rows.scalars())

    async def changed(
        self, people: Mapping[str, Mapping[str, Condition]], lookup: Lookup | None = None
    ) -> set[str]:
        """Of these people (id → their segments), those not in the segments last recorded.

        One query per few hundred people (each person is compared on their own segments):
        the read :meth:`entered` makes first, for a group of people at once, so that only
        those it names need :meth:`entered`. Someone without a profile is never named.
        """
        names: dict[str, Condition] = {}
        for segments in people.values():
            names.update(segments)
        if not names:
            return set()
        order = list(names)
        columns = [t.profiles.c.id, *self._compared(names, lookup)]
        found: set[str] = set()
        async with self.db.engine.connect() as conn:
            for chunk in chunks(list(people)):
                rows = await conn.execute(select(*columns).where(t.profiles.c.id.in_(chunk)))
                for row in rows:
                    mine = people[row.id]
                    if any(
                        bool(row[1 + i]) != bool(row[1 + len(order) + i])
                        for i, name in enumerate(order)
                        if name in mine
                    ):
                        found.add(row.id)
        return found

    async def _unchanged(
        self,
        conn: AsyncConnection,
        recipient_id: str,
        segments: Mapping[str, Condition],
        lookup: Lookup | None = None,
    ) -> bool:
        """Whether a person is in the same of these segments as last recorded (one query).

        True for someone without a profile too: nothing is recorded for them.
        """
        n = len(segments)
        columns = self._compared(segments, lookup)
        row = (await conn.execute(select(*columns).where(t.profiles.c.id == recipient_id))).first()
        if row is None:
            return True
        return all(bool(row[i]) == bool(row[n + i]) for i in range(n))

    def _compared(
        self, segments: Mapping[str, Condition], lookup: Lookup | None
    ) -> list[ColumnElement[bool]]:
        """Columns about a ``profiles`` row: in each segment now, then recorded in each.

        Both in the order of ``segments``.
        """
        compiler = self.sql(lookup)
        state = t.segment_state
        names = list(segments)
        now_in = [compiler.where(segments[n]).label(f"s{i}") for i, n in enumerate(names)]
        recorded = [
            exists(
                select(literal(1)).where(
                    state.c.recipient_id == t.profiles.c.id, state.c.segment == n
                )
            ).label(f"b{i}")
            for i, n in enumerate(names)
        ]
        return [*now_in, *recorded]
