"""The message log's writes: group commits, and the gate a message goes out through.

Saving a message's new state (``sent`` right after the provider took it) joins whatever
other saves are waiting in one transaction, committed as soon as the one before it is:
under load, a message's ``sent`` row waits for one commit, not for every other write in
the process one by one, which keeps short the window in which a worker that dies has
handed a message over without recording it.

A send marks its message ``sending`` right before the provider call, in one statement that
succeeds only while the message is still ``queued`` (or was left ``sending`` by an attempt
that died). A cancel or exit marks the messages of the recipients it takes out
``skipped`` in one statement that succeeds only while they are ``queued``. The two
statements cannot both succeed for a message, so once a withdrawal is written nothing can
send that message any more, and a message that was already being handed over is waited
for (it ends ``sent``, ``failed`` or ``queued`` for a retry).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from journeys.store import tables as t
from journeys.store.dialects import Writer, insert

if TYPE_CHECKING:
    from journeys.store.store import MessageRecord

__all__ = ["CLAIMABLE", "MessageKey", "MessageStore", "message_values"]

CLAIMABLE = ("queued", "sending")
"""States a send may claim a message in (``sending``: an attempt died handing it over)."""

_CHUNK = 500


@dataclass(frozen=True)
class MessageKey:
    """Whose message it is, enough to record it when the log has no row for it yet."""

    id: str
    workflow_id: str
    run_id: str
    step: str
    recipient_id: str
    channel: str


def _now() -> datetime:
    return datetime.now(UTC)


_CHANGING = (
    "workflow_id",
    "run_id",
    "step",
    "recipient_id",
    "channel",
    "address",
    "state",
    "detail",
    "provider_id",
    "reason",
)
"""The columns of a message that :func:`message_values` gives (all but id and times)."""


class _GroupCommit:
    """Writes items in batches: those submitted while a write runs go in the next one."""

    def __init__(self, write: Callable[[list[Any]], Awaitable[None]]) -> None:
        self._write = write
        self._pending: list[tuple[Any, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def submit(self, item: Any) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._write([item for item, _ in batch])
                except BaseException as exc:  # each waiter sees the failure of its write
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._flushing = None


def message_values(message: MessageRecord) -> dict[str, Any]:
    """A message's columns that change with its state (the reason cut to its column)."""
    reason = message.reason
    return {
        "workflow_id": message.workflow_id,
        "run_id": message.run_id,
        "step": message.step,
        "recipient_id": message.recipient_id,
        "channel": message.channel,
        "address": message.address,
        "state": message.state,
        "detail": message.detail,
        "provider_id": message.provider_id,
        "reason": reason if reason is None or len(reason) <= 255 else reason[:254] + "…",
    }


class MessageStore:
    """Mixed into :class:`journeys.store.Store`."""

    engine: Any
    writer: Writer

    if TYPE_CHECKING:

        @property
        def dialect(self) -> str: ...

    def _insert(self) -> Any:
        return insert(self.dialect, t.messages)

    async def save_message(self, message: MessageRecord) -> None:
        """Record a message, or the new state of one already recorded; returns once committed.

        Saves made while a commit is under way are committed together by the next one.
        """
        loop = asyncio.get_running_loop()
        groups = self.__dict__.setdefault("_groups", weakref.WeakKeyDictionary())
        group = groups.get(loop)
        if group is None:
            group = groups[loop] = _GroupCommit(self._save_messages)
        await group.submit(message)

    async def _save_messages(self, messages: Sequence[MessageRecord]) -> None:
        """Upsert messages in one transaction, in the order they came."""
        now = _now()
        statement = self._insert()
        statement = statement.on_conflict_do_update(
            index_elements=[t.messages.c.id],
            set_={name: statement.excluded[name] for name in (*_CHANGING, "updated_at")},
        )
        rows = [
            {"id": m.id, "created_at": now, "updated_at": now, **message_values(m)}
            for m in messages
        ]
        async with self.writer.begin() as conn:
            await conn.execute(statement, rows)

    async def claim_message(self, message: MessageRecord) -> str | None:
        """Mark a message ``sending`` unless it was withdrawn or settled meanwhile.

        Returns the state it was claimed from: ``queued``, ``new`` (the log had no row for
        it: it is recorded ``sending``) or ``sending`` (an attempt died handing it over:
        the provider may have it already). Returns None when it may not be sent: its row
        says ``sent``, ``skipped``, ``failed``….
        """
        now = _now()
        async with self.writer.begin() as conn:
            for state in CLAIMABLE:
                claimed = await conn.execute(
                    update(t.messages)
                    .where(t.messages.c.id == message.id, t.messages.c.state == state)
                    .values(state="sending", address=message.address, updated_at=now)
                )
                if claimed.rowcount:
                    return state
            values = {**message_values(message), "state": "sending", "updated_at": now}
            inserted = await conn.execute(
                self._insert()
                .values(id=message.id, created_at=now, **values)
                .on_conflict_do_nothing(index_elements=["id"])
            )
            return "new" if inserted.rowcount else None

    async def withdraw_messages(
        self, keys: Sequence[MessageKey], reason: str, *, state: str = "skipped"
    ) -> list[str]:
        """Mark messages withdrawn (``state``, with ``reason``) unless they are going out.

        A message the log has no row for yet is recorded withdrawn, so a send that had not
        started yet cannot claim it later. Returns the ids still being handed over
        (``sending``): the caller waits for them and asks again.
        """
        now = _now()
        sending: list[str] = []
        async with self.writer.begin() as conn:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                await conn.execute(
                    self._insert()
                    .values(
                        [
                            {
                                "id": k.id,
                                "workflow_id": k.workflow_id,
                                "run_id": k.run_id,
                                "step": k.step,
                                "recipient_id": k.recipient_id,
                                "channel": k.channel,
                                "state": state,
                                "reason": reason[:255],
                                "detail": {},
                                "created_at": now,
                                "updated_at": now,
                            }
                            for k in chunk
                        ]
                    )
                    .on_conflict_do_nothing(index_elements=["id"])
                )
                ids = [k.id for k in chunk]
                await conn.execute(
                    update(t.messages)
                    .where(t.messages.c.id.in_(ids), t.messages.c.state == "queued")
                    .values(state=state, reason=reason[:255], updated_at=now)
                )
                rows = await conn.execute(
                    select(t.messages.c.id).where(
                        t.messages.c.id.in_(ids), t.messages.c.state == "sending"
                    )
                )
                sending += [row.id for row in rows]
        return sending

    async def release_messages(
        self, ids: Sequence[str], reason: str, *, state: str = "skipped"
    ) -> None:
        """Withdraw messages left ``sending`` by an attempt that is gone (see withdraw)."""
        async with self.writer.begin() as conn:
            for start in range(0, len(ids), _CHUNK):
                await conn.execute(
                    update(t.messages)
                    .where(
                        t.messages.c.id.in_(ids[start : start + _CHUNK]),
                        t.messages.c.state == "sending",
                    )
                    .values(state=state, reason=reason[:255], updated_at=_now())
                )
