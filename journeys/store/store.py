"""Reads and writes of the store, one method per question the engine asks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from definitions.errors import ConfigurationError, EngineUnavailableError
from journeys.consent import Preferences
from journeys.store import tables as t
from journeys.store.cohorts import CohortStore
from journeys.store.dialects import Writer, configure_sqlite, insert, json_merge
from journeys.store.messages import MessageStore, message_values
from journeys.store.people import PeopleStore, PersonPage

__all__ = [
    "MessageRecord",
    "PersonPage",
    "RunRecord",
    "Store",
    "TriggerRecord",
    "normalise_url",
]

_MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """The async driver URL for a database URL (``sqlite:///x.db`` → aiosqlite, and so on)."""
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TriggerRecord:
    """One call of trigger(): the runs it started or found already running."""

    id: str
    journey: str
    data: dict[str, Any]
    created_at: datetime
    idempotency_key: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """One journey run for one recipient."""

    workflow_id: str
    run_id: str
    journey: str
    recipient_id: str
    trigger_id: str
    started_at: datetime
    closed: bool = False
    member: bool = False
    """True when the run is one recipient of a cohort workflow."""
    outcome: dict[str, Any] | None = None
    """The run's final progress (a RunProgress as JSON), once it has ended."""


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
    detail: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    provider_id: str | None = None
    """The provider's id of the message (SMTP Message-ID, Twilio SID, FCM name)."""
    reason: str | None = None
    """Why it was skipped or failed."""


class Store(PeopleStore, CohortStore, MessageStore):
    """Access to the store's tables.

    Args:
        url: a SQLAlchemy URL; ``sqlite:///path.db`` and ``postgresql://…`` are turned into
            their async drivers.

    """

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        try:
            parsed = make_url(self.url)
        except Exception as exc:
            raise ConfigurationError(f"invalid store url {url!r}: {exc}") from None
        self._sqlite = parsed.get_backend_name() == "sqlite"
        if self._sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {"connect_args": {"timeout": 30}} if self._sqlite else {}
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        """For reads (``engine.connect()``)."""
        if self._sqlite:
            configure_sqlite(self.engine.sync_engine)
        self.writer = Writer(self.engine)
        """For writes (``writer.begin()``): the same pool; on SQLite, ``BEGIN IMMEDIATE``."""

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Open a store, bringing its schema up to date unless ``migrate`` is False."""
        store = cls(url)
        if migrate:
            await store.migrate()
        return store

    async def close(self) -> None:
        """Release the store's connections."""
        await self.engine.dispose()

    async def migrate(self, revision: str = "head") -> None:
        """Apply the Alembic migrations that are not applied yet (up to ``revision``)."""
        for attempt in range(3):
            try:
                async with self.writer.begin() as conn:
                    await conn.run_sync(_upgrade, revision)
                return
            except (OperationalError, ProgrammingError, IntegrityError) as exc:
                if attempt == 2:
                    raise EngineUnavailableError(f"cannot migrate the store: {exc}") from exc
                await asyncio.sleep(0.2 * (attempt + 1))  # another process is migrating
            except OSError as exc:
                raise EngineUnavailableError(
                    "cannot reach the store at "
                    f"{make_url(self.url).render_as_string(hide_password=True)}: {exc}"
                ) from exc

    # -- events --------------------------------------------------------------------------

    async def record_event(
        self,
        recipient_id: str | None,
        name: str,
        data: dict[str, Any] | None = None,
        at: datetime | None = None,
        *,
        anonymous_id: str | None = None,
        event_id: str | None = None,
        create_person: bool = False,
    ) -> int | None:
        """Store an event of a person (or an anonymous visitor); returns its id.

        Returns None when ``event_id`` was recorded before: a repeat changes nothing.
        With ``create_person``, a person without a profile gets an empty one, in the same
        transaction (so a concurrent :meth:`delete_person` takes both or neither).
        """
        try:
            async with self.writer.begin() as conn:
                if create_person and recipient_id is not None:
                    await self._ensure(conn, [recipient_id])
                result = await conn.execute(
                    t.events.insert().values(
                        recipient_id=recipient_id,
                        name=name,
                        data=dict(data or {}),
                        timestamp=at or _now(),
                        anonymous_id=anonymous_id,
                        event_id=event_id,
                    )
                )
        except IntegrityError:
            if event_id is None:
                raise
            return None
        key = result.inserted_primary_key
        return int(key[0]) if key else 0

    async def event_count(self, recipient_id: str, name: str, since: datetime | None = None) -> int:
        """How many times the recipient did an event (since a time, when given)."""
        query = (
            select(func.count())
            .select_from(t.events)
            .where(t.events.c.recipient_id == recipient_id, t.events.c.name == name)
        )
        if since is not None:
            query = query.where(t.events.c.timestamp >= since)
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    # -- triggers and runs ---------------------------------------------------------------

    async def find_trigger(self, idempotency_key: str) -> TriggerRecord | None:
        """The trigger recorded under an idempotency key, if any."""
        return await self._trigger(t.triggers.c.idempotency_key == idempotency_key)

    async def get_trigger(self, trigger_id: str) -> TriggerRecord | None:
        """A trigger by id."""
        return await self._trigger(t.triggers.c.id == trigger_id)

    async def _trigger(self, where: Any) -> TriggerRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t.triggers).where(where))).first()
        if row is None:
            return None
        return TriggerRecord(
            row.id, row.journey, dict(row.data), _aware(row.created_at), row.idempotency_key
        )

    async def save_trigger(self, trigger: TriggerRecord) -> TriggerRecord:
        """Record a trigger; with an idempotency key already used, returns the first one."""
        try:
            async with self.writer.begin() as conn:
                await conn.execute(
                    t.triggers.insert().values(
                        id=trigger.id,
                        journey=trigger.journey,
                        data=trigger.data,
                        created_at=trigger.created_at,
                        idempotency_key=trigger.idempotency_key,
                    )
                )
        except IntegrityError:
            if trigger.idempotency_key is None:
                raise
            found = await self.find_trigger(trigger.idempotency_key)
            assert found is not None
            return found
        return trigger

    async def add_run(self, run: RunRecord) -> None:
        """Record a run (once: recording the same run again changes nothing)."""
        statement = insert(self.dialect, t.runs).on_conflict_do_nothing(
            index_elements=[t.runs.c.workflow_id, t.runs.c.run_id]
        )
        async with self.writer.begin() as conn:
            await conn.execute(
                statement.values(
                    workflow_id=run.workflow_id,
                    run_id=run.run_id,
                    journey=run.journey,
                    recipient_id=run.recipient_id,
                    trigger_id=run.trigger_id,
                    started_at=run.started_at,
                    closed=int(run.closed),
                    member=int(run.member),
                )
            )

    async def runs_of_trigger(self, trigger_id: str) -> list[RunRecord]:
        """The runs a trigger started, in the order they started."""
        return await self._runs(t.runs.c.trigger_id == trigger_id)

    async def open_runs(self, recipient_id: str) -> list[RunRecord]:
        """The runs of a recipient not yet known to be closed."""
        return await self._runs(t.runs.c.recipient_id == recipient_id, t.runs.c.closed == 0)

    async def find_runs(self, workflow_id: str, run_id: str | None = None) -> list[RunRecord]:
        """Runs of a workflow id (one of them with ``run_id``), newest first."""
        where = [t.runs.c.workflow_id == workflow_id]
        if run_id:
            where.append(t.runs.c.run_id == run_id)
        return list(reversed(await self._runs(*where)))

    async def find_runs_of(self, recipient_id: str) -> list[RunRecord]:
        """Every run of a person, oldest first."""
        return await self._runs(t.runs.c.recipient_id == recipient_id)

    async def find_run(self, run_id: str) -> RunRecord | None:
        """A run by its Temporal run id."""
        found = await self._runs(t.runs.c.run_id == run_id)
        return found[0] if found else None

    async def _runs(self, *where: Any) -> list[RunRecord]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(t.runs).where(*where).order_by(t.runs.c.started_at, t.runs.c.recipient_id)
            )
            return [
                RunRecord(
                    r.workflow_id,
                    r.run_id,
                    r.journey,
                    r.recipient_id,
                    r.trigger_id,
                    _aware(r.started_at),
                    bool(r.closed),
                    bool(r.member),
                    r.outcome,
                )
                for r in rows
            ]

    async def mark_closed(self, workflow_id: str, run_id: str) -> None:
        """Remember that a run has ended, so events are no longer sent to it."""
        async with self.writer.begin() as conn:
            await conn.execute(
                update(t.runs)
                .where(t.runs.c.workflow_id == workflow_id, t.runs.c.run_id == run_id)
                .values(closed=1)
            )

    # -- messages ------------------------------------------------------------------------

    async def get_message(self, message_id: str) -> MessageRecord | None:
        """A message by id."""
        found = await self._messages(t.messages.c.id == message_id)
        return found[0] if found else None

    async def list_messages(
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

    async def _messages(self, *where: Any, limit: int = 100) -> list[MessageRecord]:
        query = (
            select(t.messages)
            .where(*where)
            .order_by(t.messages.c.created_at.desc(), t.messages.c.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
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
                    _aware(r.created_at),
                    _aware(r.updated_at),
                    r.provider_id,
                    r.reason,
                )
                for r in rows
            ]

    async def get_messages(self, message_ids: Sequence[str]) -> dict[str, MessageRecord]:
        """Many messages of the log by id (those never recorded are absent)."""
        found: dict[str, MessageRecord] = {}
        ids = list(message_ids)
        for start in range(0, len(ids), 500):
            for message in await self._messages(
                t.messages.c.id.in_(ids[start : start + 500]), limit=500
            ):
                found[message.id] = message
        return found

    async def add_messages(self, messages: Sequence[MessageRecord]) -> None:
        """Record messages never recorded before; those already recorded are kept as they are."""
        if not messages:
            return
        now = _now()
        statement = insert(self.dialect, t.messages).on_conflict_do_nothing(
            index_elements=[t.messages.c.id]
        )
        async with self.writer.begin() as conn:
            await conn.execute(
                statement,
                [
                    {"id": m.id, **message_values(m), "created_at": now, "updated_at": now}
                    for m in sorted(messages, key=lambda m: m.id)
                ],
            )

    # -- preferences and suppressions ----------------------------------------------------

    async def get_preferences(self, recipient_id: str) -> Preferences:
        """A recipient's preferences (the defaults when none were set)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t.preferences).where(t.preferences.c.recipient_id == recipient_id)
                )
            ).first()
        if row is None:
            return Preferences(recipient_id)
        return Preferences(
            recipient_id, bool(row.unsubscribed), dict(row.channels), dict(row.topics)
        )

    async def get_many_preferences(self, recipient_ids: Sequence[str]) -> dict[str, Preferences]:
        """Many recipients' preferences (the defaults for those who set none)."""
        found = {rid: Preferences(rid) for rid in recipient_ids}
        ids = list(recipient_ids)
        async with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                rows = await conn.execute(
                    select(t.preferences).where(
                        t.preferences.c.recipient_id.in_(ids[start : start + 500])
                    )
                )
                for row in rows:
                    found[row.recipient_id] = Preferences(
                        row.recipient_id,
                        bool(row.unsubscribed),
                        dict(row.channels),
                        dict(row.topics),
                    )
        return found

    async def update_preferences(
        self,
        recipient_id: str,
        *,
        unsubscribed: bool | None = None,
        channels: dict[str, bool] | None = None,
        topics: dict[str, bool] | None = None,
    ) -> Preferences:
        """Change some preferences, keeping the others; returns the result.

        One statement: channels and topics merge in the database, so concurrent updates
        of different keys all hold.
        """
        p = t.preferences.c
        statement = insert(self.dialect, t.preferences).values(
            recipient_id=recipient_id,
            unsubscribed=int(bool(unsubscribed)),
            channels=dict(channels or {}),
            topics=dict(topics or {}),
            updated_at=_now(),
        )
        new = statement.excluded
        changes: dict[str, Any] = {
            "channels": json_merge(p.channels, new.channels),
            "topics": json_merge(p.topics, new.topics),
            "updated_at": new.updated_at,
        }
        if unsubscribed is not None:
            changes["unsubscribed"] = new.unsubscribed
        statement = statement.on_conflict_do_update(index_elements=[p.recipient_id], set_=changes)
        async with self.writer.begin() as conn:
            row = (
                await conn.execute(statement.returning(p.unsubscribed, p.channels, p.topics))
            ).one()
        return Preferences(
            recipient_id, bool(row.unsubscribed), dict(row.channels), dict(row.topics)
        )

    async def suppress(self, kind: str, value: str, reason: str) -> None:
        """Suppress a person (``kind="person"``) or an address (``kind="address"``).

        Suppressing again keeps the first reason.
        """
        statement = insert(self.dialect, t.suppressions).on_conflict_do_nothing(
            index_elements=[t.suppressions.c.kind, t.suppressions.c.value]
        )
        async with self.writer.begin() as conn:
            await conn.execute(
                statement.values(kind=kind, value=value, reason=reason, created_at=_now())
            )

    async def unsuppress(self, kind: str, value: str) -> None:
        """Lift a suppression."""
        async with self.writer.begin() as conn:
            await conn.execute(
                t.suppressions.delete().where(
                    t.suppressions.c.kind == kind, t.suppressions.c.value == value
                )
            )

    async def suppression(self, recipient_id: str, addresses: list[str]) -> str | None:
        """The reason a person or one of these addresses is suppressed, or None."""
        wanted = [("person", recipient_id), *(("address", a.lower()) for a in addresses)]
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(t.suppressions).where(t.suppressions.c.value.in_([v for _, v in wanted]))
            )
            for row in rows:
                if (row.kind, row.value) in wanted:
                    return f"{row.kind}: {row.reason}"
        return None


_ALEMBIC_LOG = logging.getLogger("alembic")
if _ALEMBIC_LOG.level == logging.NOTSET:
    # The store migrates itself on every start: alembic's INFO lines ("Context impl
    # SQLiteImpl.", "Running upgrade …") would show on every command and worker start
    # under an INFO log. Its warnings still show; an app that sets the level keeps it.
    _ALEMBIC_LOG.setLevel(logging.WARNING)


def _upgrade(connection: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
