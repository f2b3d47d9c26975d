"""The database every part of the store shares: one engine, its writer, its dialect.

Each aggregate of the store (profiles, events, runs, members, messages, consent,
segments) reads through :attr:`Database.engine` and writes through
:attr:`Database.writer` (see :mod:`journeys.store.dialects` for how writes stay atomic).

A person's profile row is also the lock every write about that person holds, whichever
aggregate writes it: :func:`hold_people` creates and holds the profiles (an event with
the empty profile it creates, a manual membership), :func:`lock_people` locks those that
exist (a merge, a segment entry). So a concurrent delete of the person takes all of such a
write or none of it. Both work on a connection the caller's transaction already has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.elements import ColumnElement

from definitions.errors import ConfigurationError
from journeys.store import tables as t
from journeys.store.dialects import Writer, configure_sqlite, insert

__all__ = [
    "Database",
    "PersonPage",
    "aware",
    "chunks",
    "hold_people",
    "lock_people",
    "normalise_url",
    "now",
    "person_page",
]

ROWS = 1000
"""Rows per statement: well under SQLite's and asyncpg's parameter limits."""

_T = TypeVar("_T")

CHUNK = 500
"""Ids per ``IN (…)`` list: well under SQLite's and asyncpg's parameter limits."""


def chunks(items: Sequence[_T], size: int = CHUNK) -> list[Sequence[_T]]:
    """``items`` cut into lists of ``size`` (by default, ids per ``IN (…)`` list)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def normalise_url(url: str) -> str:
    """The async driver URL for a database URL (``sqlite:///x.db`` → aiosqlite, and so on)."""
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def now() -> datetime:
    """The time now, in UTC: what the store writes as ``created_at`` and the like."""
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """A time read back from the store, in UTC (SQLite gives times back without a zone)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class PersonPage:
    """A page of people, in id order."""

    ids: list[str]
    next: str | None
    """Pass as ``after`` for the next page; None on the last page."""


SYNCHRONOUS = ("normal", "full")
"""SQLite's ``synchronous`` settings a store URL may ask for (``?synchronous=full``)."""


class Database:
    """The store's engine, its writer and its dialect, shared by every aggregate.

    Args:
        url: a SQLAlchemy URL; ``sqlite:///path.db`` and ``postgresql://…`` are turned into
            their async drivers. A SQLite URL may end ``?synchronous=full`` (every commit
            synced to disk before it returns) or ``?synchronous=normal`` (the default: the
            write-ahead log is synced at checkpoints; a killed process loses nothing, a
            power cut or kernel crash may lose the last commits).

    Raises:
        ConfigurationError: the URL cannot be read.

    """

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        try:
            parsed = make_url(self.url)
        except Exception as exc:
            raise ConfigurationError(f"invalid store url {url!r}: {exc}") from None
        sqlite = parsed.get_backend_name() == "sqlite"
        if sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, object] = {"connect_args": {"timeout": 30}} if sqlite else {}
        synchronous = "normal"
        if sqlite and "synchronous" in parsed.query:
            synchronous = str(parsed.query["synchronous"]).lower()
            if synchronous not in SYNCHRONOUS:
                raise ConfigurationError(
                    f"invalid store url {url!r}: synchronous: expected "
                    f"{' or '.join(SYNCHRONOUS)}, found {parsed.query['synchronous']!r}"
                )
            parsed = parsed.difference_update_query(["synchronous"])
            self.url = parsed.render_as_string(hide_password=False)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        """For reads (``engine.connect()``)."""
        if sqlite:
            configure_sqlite(self.engine.sync_engine, synchronous)
        self.writer = Writer(self.engine)
        """For writes (``writer.begin()``): the same pool; on SQLite, ``BEGIN IMMEDIATE``."""

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return str(self.engine.dialect.name)

    async def dispose(self) -> None:
        """Release the database's connections."""
        await self.engine.dispose()


async def hold_people(conn: AsyncConnection, recipient_ids: Sequence[str]) -> None:
    """Create missing profiles, and hold them all until the transaction ends.

    The hold (a row lock on PostgreSQL; SQLite's write lock covers it) makes a
    concurrent delete or merge of these people wait, so nothing this transaction writes
    for them is left behind without a profile.
    """
    at = now()
    statement = insert(conn.dialect.name, t.profiles)
    statement = statement.on_conflict_do_update(
        index_elements=[t.profiles.c.id], set_={"updated_at": t.profiles.c.updated_at}
    )
    rows: list[dict[str, object]] = [
        {"id": pid, "attributes": {}, "created_at": at, "updated_at": at, "email": None}
        for pid in sorted(set(recipient_ids))
    ]
    for start in range(0, len(rows), ROWS):
        await conn.execute(statement, rows[start : start + ROWS])


async def lock_people(conn: AsyncConnection, recipient_ids: list[str]) -> dict[str, Any]:
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


async def person_page(
    engine: AsyncEngine, *where: ColumnElement[bool], after: str | None = None, limit: int = 50
) -> PersonPage:
    """The ids of the people these conditions (about ``profiles``) hold for, a page of them."""
    query = select(t.profiles.c.id).where(*where)
    if after is not None:
        query = query.where(t.profiles.c.id > after)
    query = query.order_by(t.profiles.c.id).limit(limit + 1)
    async with engine.connect() as conn:
        ids = [str(v) for v in (await conn.execute(query)).scalars()]
    more = len(ids) > limit
    ids = ids[:limit]
    return PersonPage(ids, ids[-1] if more and ids else None)
