"""Triggers and the journey runs they started, one row per recipient's run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from definitions.values import JSONValue
from journeys.store import tables as t
from journeys.store.database import Database, aware, chunks
from journeys.store.dialects import insert

__all__ = ["RunRecord", "RunStore", "TriggerRecord"]


@dataclass(frozen=True)
class TriggerRecord:
    """One call of trigger(): the runs it started or found already running."""

    id: str
    journey: str
    data: dict[str, JSONValue]
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
    outcome: dict[str, JSONValue] | None = None
    """The run's final progress (a RunProgress as JSON), once it has ended."""


class RunStore:
    """The triggers and runs tables.

    Args:
        db: the store's database.

    """

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- triggers ----------------------------------------------------------------------------

    async def find_trigger(self, idempotency_key: str) -> TriggerRecord | None:
        """The trigger recorded under an idempotency key, if any."""
        return await self._trigger(t.triggers.c.idempotency_key == idempotency_key)

    async def get_trigger(self, trigger_id: str) -> TriggerRecord | None:
        """A trigger by id."""
        return await self._trigger(t.triggers.c.id == trigger_id)

    async def _trigger(self, where: ColumnElement[bool]) -> TriggerRecord | None:
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(select(t.triggers).where(where))).first()
        if row is None:
            return None
        return TriggerRecord(
            row.id, row.journey, dict(row.data), aware(row.created_at), row.idempotency_key
        )

    async def save_trigger(self, trigger: TriggerRecord) -> TriggerRecord:
        """Record a trigger; with an idempotency key already used, returns the first one."""
        try:
            async with self.db.writer.begin() as conn:
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

    # -- runs --------------------------------------------------------------------------------

    async def add(self, run: RunRecord) -> None:
        """Record a run (once: recording the same run again changes nothing)."""
        statement = insert(self.db.dialect, t.runs).on_conflict_do_nothing(
            index_elements=[t.runs.c.workflow_id, t.runs.c.run_id]
        )
        async with self.db.writer.begin() as conn:
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

    async def of_trigger(self, trigger_id: str) -> list[RunRecord]:
        """The runs a trigger started, in the order they started."""
        return await self._runs(t.runs.c.trigger_id == trigger_id)

    async def open_of(self, recipient_id: str) -> list[RunRecord]:
        """The runs of a recipient not yet known to be closed."""
        return (await self.open_of_people([recipient_id])).get(recipient_id, [])

    async def open_of_people(self, recipient_ids: Sequence[str]) -> dict[str, list[RunRecord]]:
        """The runs of each of these recipients not yet known to be closed (those with any)."""
        found: dict[str, list[RunRecord]] = {}
        for chunk in chunks(list(recipient_ids)):
            for run in await self._runs(t.runs.c.recipient_id.in_(chunk), t.runs.c.closed == 0):
                found.setdefault(run.recipient_id, []).append(run)
        return found

    async def find(self, workflow_id: str, run_id: str | None = None) -> list[RunRecord]:
        """Runs of a workflow id (one of them with ``run_id``), newest first."""
        where = [t.runs.c.workflow_id == workflow_id]
        if run_id:
            where.append(t.runs.c.run_id == run_id)
        return list(reversed(await self._runs(*where)))

    async def of_person(self, recipient_id: str) -> list[RunRecord]:
        """Every run of a person, oldest first."""
        return await self._runs(t.runs.c.recipient_id == recipient_id)

    async def get(self, run_id: str) -> RunRecord | None:
        """A run by its Temporal run id."""
        found = await self._runs(t.runs.c.run_id == run_id)
        return found[0] if found else None

    async def _runs(self, *where: ColumnElement[bool]) -> list[RunRecord]:
        async with self.db.engine.connect() as conn:
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
                    aware(r.started_at),
                    bool(r.closed),
                    bool(r.member),
                    r.outcome,
                )
                for r in rows
            ]

    async def mark_closed(self, workflow_id: str, run_id: str) -> None:
        """Remember that a run has ended, so events are no longer sent to it."""
        async with self.db.writer.begin() as conn:
            await conn.execute(
                update(t.runs)
                .where(t.runs.c.workflow_id == workflow_id, t.runs.c.run_id == run_id)
                .values(closed=1)
            )

    async def close(
        self, workflow_id: str, outcomes: Sequence[tuple[str, Mapping[str, JSONValue]]]
    ) -> None:
        """Mark runs of a workflow ended, keeping each one's final progress (JSON)."""
        if not outcomes:
            return
        statement = (
            update(t.runs)
            .where(
                t.runs.c.workflow_id == bindparam("wf"),
                t.runs.c.run_id == bindparam("rid"),
            )
            .values(closed=1, outcome=bindparam("outcome"))
        )
        async with self.db.writer.begin() as conn:
            await conn.execute(
                statement,
                [{"wf": workflow_id, "rid": rid, "outcome": outcome} for rid, outcome in outcomes],
            )

    async def open_in(self, journey: str, recipient_id: str) -> tuple[str, str] | None:
        """(workflow id, run id) of the recipient's open run of a journey, if any."""
        async with self.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t.runs.c.workflow_id, t.runs.c.run_id)
                    .where(
                        t.runs.c.journey == journey,
                        t.runs.c.recipient_id == recipient_id,
                        t.runs.c.closed == 0,
                    )
                    .limit(1)
                )
            ).first()
        return (row.workflow_id, row.run_id) if row else None

    async def last_started(self, journey: str, recipient_id: str) -> datetime | None:
        """When the person last entered a journey, if ever."""
        async with self.db.engine.connect() as conn:
            value = (
                await conn.execute(
                    select(func.max(t.runs.c.started_at)).where(
                        t.runs.c.journey == journey, t.runs.c.recipient_id == recipient_id
                    )
                )
            ).scalar()
        return None if value is None else aware(value)

    # -- cohorts' runs -----------------------------------------------------------------------

    async def cohorts_of(self, trigger_id: str) -> list[str]:
        """The workflow ids of a trigger's cohorts, in the order they were claimed."""
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(
                select(t.runs.c.workflow_id, func.min(t.runs.c.started_at).label("first"))
                .where(t.runs.c.trigger_id == trigger_id, t.runs.c.member == 1)
                .group_by(t.runs.c.workflow_id)
                .order_by("first", t.runs.c.workflow_id)
            )
            return [str(r.workflow_id) for r in rows]

    async def of_member(self, trigger_id: str, recipient_id: str) -> list[tuple[str, str]]:
        """(workflow id, run id) of a recipient's runs in a trigger."""
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(
                select(t.runs.c.workflow_id, t.runs.c.run_id).where(
                    t.runs.c.trigger_id == trigger_id, t.runs.c.recipient_id == recipient_id
                )
            )
            return [(r.workflow_id, r.run_id) for r in rows]

    async def of_workflow(self, workflow_id: str) -> list[str]:
        """The run ids of a cohort workflow's recipients."""
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(
                select(t.runs.c.run_id).where(t.runs.c.workflow_id == workflow_id)
            )
            return [str(r.run_id) for r in rows]

    async def close_cohorts_of(self, trigger_id: str) -> None:
        """Mark every cohort run of a trigger ended (after the trigger was cancelled)."""
        async with self.db.writer.begin() as conn:
            await conn.execute(
                update(t.runs)
                .where(
                    t.runs.c.trigger_id == trigger_id,
                    t.runs.c.member == 1,
                    t.runs.c.closed == 0,
                )
                .values(closed=1)
            )
