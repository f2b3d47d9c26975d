"""Profiles and their devices: the store's merging writes (mixed into :class:`Store`).

Every write here is atomic under concurrency on both databases (see
:mod:`journeys.store.dialects`): attributes merge in the database, in one statement, and
creation is idempotent, so twenty requests adding an attribute each to the same person at
once leave twenty attributes, whichever order they land in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from journeys.store import tables as t
from journeys.store.devices import Device, parse_devices
from journeys.store.dialects import Writer, insert, json_has_key, json_merge

__all__ = ["ProfileStore", "email_of"]

_ROWS = 1000
"""Rows per statement: well under SQLite's and asyncpg's parameter limits."""


def _now() -> datetime:
    return datetime.now(UTC)


def email_of(attributes: dict[str, Any]) -> str | None:
    """The derived ``email`` column of these attributes: the address, trimmed, lower-cased."""
    email = attributes.get("email")
    return email.strip().lower()[:320] if isinstance(email, str) and email.strip() else None


class ProfileStore:
    """Profiles, devices and anonymous visitors' events."""

    engine: AsyncEngine
    writer: Writer

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return str(self.engine.dialect.name)

    # -- writes ------------------------------------------------------------------------------

    async def upsert_profiles(self, profiles: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Create profiles or merge attributes into them, all in one transaction.

        The merge is shallow: a key given replaces that key whole. ``created_at`` is kept
        from the first write. A ``devices`` list registers those devices (as
        :meth:`add_device` does) instead of being kept among the attributes.

        Raises:
            InvalidRequestError: a ``devices`` value that lists no devices (nothing is
                written).

        """
        if profiles:
            async with self.writer.begin() as conn:
                await self._upsert(conn, profiles)

    async def identify(
        self, recipient_id: str, attributes: dict[str, Any], *, anonymous_id: str | None = None
    ) -> None:
        """Create or update one person and give them an anonymous visitor's events.

        One transaction: a concurrent :meth:`delete_person` runs either wholly before it
        (the person is created again, with these attributes, devices and events) or
        wholly after it (nothing of it is left).
        """
        async with self.writer.begin() as conn:
            await self._upsert(conn, [(recipient_id, attributes)])
            if anonymous_id:
                await _attach(conn, recipient_id, anonymous_id)

    async def ensure_profiles(self, recipient_ids: Sequence[str]) -> None:
        """Give the people who have no profile an empty one; the others are unchanged."""
        if recipient_ids:
            async with self.writer.begin() as conn:
                await self._ensure(conn, recipient_ids)

    async def attach_anonymous(self, recipient_id: str, anonymous_id: str) -> int:
        """Give a person the events an anonymous visitor did; returns how many moved."""
        async with self.writer.begin() as conn:
            return await _attach(conn, recipient_id, anonymous_id)

    async def _upsert(
        self, conn: AsyncConnection, profiles: Sequence[tuple[str, dict[str, Any]]]
    ) -> None:
        """Merge attributes into profiles in the database, a thousand per statement.

        Rows are written in id order, so two transactions writing the same people wait
        for each other instead of deadlocking. The ``email`` column follows the ``email``
        attribute when the update has one, and is kept when it has not.
        """
        merged: dict[str, dict[str, Any]] = {}
        devices: dict[str, list[Device]] = {}
        for pid, attributes in profiles:
            values = dict(attributes)
            if "devices" in values:
                found = parse_devices(values.pop("devices"), f"devices of {pid}")
                devices.setdefault(pid, []).extend(found)
            merged.setdefault(pid, {}).update(values)
        now = _now()
        rows = [
            {"id": pid, "attributes": a, "created_at": now, "updated_at": now, "email": email_of(a)}
            for pid, a in sorted(merged.items())
        ]
        statement = insert(self.dialect, t.profiles)
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
        for start in range(0, len(rows), _ROWS):
            await conn.execute(statement, rows[start : start + _ROWS])
        for pid in sorted(devices):
            await self._put_devices(conn, pid, devices[pid])

    async def _ensure(self, conn: AsyncConnection, recipient_ids: Sequence[str]) -> None:
        """Create missing profiles, and hold them all until the transaction ends.

        The hold (a row lock on PostgreSQL; SQLite's write lock covers it) makes a
        concurrent :meth:`delete_person` or :meth:`merge_people` of these people wait, so
        nothing this transaction writes for them is left behind without a profile.
        """
        now = _now()
        statement = insert(self.dialect, t.profiles)
        statement = statement.on_conflict_do_update(
            index_elements=[t.profiles.c.id], set_={"updated_at": t.profiles.c.updated_at}
        )
        rows: list[dict[str, Any]] = [
            {"id": pid, "attributes": {}, "created_at": now, "updated_at": now, "email": None}
            for pid in sorted(set(recipient_ids))
        ]
        for start in range(0, len(rows), _ROWS):
            await conn.execute(statement, rows[start : start + _ROWS])

    # -- reads -------------------------------------------------------------------------------

    async def get_profile(self, recipient_id: str) -> dict[str, Any] | None:
        """A profile's attributes with its ``id`` (and ``devices``, when it has some)."""
        found = await self.get_full_profiles([recipient_id])
        return found.get(recipient_id)

    async def get_full_profiles(self, recipient_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Many profiles as :meth:`get_profile` returns them, two queries per 500.

        ``devices`` lists the person's devices from the devices table, oldest first, each
        as ``{token, platform, …}``; a profile without any has no ``devices`` key.
        """
        found: dict[str, dict[str, Any]] = {}
        ids = list(recipient_ids)
        async with self.engine.connect() as conn:
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
                devices: dict[str, list[dict[str, Any]]] = {}
                for d in registered:
                    devices.setdefault(d.recipient_id, []).append(
                        {**d.attributes, "token": d.token, "platform": d.platform}
                    )
                for pid, listed in devices.items():
                    if pid in found:
                        found[pid]["devices"] = listed
        return found

    async def profile_created_at(self, recipient_id: str) -> datetime | None:
        """When a profile was first written."""
        async with self.engine.connect() as conn:
            value = (
                await conn.execute(
                    select(t.profiles.c.created_at).where(t.profiles.c.id == recipient_id)
                )
            ).scalar()
        if not isinstance(value, datetime):
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    # -- devices -----------------------------------------------------------------------------

    async def add_device(
        self,
        recipient_id: str,
        token: str,
        platform: str,
        attributes: dict[str, Any] | None = None,
        last_used: datetime | None = None,
    ) -> None:
        """Register (or refresh) a push token of a person, who is created when new."""
        async with self.writer.begin() as conn:
            await self._ensure(conn, [recipient_id])
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
        statement = insert(self.dialect, t.devices)
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
        now = _now()
        await conn.execute(
            statement,
            [
                {
                    "recipient_id": recipient_id,
                    "token": d.token,
                    "platform": d.platform,
                    "attributes": d.attributes,
                    "last_used": last_used,
                    "created_at": now,
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
        async with self.writer.begin() as conn:
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
