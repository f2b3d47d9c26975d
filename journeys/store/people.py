"""People, segments and GDPR, as store operations (mixed into :class:`Store`).

Writes that read before they write (a merge, segment entry) lock the people they read
first — ``FOR UPDATE`` on PostgreSQL, the write lock SQLite's write transactions take — so
concurrent requests about the same person apply one after the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, delete, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from definitions.conditions import SegmentCondition
from journeys.store import tables as t
from journeys.store.dialects import insert
from journeys.store.profiles import ProfileStore, email_of
from journeys.store.segment_sql import ConditionSQL

__all__ = ["PeopleStore", "PersonPage"]


def _now() -> datetime:
    return datetime.now(UTC)


_PLACEHOLDER = datetime(1970, 1, 1, tzinfo=UTC)
"""``created_at`` of the profile :meth:`PeopleStore.delete_person` holds when there is none."""


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class PersonPage:
    """A page of people, in id order."""

    ids: list[str]
    next: str | None
    """Pass as ``after`` for the next page; None on the last page."""


class PeopleStore(ProfileStore):
    """The store's people and segment operations."""

    # -- people ------------------------------------------------------------------------------

    async def find_by_email(self, email: str) -> str | None:
        """The id of the person with this email (case-insensitive), if any."""
        async with self.engine.connect() as conn:
            value = (
                await conn.execute(
                    select(t.profiles.c.id)
                    .where(t.profiles.c.email == email.strip().lower())
                    .order_by(t.profiles.c.id)
                    .limit(1)
                )
            ).scalar()
        return str(value) if value is not None else None

    async def list_people(
        self,
        *,
        email: str | None = None,
        attribute: tuple[str, Any] | None = None,
        where: Any = None,
        after: str | None = None,
        limit: int = 50,
    ) -> PersonPage:
        """People in id order, filtered by email, an attribute value or a condition."""
        from definitions.conditions import AttributeCondition

        query = select(t.profiles.c.id)
        if email is not None:
            query = query.where(t.profiles.c.email == email.strip().lower())
        if attribute is not None:
            query = query.where(
                self.sql().where(
                    AttributeCondition(attribute=attribute[0], op="eq", value=attribute[1])
                )
            )
        if where is not None:
            query = query.where(where)
        if after is not None:
            query = query.where(t.profiles.c.id > after)
        query = query.order_by(t.profiles.c.id).limit(limit + 1)
        async with self.engine.connect() as conn:
            ids = [str(v) for v in (await conn.execute(query)).scalars()]
        more = len(ids) > limit
        ids = ids[:limit]
        return PersonPage(ids, ids[-1] if more and ids else None)

    async def merge_people(self, primary: str, secondary: str) -> None:
        """Fold ``secondary`` into ``primary``; then ``secondary`` is gone.

        Attributes merge (primary wins), and events, messages, runs, devices, segment
        memberships and preferences move over. Both people are locked first, in id order,
        so a concurrent write to either waits for the merge (and is not lost).
        """
        async with self.writer.begin() as conn:
            rows = await _lock(conn, [primary, secondary])
            if secondary not in rows:
                return
            if primary not in rows:
                await self._ensure(conn, [primary])
                rows = await _lock(conn, [primary, secondary])
            first, second = rows[primary], rows[secondary]
            attributes = {**second.attributes, **first.attributes}
            await conn.execute(
                update(t.profiles)
                .where(t.profiles.c.id == primary)
                .values(
                    attributes=attributes,
                    created_at=min(_aware(first.created_at), _aware(second.created_at)),  # type: ignore[type-var]
                    updated_at=_now(),
                    email=email_of(attributes),
                )
            )
            for table in (t.events, t.messages, t.runs):
                await conn.execute(
                    update(table)
                    .where(table.c.recipient_id == secondary)
                    .values(recipient_id=primary)
                )
            for table in (t.devices, t.segment_members, t.preferences):
                await self._move(conn, table, secondary, primary)
            await conn.execute(
                delete(t.segment_state).where(t.segment_state.c.recipient_id == secondary)
            )
            await conn.execute(delete(t.profiles).where(t.profiles.c.id == secondary))

    async def _move(self, conn: AsyncConnection, table: Table, source: str, target: str) -> None:
        """Give ``source``'s rows to ``target``, except keys ``target`` has already."""
        columns = [c.name for c in table.c]
        chosen = select(
            *(
                literal(target, table.c.recipient_id.type).label(c.name)
                if c.name == "recipient_id"
                else c
                for c in table.c
            )
        ).where(table.c.recipient_id == source)
        await conn.execute(
            insert(self.dialect, table).from_select(columns, chosen).on_conflict_do_nothing()
        )
        await conn.execute(delete(table).where(table.c.recipient_id == source))

    async def delete_person(self, recipient_id: str) -> bool:
        """Delete a person and everything about them; False when there was no profile.

        The profile is held first — written as a placeholder when there is none, which
        makes a concurrent write that is creating it finish first — and every write about
        a person holds it too: the delete takes all of a concurrent write or none of it.
        """
        async with self.writer.begin() as conn:
            held = insert(self.dialect, t.profiles).values(
                id=recipient_id,
                attributes={},
                created_at=_PLACEHOLDER,
                updated_at=_PLACEHOLDER,
                email=None,
            )
            held = held.on_conflict_do_update(
                index_elements=[t.profiles.c.id], set_={"updated_at": t.profiles.c.updated_at}
            )
            await conn.execute(held)
            created = (
                await conn.execute(
                    delete(t.profiles)
                    .where(t.profiles.c.id == recipient_id)
                    .returning(t.profiles.c.created_at)
                )
            ).scalar_one()
            for table in (
                t.events,
                t.messages,
                t.devices,
                t.segment_members,
                t.segment_state,
                t.runs,
                t.trigger_recipients,
            ):
                await conn.execute(delete(table).where(table.c.recipient_id == recipient_id))
            await conn.execute(
                delete(t.preferences).where(t.preferences.c.recipient_id == recipient_id)
            )
            await conn.execute(
                delete(t.suppressions).where(
                    t.suppressions.c.kind == "person", t.suppressions.c.value == recipient_id
                )
            )
        return _aware(created) != _PLACEHOLDER

    async def person_events(self, recipient_id: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        """A person's events, newest first."""
        async with self.engine.connect() as conn:
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
                    "timestamp": _aware(r.timestamp),
                    "event_id": r.event_id,
                    "anonymous_id": r.anonymous_id,
                }
                for r in rows
            ]

    # -- segments ----------------------------------------------------------------------------

    def sql(self, lookup: Callable[[str], SegmentCondition | None] | None = None) -> ConditionSQL:
        """A compiler of conditions to SQL for this store's database."""
        return ConditionSQL(self.dialect, lookup=lookup)

    async def saved_segments(self) -> dict[str, dict[str, Any]]:
        """Segments defined through the API: name → {kind, condition, description}."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(t.segments))
            return {
                r.name: {"kind": r.kind, "condition": r.condition, "description": r.description}
                for r in rows
            }

    async def save_segment(
        self, name: str, kind: str, condition: dict[str, Any] | None, description: str = ""
    ) -> None:
        """Create or replace a segment defined through the API."""
        statement = insert(self.dialect, t.segments).values(
            name=name, kind=kind, condition=condition, description=description, created_at=_now()
        )
        new = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=[t.segments.c.name],
            set_={"kind": new.kind, "condition": new.condition, "description": new.description},
        )
        async with self.writer.begin() as conn:
            await conn.execute(statement)

    async def delete_segment(self, name: str) -> None:
        """Remove a segment defined through the API, and its manual members."""
        async with self.writer.begin() as conn:
            await conn.execute(delete(t.segments).where(t.segments.c.name == name))
            await conn.execute(delete(t.segment_members).where(t.segment_members.c.segment == name))

    async def add_members(self, segment: str, recipient_ids: list[str]) -> None:
        """Add people to a manual segment (those without a profile get an empty one)."""
        if not recipient_ids:
            return
        ids = sorted(set(recipient_ids))
        now = _now()
        statement = insert(self.dialect, t.segment_members).on_conflict_do_nothing(
            index_elements=[t.segment_members.c.segment, t.segment_members.c.recipient_id]
        )
        async with self.writer.begin() as conn:
            await self._ensure(conn, ids)
            for start in range(0, len(ids), 1000):
                await conn.execute(
                    statement,
                    [
                        {"segment": segment, "recipient_id": r, "added_at": now}
                        for r in ids[start : start + 1000]
                    ],
                )

    async def remove_members(self, segment: str, recipient_ids: list[str]) -> None:
        """Take people out of a manual segment."""
        async with self.writer.begin() as conn:
            await conn.execute(
                delete(t.segment_members).where(
                    t.segment_members.c.segment == segment,
                    t.segment_members.c.recipient_id.in_(recipient_ids),
                )
            )

    async def is_member(self, segment: str, recipient_id: str) -> bool:
        """Whether a person is in a manual segment."""
        async with self.engine.connect() as conn:
            found = (
                await conn.execute(
                    select(literal(1)).where(
                        t.segment_members.c.segment == segment,
                        t.segment_members.c.recipient_id == recipient_id,
                    )
                )
            ).first()
        return found is not None

    async def members(
        self,
        condition: Any,
        *,
        after: str | None = None,
        limit: int = 100,
        lookup: Callable[[str], SegmentCondition | None] | None = None,
    ) -> PersonPage:
        """The people a (compiled) condition holds for, a page at a time, in one query."""
        return await self.list_people(
            where=self.sql(lookup).where(condition), after=after, limit=limit
        )

    async def count_members(
        self, condition: Any, lookup: Callable[[str], SegmentCondition | None] | None = None
    ) -> int:
        """How many people a condition holds for."""
        query = (
            select(func.count()).select_from(t.profiles).where(self.sql(lookup).where(condition))
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def memberships(
        self,
        recipient_id: str,
        segments: dict[str, Any],
        lookup: Callable[[str], SegmentCondition | None] | None = None,
    ) -> list[str]:
        """The segments (name → compiled condition) a person is in, in one query."""
        async with self.engine.connect() as conn:
            return await self._memberships(conn, recipient_id, segments, lookup)

    async def _memberships(
        self,
        conn: AsyncConnection,
        recipient_id: str,
        segments: dict[str, Any],
        lookup: Callable[[str], SegmentCondition | None] | None = None,
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
        self,
        recipient_id: str,
        segments: dict[str, Any],
        lookup: Callable[[str], SegmentCondition | None] | None = None,
    ) -> set[str]:
        """Which of these segments (name → compiled condition) a person has just entered.

        Records which of them the person is in now; they entered those they are in now
        and were not in the last time. The person is locked while their memberships are
        computed and recorded, so of two concurrent calls one sees the other's record
        (an entry is reported once), and nothing is recorded for someone deleted.
        """
        async with self.writer.begin() as conn:
            if not await _lock(conn, [recipient_id]):
                return set()
            now_in = set(await self._memberships(conn, recipient_id, segments, lookup))
            tracked = set(segments)
            before = set(
                (
                    await conn.execute(
                        select(t.segment_state.c.segment).where(
                            t.segment_state.c.recipient_id == recipient_id
                        )
                    )
                ).scalars()
            )
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
                    insert(self.dialect, t.segment_state),
                    [
                        {"segment": s, "recipient_id": recipient_id, "since": _now()}
                        for s in sorted(entered)
                    ],
                )
        return entered

    async def last_run_started(self, journey: str, recipient_id: str) -> datetime | None:
        """When the person last entered a journey, if ever."""
        async with self.engine.connect() as conn:
            value = (
                await conn.execute(
                    select(func.max(t.runs.c.started_at)).where(
                        t.runs.c.journey == journey, t.runs.c.recipient_id == recipient_id
                    )
                )
            ).scalar()
        return _aware(value)


async def _lock(conn: AsyncConnection, recipient_ids: list[str]) -> dict[str, Any]:
    """The profiles of these people, locked (PostgreSQL: in id order) until the end.

    SQLite's write transactions hold the database's write lock already; ``FOR UPDATE``
    is not written there.
    """
    rows = await conn.execute(
        select(t.profiles)
        .where(t.profiles.c.id.in_(sorted(set(recipient_ids))))
        .order_by(t.profiles.c.id)
        .with_for_update()
    )
    return {row.id: row for row in rows}
