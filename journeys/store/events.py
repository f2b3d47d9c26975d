"""Events: what people (and anonymous visitors) did, counted by conditions.

Events recorded at the same time share a transaction (a group commit): the first
:meth:`EventStore.record` writes at once, and those that arrive while it writes queue
and are written together next, in one transaction (and one INSERT) of at most
:data:`GROUP` events. Each caller still gets its own answer: whether the event was
recorded — not when its ``event_id`` was recorded before, within the group as against
the table (the first one wins, as one after the other). If a group's transaction
fails, each of its events is written again alone, so one bad event fails only its own
caller.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from definitions.values import JSONValue
from journeys.store import tables as t
from journeys.store.database import Database, aware, hold_people, now
from journeys.store.dialects import insert

__all__ = ["GROUP", "EventStore"]

log = logging.getLogger("journeys.store")

GROUP = 500
"""Events written in one transaction at most."""


@dataclass
class _Pending:
    """An event waiting for its group's transaction."""

    values: dict[str, Any]
    create_person: bool
    done: asyncio.Future[bool]


@dataclass
class _Queue:
    """The events waiting to be written (one queue per event loop)."""

    pending: list[_Pending] = field(default_factory=list)
    writing: asyncio.Task[None] | None = None


class EventStore:
    """The events table.

    Args:
        db: the store's database.

    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = (
            weakref.WeakKeyDictionary()
        )

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
    ) -> bool:
        """Store an event of a person (or an anonymous visitor); whether it was recorded.

        False when ``event_id`` was recorded before: a repeat changes nothing.
        With ``create_person``, a person without a profile gets an empty one, in the same
        transaction (so a concurrent delete of the person takes both or neither).
        """
        values = {
            "recipient_id": recipient_id,
            "name": name,
            "data": dict(data or {}),
            "timestamp": at or now(),
            "anonymous_id": anonymous_id,
            "event_id": event_id,
        }
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        pending = _Pending(values, create_person and recipient_id is not None, loop.create_future())
        queue.pending.append(pending)
        if queue.writing is None:
            queue.writing = loop.create_task(self._write_queued(queue))
        return await asyncio.shield(pending.done)

    async def _write_queued(self, queue: _Queue) -> None:
        """Write what is queued, a group at a time, until nothing is."""
        group: list[_Pending] = []
        try:
            while queue.pending:
                group = queue.pending[:GROUP]
                del queue.pending[:GROUP]
                try:
                    answers = await self._write(group)
                except Exception as exc:
                    if len(group) == 1:
                        _fail(group[0], exc)
                        continue
                    log.warning("a group of %d events failed: writing each alone", len(group))
                    for one in group:
                        try:
                            _answer(one, (await self._write([one]))[0])
                        except Exception as alone:
                            _fail(one, alone)
                    continue
                for one, answer in zip(group, answers, strict=True):
                    _answer(one, answer)
        finally:
            queue.writing = None
            for one in [*group, *queue.pending]:  # left only when cancelled: a closing loop
                if not one.done.done():
                    one.done.cancel()
            queue.pending.clear()

    async def _write(self, group: Sequence[_Pending]) -> list[bool]:
        """Record a group of events in one transaction: for each, whether it was recorded.

        One INSERT for the group (several rows a statement); a row whose ``event_id`` is
        in the table already is skipped by the database, and one repeated within the
        group is not sent.
        """
        statement = (
            insert(self.db.dialect, t.events)
            .on_conflict_do_nothing(index_elements=[t.events.c.event_id])
            .returning(t.events.c.event_id)
        )
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for one in group:
            event_id = one.values["event_id"]
            if event_id is not None:
                if event_id in seen:
                    continue
                seen.add(event_id)
            rows.append(one.values)
        async with self.db.writer.begin() as conn:
            people = [p.values["recipient_id"] for p in group if p.create_person]
            if people:
                await hold_people(conn, people)
            inserted = set((await conn.execute(statement, rows)).scalars())
        answers: list[bool] = []
        sent: set[str] = set()
        for one in group:
            event_id = one.values["event_id"]
            if event_id is None:
                answers.append(True)
            else:  # the first of the group with this id, if the database took it
                answers.append(event_id in inserted and event_id not in sent)
                sent.add(event_id)
        return answers

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


def _answer(one: _Pending, answer: bool) -> None:
    if not one.done.done():
        one.done.set_result(answer)


def _fail(one: _Pending, exc: BaseException) -> None:
    if not one.done.done():
        one.done.set_exception(exc)
