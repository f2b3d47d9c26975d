"""What makes the store's writes atomic on SQLite and on PostgreSQL, in one place.

Many requests write at once (an HTTP API under load, workers, cohorts), so no write of the
store reads a value into Python and writes back what it computed from it unless nothing
else can write in between:

- **SQLite** has one writer at a time. A write transaction takes that lock when it
  begins (``BEGIN IMMEDIATE``, :func:`configure_sqlite`), before it reads, so what it
  read stays true until it commits; a deferred one would read, then lose a race or fail
  with "database is locked" when it tries to write. Readers still never wait (WAL).
- **PostgreSQL** lets writers run together. Merges are one statement each
  (:func:`insert` … ``ON CONFLICT DO UPDATE``, JSON objects merged in the database by
  :class:`json_merge`), creation is ``ON CONFLICT DO NOTHING``, and a transaction that
  reads before it writes locks what it read first (``FOR UPDATE``, :func:`advisory_lock`).

The store writes through a :class:`Writer`, whose connections carry the execution option
:data:`WRITE`; on SQLite it also queues a process's writers itself (an asyncio lock), so
they wait their turn instead of polling SQLite's lock.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from sqlalchemy import JSON, Boolean, Connection, Engine, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.functions import GenericFunction

__all__ = [
    "WRITE",
    "Writer",
    "advisory_lock",
    "configure_sqlite",
    "insert",
    "json_has_key",
    "json_merge",
]

WRITE = "journeys_write"
"""The execution option of the store's write connections (SQLite: ``BEGIN IMMEDIATE``)."""

_SQLITE_MERGE = "journeys_json_merge"


class json_merge(GenericFunction[Any]):
    """``json_merge(a, b)``: the JSON object ``a`` with ``b``'s top-level keys put over it.

    Shallow, like ``dict.update``: a key of ``b`` replaces the same key of ``a`` whole
    (objects are not merged key by key; a ``null`` is kept as a value). PostgreSQL
    computes it with ``jsonb ||``, SQLite with a function of this module.
    """

    type = JSON()
    inherit_cache = True
    name = "json_merge"


@compiles(json_merge, "postgresql")
def _merge_postgresql(element: json_merge, compiler: SQLCompiler, **kw: object) -> str:
    left, right = (compiler.process(c, **kw) for c in element.clauses)
    return f"(CAST({left} AS JSONB) || CAST({right} AS JSONB))::JSON"


@compiles(json_merge, "sqlite")
def _merge_sqlite(element: json_merge, compiler: SQLCompiler, **kw: object) -> str:
    return f"{_SQLITE_MERGE}({compiler.process(element.clauses, **kw)})"


class json_has_key(GenericFunction[bool]):
    """``json_has_key(doc, key)``: whether the JSON object ``doc`` has the key ``key``.

    ``key`` is a constant name (letters, digits, ``_``), written into the SQL.
    """

    type = Boolean()
    inherit_cache = True
    name = "json_has_key"


def _key_of(element: json_has_key) -> tuple[ClauseElement, str]:
    doc, key = element.clauses
    name = getattr(key, "value", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"json_has_key: expected a constant name, found {name!r}")
    return doc, name


@compiles(json_has_key, "postgresql")
def _has_key_postgresql(element: json_has_key, compiler: SQLCompiler, **kw: object) -> str:
    doc, name = _key_of(element)
    return f"(CAST({compiler.process(doc, **kw)} AS JSONB) ? '{name}')"


@compiles(json_has_key, "sqlite")
def _has_key_sqlite(element: json_has_key, compiler: SQLCompiler, **kw: object) -> str:
    doc, name = _key_of(element)
    return f"(json_type({compiler.process(doc, **kw)}, '$.{name}') IS NOT NULL)"


def _merged_text(left: str | None, right: str | None) -> str | None:
    """SQLite's json_merge over the columns' JSON text."""
    if right is None:
        return left
    if left is None:
        return right
    old, new = json.loads(left), json.loads(right)
    if not isinstance(old, dict) or not isinstance(new, dict):
        return right
    return json.dumps({**old, **new})


class Writer:
    """Begins the store's write transactions.

    Args:
        engine: the store's engine (reads use it directly).

    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.execution_options(**{WRITE: True})
        self._queued = engine.dialect.name == "sqlite"
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        if not self._queued:
            async with self.engine.begin() as conn:
                yield conn
            return
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        async with lock, self.engine.begin() as conn:
            yield conn


def insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say what to do ``ON CONFLICT``, for the store's database."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def advisory_lock(conn: AsyncConnection, key: str) -> None:
    """Hold a PostgreSQL lock named ``key`` until the transaction ends (SQLite: nothing).

    For writes that read rows which may not exist yet (so cannot be locked with ``FOR
    UPDATE``). SQLite needs none: its write transactions already run one at a time.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


def configure_sqlite(engine: Engine, synchronous: str = "normal") -> None:
    """Set up an SQLite engine's connections: WAL, a busy timeout, immediate writes.

    ``synchronous`` is SQLite's setting of that name: ``normal`` (in WAL mode, commits
    survive a killed process, not a power cut) or ``full`` (they survive both).

    The driver's own transaction handling is turned off so that the store says how each
    transaction begins: ``BEGIN IMMEDIATE`` on connections with :data:`WRITE`, a plain
    (deferred) ``BEGIN`` for reads.
    """
    from sqlalchemy import event

    def on_connect(dbapi_connection: _SQLiteConnection, record: ConnectionPoolEntry) -> None:
        _on_connect(dbapi_connection, record, synchronous)

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", _on_begin)


class _SQLiteConnection(Protocol):
    """What this module uses of an SQLite driver's connection (sqlite3's, aiosqlite's adapter)."""

    isolation_level: str | None

    def cursor(self) -> DBAPICursor: ...

    def create_function(
        self, name: str, narg: int, func: Callable[..., object], *, deterministic: bool = False
    ) -> None: ...


def _on_connect(
    dbapi_connection: _SQLiteConnection, _record: ConnectionPoolEntry, synchronous: str
) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    dbapi_connection.create_function(_SQLITE_MERGE, 2, _merged_text, deterministic=True)


def _on_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(WRITE)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
