"""The message log's writes, and the gate a message goes out through.

A send marks its message ``sending`` right before the provider call, in one statement that
succeeds only while the message is still ``queued`` (or was left ``sending`` by an attempt
that died). A cancel or exit marks the messages of the recipients it takes out
``skipped`` in one statement that succeeds only while they are ``queued``. The two
statements cannot both succeed for a message, so once a withdrawal is written nothing can
send that message any more, and a message that was already being handed over is waited
for (it ends ``sent``, ``failed`` or ``queued`` for a retry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from definitions.values import JSONValue
from journeys.store import tables as t
from journeys.store.coalesce import Coalescer
from journeys.store.database import CHUNK, Database, aware
from journeys.store.database import now as _now
from journeys.store.dialects import insert

__all__ = [
    "CLAIMABLE",
    "MessageKey",
    "MessageRecord",
    "MessageStore",
    "Withdrawal",
    "message_values",
]

CLAIMABLE = ("queued", "sending")
"""States a send may claim a message in (``sending``: an attempt died handing it over)."""
GROUP = 64
"""The most claims (or writes) that share one transaction (see :meth:`MessageStore.claim`)."""


@dataclass(frozen=True)
class MessageRecord:
    """One message and what became of it."""

    id: str
    workflow_id: str
    run_id: str
    step: str
    recipient_id: str
    channel: str
    state: str
    address: str | None = None
    detail: dict[str, JSONValue] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    provider_id: str | None = None
    """The provider's id of the message (SMTP Message-ID, Twilio SID, FCM name)."""
    reason: str | None = None
    """Why it was skipped or failed."""


@dataclass(frozen=True)
class Withdrawal:
    """What a withdrawal did."""

    withdrawn: list[str]
    """The messages it withdrew (recorded or not before)."""
    sending: list[str]
    """The messages being handed over right now: wait for them, and ask again."""


@dataclass(frozen=True)
class MessageKey:
    """Whose message it is, enough to record it when the log has no row for it yet."""

    id: str
    workflow_id: str
    run_id: str
    step: str
    recipient_id: str
    channel: str


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


