"""Profiles and their devices: one person's record, from creation to deletion.

Every write here is atomic under concurrency on both databases (see
:mod:`journeys.store.dialects`): attributes merge in the database, in one statement, and
creation is idempotent, so twenty requests adding an attribute each to the same person at
once leave twenty attributes, whichever order they land in.

Writes that read before they write (a merge) lock the people they read first — ``FOR
UPDATE`` on PostgreSQL, the write lock SQLite's write transactions take — so concurrent
requests about the same person apply one after the other. A merge or a delete of a person
reaches every table that names them, in the same transaction, as a foreign key's cascade
would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import Table, case, delete, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from definitions.conditions import AttributeCondition
from definitions.values import JSONValue
from journeys.store import tables as t
from journeys.store.database import (
    ROWS,
    Database,
    PersonPage,
    aware,
    hold_people,
    lock_people,
    now,
    person_page,
)
from journeys.store.devices import Device, parse_devices
from journeys.store.dialects import insert, json_has_key, json_merge
from journeys.store.segment_sql import ConditionSQL

__all__ = ["ProfileStore", "email_of"]

_PLACEHOLDER = datetime(1970, 1, 1, tzinfo=UTC)
"""``created_at`` of the profile :meth:`ProfileStore.delete` holds when there is none."""


def email_of(attributes: Mapping[str, JSONValue]) -> str | None:
    """The derived ``email`` column of these attributes: the address, trimmed, lower-cased."""
    email = attributes.get("email")
    return email.strip().lower()[:320] if isinstance(email, str) and email.strip() else None


class ProfileStore:
    """Profiles, their devices and anonymous visitors' events becoming a person's.

    Args:
        db: the store's database.

    """

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writes ------------------------------------------------------------------------------

    async def upsert(self, profiles: Sequence[tuple[str, Mapping[str, JSONValue]]]) -> None:
        """Create profiles or merge attributes into them, all in one transaction.

        The merge is shallow: a key given replaces that key whole. ``created_at`` is kept
        from the first write. A ``devices`` list registers those devices (as
        :meth:`add_device` does) instead of being kept among the attributes.

        Raises:
            InvalidRequestError: a ``devices`` value that lists no devices (nothing is
                written).

        """
        if profiles:
            async with self.db.writer.begin() as conn:
                await self._upsert(conn, profiles)

    async def identify(
        self,
        recipient_id: str,
        attributes: Mapping[str, JSONValue],
        *,
        anonymous_id: str | None = None,
    ) -> None:
        """Create or update one person and give them an anonymous visitor's events.

        One transaction: a concurrent :meth:`delete` runs either wholly before it (the
        person is created again, with these attributes, devices and events) or wholly
        after it (nothing of it is left).
        """
        async with self.db.writer.begin() as conn:
            await self._upsert(conn, [(recipient_id, attributes)])
            if anonymous_id:
                await _attach(conn, recipient_id, anonymous_id)

    async def ensure(self, recipient_ids: Sequence[str]) -> None:
        """Give the people who have no profile an empty one; the others are unchanged."""
        if recipient_ids:
            async with self.db.writer.begin() as conn:
                await hold_people(conn, recipient_ids)

    async def attach_anonymous(self, recipient_id: str, anonymous_id: str) -> int:
        """Give a person the events an anonymous visitor did; returns how many moved."""
        async with self.db.writer.begin() as conn:
            return await _attach(conn, recipient_id, anonymous_id)

    async def _upsert(
        self, conn: AsyncConnection, profiles: Sequence[tuple[str, Mapping[str, JSONValue]]]
    ) -> None:
        """Merge attributes into profiles in the database, a thousand per statement.

        Rows are written in id order, so two transactions writing the same people wait
        for each other instead of deadlocking. The ``email`` column follows the ``email``
        attribute when the update has one, and is kept when it has not.
        """
        merged: dict[str, dict[str, JSONValue]] = {}
        devices: dict[str, list[Device]] = {}
        for pid, attributes in profiles:
            values = dict(attributes)
            if "devices" in values:
                found = parse_devices(values.pop("devices"), f"devices of {pid}")
                devices.setdefault(pid, []).extend(found)
            merged.setdefault(pid, {}).update(values)
        at = now()
        rows = [
            {"id": pid, "attributes": a, "created_at": at, "updated_at": at, "email": email_of(a)}
            for pid, a in sorted(merged.items())
        ]
        statement = insert(self.db.dialect, t.profiles)
        new = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=[t.profiles.c.id],
            set_={
                "attributes": json_merge(t.profiles.c.attributes, new.attributes),
                "updated_at": new.updated_at,
                "email": case(
                    (json_has_key(new.attributes, "email"), new.email), else_=t.profiles.c.email
                ),
            },
        )
        for start in range(0, len(rows), ROWS):
            await conn.execute(statement, rows[start : start + ROWS])
        for pid in sorted(devices):
            await self._put_devices(conn, pid, devices[pid])

    async def merge(self, primary: str, secondary: str) -> None:
        """Fold ``secondary`` into ``primary``; then ``secondary`` is gone.

        Attributes merge (primary wins), and events, messages, runs, devices, segment
        memberships and preferences move over. Both people are locked first, in id order,
        so a concurrent write to either waits for the merge (and is not lost).
        """
        async with self.db.writer.begin() as conn:
            rows = await lock_people(conn, [primary, secondary])
            if secondary not in rows:
                return
            if primary not in rows:
                await hold_people(conn, [primary])
                rows = await lock_people(conn, [primary, secondary])
            first, second = rows[primary], rows[secondary]
            attributes = {**second.attributes, **first.attributes}
            await conn.execute(
                update(t.profiles)
                .where(t.profiles.c.id == primary)
                .values(
                    attributes=attributes,
                    created_at=min(aware(first.created_at), aware(second.created_at)),
                    updated_at=now(),
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
            insert(self.db.dialect, table).from_select(columns, chosen).on_conflict_do_nothing()
        )
        await conn.execute(delete(table).where(table.c.recipient_id == source))

    async def delete(self, recipient_id: str) -> bool:
        """Delete a person and everything about them; False when there was no profile.

        The profile is held first — written as a placeholder when there is none, which
        makes a concurrent write that is creating it finish first — and every write about
        a person holds it too: the delete takes all of a concurrent write or none of it.
        """
        async with self.db.writer.begin() as conn:
            held = insert(self.db.dialect, t.profiles).values(
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
        return aware(created) != _PLACEHOLDER

    # -- reads -------------------------------------------------------------------------------

    async def get(self, recipient_id: str) -> dict[str, JSONValue] | None:
        """A profile's attributes with its ``id`` (and ``devices``, when it has some)."""
        found = await self.get_many([recipient_id])
        return found.get(recipient_id)

    async def get_many(self, recipient_ids: Sequence[str]) -> dict[str, dict[str, JSONValue]]:
        """Many profiles as :meth:`get` returns them, two queries per 500.

        ``devices`` lists the person's devices from the devices table, oldest first, each
        as ``{token, platform, …}``; a profile without any has no ``devices`` key.
        """
        found: dict[str, dict[str, JSONValue]] = {}
        ids = list(recipient_ids)
        async with self.db.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = await conn.execute(select(t.profiles).where(t.profiles.c.id.in_(chunk)))
                for row in rows:
                    found[row.id] = {**row.attributes, "id": row.id}
                registered = await conn.execute(
                    select(t.devices)
                    .where(t.devices.c.recipient_id.in_(chunk))
                    .order_by(t.devices.c.created_at, t.devices.c.token)
                )
                devices: dict[str, list[JSONValue]] = {}
                for d in registered:
                    devices.setdefault(d.recipient_id, []).append(
                        {**d.attributes, "token": d.token, "platform": d.platform}
                    )
                for pid, listed in devices.items():
                    if pid in found:
                        found[pid]["devices"] = listed
        return found

    async def created_at(self, recipient_id: str) -> datetime | None:
        """When a profile was first written."""
        async with self.db.engine.connect() as conn:
            value = (
                await conn.execute(
                    select(t.profiles.c.created_at).where(t.profiles.c.id == recipient_id)
                )
            ).scalar()
        return aware(value) if isinstance(value, datetime) else None

    async def find_by_email(self, email: str) -> str | None:
        """The id of the person with this email (case-insensitive), if any."""
        async with self.db.engine.connect() as conn:
            value = (
                await conn.execute(
                    select(t.profiles.c.id)
                    .where(t.profiles.c.email == email.strip().lower())
                    .order_by(t.profiles.c.id)
                    .limit(1)
                )
            ).scalar()
        return str(value) if value is not None else None

    async def page(
        self,
        *,
        email: str | None = None,
        attribute: tuple[str, JSONValue] | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> PersonPage:
        """People in id order, filtered by email or an attribute value."""
        where = []
        if email is not None:
            where.append(t.profiles.c.email == email.strip().lower())
        if attribute is not None:
            where.append(
                ConditionSQL(self.db.dialect).where(
                    AttributeCondition(attribute=attribute[0], op="eq", value=attribute[1])
                )
            )
        return await person_page(self.db.engine, *where, after=after, limit=limit)

    # -- devices -----------------------------------------------------------------------------

    async def add_device(
        self,
        recipient_id: str,
        token: str,
        platform: str,
        attributes: Mapping[str, JSONValue] | None = None,
        last_used: datetime | None = None,
    ) -> None:
        """Register (or refresh) a push token of a person, who is created when new."""
        async with self.db.writer.begin() as conn:
            await hold_people(conn, [recipient_id])
            await self._put_devices(
                conn, recipient_id, [Device(token, platform, dict(attributes or {}))], last_used
            )

    async def _put_devices(
        self,
        conn: AsyncConnection,
        recipient_id: str,
        devices: Sequence[Device],
        last_used: datetime | None = None,
    ) -> None:
        """Insert devices, or refresh those known.

        A refresh merges the device's attributes and keeps when it was first added, its
        ``last_used`` when none is given, and its platform when the new one is unknown.
        """
        unique = {d.token: d for d in devices}
        if not unique:
            return
        statement = insert(self.db.dialect, t.devices)
        new = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=[t.devices.c.recipient_id, t.devices.c.token],
            set_={
                "platform": case(
                    (new.platform == "unknown", t.devices.c.platform), else_=new.platform
                ),
                "attributes": json_merge(t.devices.c.attributes, new.attributes),
                "last_used": func.coalesce(new.last_used, t.devices.c.last_used),
            },
        )
        at = now()
        await conn.execute(
            statement,
            [
                {
                    "recipient_id": recipient_id,
                    "token": d.token,
                    "platform": d.platform,
                    "attributes": d.attributes,
                    "last_used": last_used,
                    "created_at": at,
                }
                for d in sorted(unique.values(), key=lambda d: d.token)
            ],
        )

    async def remove_device(self, recipient_id: str, token: str) -> None:
        """Forget a push token."""
        await self.remove_devices(recipient_id, [token])

    async def remove_devices(self, recipient_id: str, tokens: Sequence[str]) -> None:
        """Forget push tokens of a person (those the provider says are gone)."""
        if not tokens:
            return
        async with self.db.writer.begin() as conn:
            await conn.execute(
                delete(t.devices).where(
                    t.devices.c.recipient_id == recipient_id, t.devices.c.token.in_(list(tokens))
                )
            )


async def _attach(conn: AsyncConnection, recipient_id: str, anonymous_id: str) -> int:
    moved = await conn.execute(
        update(t.events)
        .where(t.events.c.anonymous_id == anonymous_id, t.events.c.recipient_id.is_(None))
        .values(recipient_id=recipient_id)
    )
    return int(moved.rowcount or 0)
