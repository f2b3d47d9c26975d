"""People, devices, segments and GDPR, as store operations (mixed into :class:`Store`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from definitions.conditions import SegmentCondition
from journeys.store import tables as t
from journeys.store.segment_sql import ConditionSQL

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["PeopleStore", "PersonPage"]


def _now() -> datetime:
    return datetime.now(UTC)


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


class PeopleStore:
    """The store's people and segment operations."""

    engine: AsyncEngine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return str(self.engine.dialect.name)

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

    async def attach_anonymous(self, recipient_id: str, anonymous_id: str) -> int:
        """Give a person the events an anonymous visitor did; returns how many moved."""
        async with self.engine.begin() as conn:
            moved = await conn.execute(
                update(t.events)
                .where(t.events.c.anonymous_id == anonymous_id, t.events.c.recipient_id.is_(None))
                .values(recipient_id=recipient_id)
            )
        return int(moved.rowcount or 0)

    async def merge_people(self, primary: str, secondary: str) -> None:
        """Fold ``secondary`` into ``primary``; then ``secondary`` is gone.

        Attributes merge (primary wins), and events, messages, runs, devices, segment
        memberships and preferences move over.
        """
        async with self.engine.begin() as conn:
            rows = {
                r.id: r
                for r in await conn.execute(
                    select(t.profiles).where(t.profiles.c.id.in_([primary, secondary]))
                )
            }
            if secondary not in rows:
                return
            attributes = {
                **rows[secondary].attributes,
                **(rows[primary].attributes if primary in rows else {}),
            }
            if primary in rows:
                created = min(
                    _aware(rows[primary].created_at),  # type: ignore[type-var]
                    _aware(rows[secondary].created_at),
                )
                await conn.execute(
                    update(t.profiles)
                    .where(t.profiles.c.id == primary)
                    .values(
                        attributes=attributes,
                        created_at=created,
                        updated_at=_now(),
                        email=rows[primary].email or rows[secondary].email,
                    )
                )
            else:
                await conn.execute(
                    update(t.profiles)
                    .where(t.profiles.c.id == secondary)
                    .values(id=primary, updated_at=_now())
                )
            for table in (t.events, t.messages, t.runs):
                await conn.execute(
                    update(table)
                    .where(table.c.recipient_id == secondary)
                    .values(recipient_id=primary)
                )
            await self._move_keyed(conn, t.devices, "token", secondary, primary)
            await self._move_keyed(conn, t.segment_members, "segment", secondary, primary)
            await conn.execute(
                delete(t.segment_state).where(t.segment_state.c.recipient_id == secondary)
            )
            has_own = (
                await conn.execute(
                    select(t.preferences.c.recipient_id).where(
                        t.preferences.c.recipient_id == primary
                    )
                )
            ).first()
            if has_own:
                await conn.execute(
                    delete(t.preferences).where(t.preferences.c.recipient_id == secondary)
                )
            else:
                await conn.execute(
                    update(t.preferences)
                    .where(t.preferences.c.recipient_id == secondary)
                    .values(recipient_id=primary)
                )
            if primary in rows:
                await conn.execute(delete(t.profiles).where(t.profiles.c.id == secondary))

    @staticmethod
    async def _move_keyed(
        conn: AsyncConnection, table: Any, key: str, source: str, target: str
    ) -> None:
        taken = set(
            (
                await conn.execute(select(table.c[key]).where(table.c.recipient_id == target))
            ).scalars()
        )
        await conn.execute(
            delete(table).where(table.c.recipient_id == source, table.c[key].in_(taken))
        )
        await conn.execute(
            update(table).where(table.c.recipient_id == source).values(recipient_id=target)
        )

    async def delete_person(self, recipient_id: str) -> bool:
        """Delete a person and everything about them; False when there was nothing."""
        async with self.engine.begin() as conn:
            found = await conn.execute(delete(t.profiles).where(t.profiles.c.id == recipient_id))
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
        return bool(found.rowcount)

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

    # -- devices -----------------------------------------------------------------------------

    async def add_device(
        self,
        recipient_id: str,
        token: str,
        platform: str,
        attributes: dict[str, Any] | None = None,
        last_used: datetime | None = None,
    ) -> None:
        """Register (or refresh) a push token for a person."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(t.devices).where(
                    t.devices.c.recipient_id == recipient_id, t.devices.c.token == token
                )
            )
            await conn.execute(
                insert(t.devices).values(
                    recipient_id=recipient_id,
                    token=token,
                    platform=platform,
                    attributes=dict(attributes or {}),
                    last_used=last_used,
                    created_at=_now(),
                )
            )

    async def remove_device(self, recipient_id: str, token: str) -> None:
        """Forget a push token."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(t.devices).where(
                    t.devices.c.recipient_id == recipient_id, t.devices.c.token == token
                )
            )

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
        async with self.engine.begin() as conn:
            await conn.execute(delete(t.segments).where(t.segments.c.name == name))
            await conn.execute(
                insert(t.segments).values(
                    name=name,
                    kind=kind,
                    condition=condition,
                    description=description,
                    created_at=_now(),
                )
            )

    async def delete_segment(self, name: str) -> None:
        """Remove a segment defined through the API, and its manual members."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(t.segments).where(t.segments.c.name == name))
            await conn.execute(delete(t.segment_members).where(t.segment_members.c.segment == name))

    async def add_members(self, segment: str, recipient_ids: list[str]) -> None:
        """Add people to a manual segment."""
        async with self.engine.begin() as conn:
            have = set(
                (
                    await conn.execute(
                        select(t.segment_members.c.recipient_id).where(
                            t.segment_members.c.segment == segment,
                            t.segment_members.c.recipient_id.in_(recipient_ids),
                        )
                    )
                ).scalars()
            )
            new = [r for r in dict.fromkeys(recipient_ids) if r not in have]
            if new:
                await conn.execute(
                    insert(t.segment_members),
                    [{"segment": segment, "recipient_id": r, "added_at": _now()} for r in new],
                )

    async def remove_members(self, segment: str, recipient_ids: list[str]) -> None:
        """Take people out of a manual segment."""
        async with self.engine.begin() as conn:
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
        if not segments:
            return []
        compiler = self.sql(lookup)
        names = list(segments)
        columns = [compiler.where(segments[n]).label(f"s{i}") for i, n in enumerate(names)]
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(*columns).where(t.profiles.c.id == recipient_id))
            ).first()
        if row is None:
            return []
        return [n for i, n in enumerate(names) if row[i]]

    async def entered(self, recipient_id: str, now_in: set[str], tracked: set[str]) -> set[str]:
        """Record which of the ``tracked`` segments a person is in now; return those entered.

        A person enters a segment when they are in it now and were not the last time.
        """
        async with self.engine.begin() as conn:
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
                    insert(t.segment_state),
                    [
                        {"segment": s, "recipient_id": recipient_id, "since": _now()}
                        for s in entered
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