def message_values(message: MessageRecord) -> dict[str, object]:
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
    """The message log: what was sent to whom, and the gate each send goes through.

    Args:
        db: the store's database.

    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._claims = Coalescer(self.claim_many, most=GROUP, key=_message_id)
        self._saves = Coalescer(self._save_many, most=GROUP, key=_message_id)

    def _insert(self) -> postgresql.Insert | sqlite.Insert:
        return insert(self.db.dialect, t.messages)

    # -- reads -------------------------------------------------------------------------------

    async def get(self, message_id: str) -> MessageRecord | None:
        """A message by id."""
        found = await self._messages(t.messages.c.id == message_id)
        return found[0] if found else None

    async def find(
        self,
        *,
        recipient_id: str | None = None,
        workflow_id: str | None = None,
        run_id: str | None = None,
        limit: int = 100,
    ) -> list[MessageRecord]:
        """Messages, newest first, of a recipient and/or a run."""
        where = []
        if recipient_id is not None:
            where.append(t.messages.c.recipient_id == recipient_id)
        if workflow_id is not None:
            where.append(t.messages.c.workflow_id == workflow_id)
        if run_id is not None:
            where.append(t.messages.c.run_id == run_id)
        return await self._messages(*where, limit=limit)

    async def _messages(self, *where: ColumnElement[bool], limit: int = 100) -> list[MessageRecord]:
        query = (
            select(t.messages)
            .where(*where)
            .order_by(t.messages.c.created_at.desc(), t.messages.c.id)
            .limit(limit)
        )
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(query)
            return [
                MessageRecord(
                    r.id,
                    r.workflow_id,
                    r.run_id,
                    r.step,
                    r.recipient_id,
                    r.channel,
                    r.state,
                    r.address,
                    dict(r.detail),
                    aware(r.created_at),
                    aware(r.updated_at),
                    r.provider_id,
                    r.reason,
                )
                for r in rows
            ]

    async def get_many(self, message_ids: Sequence[str]) -> dict[str, MessageRecord]:
        """Many messages of the log by id (those never recorded are absent)."""
        found: dict[str, MessageRecord] = {}
        ids = list(message_ids)
        for start in range(0, len(ids), 500):
            for message in await self._messages(
                t.messages.c.id.in_(ids[start : start + 500]), limit=500
            ):
                found[message.id] = message
        return found

    # -- writes ------------------------------------------------------------------------------

    async def add(self, messages: Sequence[MessageRecord]) -> None:
        """Record messages never recorded before; those already recorded are kept as they are."""
        if not messages:
            return
        now = _now()
        statement = insert(self.db.dialect, t.messages).on_conflict_do_nothing(
            index_elements=[t.messages.c.id]
        )
        async with self.db.writer.begin() as conn:
            await conn.execute(
                statement,
                [
                    {"id": m.id, **message_values(m), "created_at": now, "updated_at": now}
                    for m in sorted(messages, key=lambda m: m.id)
                ],
            )

    async def save(self, message: MessageRecord) -> None:
        """Record a message, or its new state; returns once committed.

        A settled message keeps its state: only ``sent`` is written over a message that
        was withdrawn meanwhile (it went out: the log says so); every other state is
        written only while the message is ``queued`` or ``sending``, or not recorded yet.
        One statement. Writes that come while another is being committed share the next
        transaction (each still returns once its own row is committed).
        """
        await self._saves(message)

    async def _save_many(self, messages: Sequence[MessageRecord]) -> list[None]:
        """:meth:`save` for many messages (each id once), in one transaction."""
        now = _now()
        statement = self._insert()
        statement = statement.on_conflict_do_update(
            index_elements=[t.messages.c.id],
            set_={name: statement.excluded[name] for name in (*_CHANGING, "updated_at")},
            where=or_(
                and_(statement.excluded.state == "sent", t.messages.c.state != "delivered"),
                # not IN (…): an expanding list cannot go in an executemany
                *(t.messages.c.state == state for state in CLAIMABLE),
            ),
        )
        rows = [
            {"id": m.id, "created_at": now, "updated_at": now, **message_values(m)}
            for m in sorted(messages, key=_message_id)
        ]
        async with self.db.writer.begin() as conn:
            await conn.execute(statement, rows)
        return [None] * len(messages)

    async def claim(self, message: MessageRecord) -> str | None:
        """Mark a message ``sending`` unless it was withdrawn or settled meanwhile.

        Returns the state it was claimed from: ``queued``, ``new`` (the log had no row for
        it: it is recorded ``sending``) or ``sending`` (an attempt died handing it over:
        the provider may have it already). Returns None when it may not be sent: its row
        says ``sent``, ``skipped``, ``failed``….

        Claims asked for while another group is being claimed go together in the next
        transaction (at most :data:`GROUP`); each returns once its own claim is committed.
        """
        return await self._claims(message)

    async def claim_many(self, messages: Sequence[MessageRecord]) -> list[str | None]:
        """:meth:`claim` for many messages (each id once) in one transaction, in order."""
        if not messages:
            return []
        now = _now()
        ids = sorted({m.id for m in messages})
        address = case(
            {m.id: m.address for m in messages},
            value=t.messages.c.id,
            else_=t.messages.c.address,
        )
        claimed: dict[str, str] = {}
        async with self.db.writer.begin() as conn:
            # "sending" first: a row claimed from "queued" below is "sending" after it.
            for state in ("sending", "queued"):
                rows = await conn.execute(
                    update(t.messages)
                    .where(
                        t.messages.c.id.in_([i for i in ids if i not in claimed]),
                        t.messages.c.state == state,
                    )
                    .values(state="sending", address=address, updated_at=now)
                    .returning(t.messages.c.id)
                )
                claimed.update((row.id, state) for row in rows)
            fresh = [m for m in sorted(messages, key=_message_id) if m.id not in claimed]
            if fresh:
                inserted = await conn.execute(
                    self._insert()
                    .on_conflict_do_nothing(index_elements=["id"])
                    .returning(t.messages.c.id),
                    [
                        {
                            "id": m.id,
                            "created_at": now,
                            **message_values(m),
                            "state": "sending",
                            "updated_at": now,
                        }
                        for m in fresh
                    ],
                )
                claimed.update((row.id, "new") for row in inserted)
        return [claimed.get(m.id) for m in messages]

    async def withdraw(
        self, keys: Sequence[MessageKey], reason: str, *, state: str = "skipped"
    ) -> Withdrawal:
        """Mark messages withdrawn (``state``, with ``reason``) unless they are going out.

        A message the log has no row for yet is recorded withdrawn, so a send that had not
        started yet cannot claim it later. Returns the ids this withdrew, and those still
        being handed over (``sending``): the caller waits for them and asks again.
        """
        now = _now()
        withdrawn: list[str] = []
        sending: list[str] = []
        async with self.db.writer.begin() as conn:
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                inserted = await conn.execute(
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
                    .returning(t.messages.c.id)
                )
                withdrawn += [row.id for row in inserted]
                ids = [k.id for k in chunk]
                changed = await conn.execute(
                    update(t.messages)
                    .where(t.messages.c.id.in_(ids), t.messages.c.state == "queued")
                    .values(state=state, reason=reason[:255], updated_at=now)
                    .returning(t.messages.c.id)
                )
                withdrawn += [row.id for row in changed]
                rows = await conn.execute(
                    select(t.messages.c.id).where(
                        t.messages.c.id.in_(ids), t.messages.c.state == "sending"
                    )
                )
                sending += [row.id for row in rows]
        return Withdrawal(withdrawn, sending)

    async def release(
        self, ids: Sequence[str], reason: str, *, state: str = "skipped"
    ) -> list[str]:
        """Withdraw messages left ``sending`` by an attempt that is gone (see :meth:`withdraw`).

        Returns the ids it withdrew.
        """
        released: list[str] = []
        async with self.db.writer.begin() as conn:
            for start in range(0, len(ids), CHUNK):
                changed = await conn.execute(
                    update(t.messages)
                    .where(
                        t.messages.c.id.in_(ids[start : start + CHUNK]),
                        t.messages.c.state == "sending",
                    )
                    .values(state=state, reason=reason[:255], updated_at=_now())
                    .returning(t.messages.c.id)
                )
                released += [row.id for row in changed]
        return released


def _message_id(message: MessageRecord) -> str:
    return message.id
