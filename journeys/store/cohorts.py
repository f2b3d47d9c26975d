"""The store's side of cohorts: a trigger's recipients, claiming them into cohorts, closing runs."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, insert, select, update

from definitions.conditions import SegmentCondition
from journeys.store import tables as t
from journeys.store.dialects import Writer, advisory_lock

if TYPE_CHECKING:
    from journeys.store.segment_sql import ConditionSQL

__all__ = ["CohortStore", "new_member_run_id"]

_CHUNK = 500
"""Ids per ``IN (…)`` list: well under SQLite's and asyncpg's parameter limits."""


def new_member_run_id() -> str:
    """A run id for one recipient of a cohort."""
    return f"m_{secrets.token_hex(8)}"


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class CohortStore:
    """Mixed into :class:`journeys.store.Store`."""

    engine: Any
    writer: Writer

    if TYPE_CHECKING:

        def sql(
            self, lookup: Callable[[str], SegmentCondition | None] | None = None
        ) -> ConditionSQL: ...

    async def add_trigger_recipients(
        self, trigger_id: str, recipients: Sequence[tuple[str, dict[str, Any] | None]]
    ) -> None:
        """Keep a cohort trigger's recipients (in order) for its parent workflow to page.

        Written once: a second call for the same trigger (a retried trigger with the same
        idempotency key), even at the same time, changes nothing (the trigger's row is
        locked while its recipients are written).
        """
        async with self.writer.begin() as conn:
            known = (
                await conn.execute(
                    select(t.triggers.c.recipients)
                    .where(t.triggers.c.id == trigger_id)
                    .with_for_update()
                )
            ).scalar()
            if known is not None:
                return
            rows = [
                {"trigger_id": trigger_id, "position": i, "recipient_id": rid, "data": data}
                for i, (rid, data) in enumerate(recipients)
            ]
            for chunk in _chunks(rows, 5000):
                await conn.execute(insert(t.trigger_recipients), list(chunk))
            await conn.execute(
                update(t.triggers)
                .where(t.triggers.c.id == trigger_id)
                .values(recipients=len(recipients))
            )

    async def trigger_size(self, trigger_id: str) -> int | None:
        """How many recipients a cohort trigger has; None for a trigger of single runs."""
        async with self.engine.connect() as conn:
            value = (
                await conn.execute(
                    select(t.triggers.c.recipients).where(t.triggers.c.id == trigger_id)
                )
            ).scalar()
        return int(value) if value is not None else None

    async def claim_cohort(
        self, trigger_id: str, journey: str, workflow_id: str, after: int, limit: int
    ) -> tuple[list[tuple[str, str, dict[str, Any]]], int, int]:
        """Put the trigger's next page of recipients in a cohort, in one transaction.

        A recipient with an open run of the journey (in another cohort or on their own)
        keeps it and is left out. Claiming the same page for the same cohort again (a
        retried activity) returns the same members. Claims of one journey run one at a
        time (a lock on the journey's name), so two cohorts never both claim a person.

        Returns:
            (members as (recipient id, run id, data), position of the page's last
            recipient or -1 when none was left, how many were left out).

        """
        started = datetime.now(UTC)
        async with self.writer.begin() as conn:
            await advisory_lock(conn, f"claim:{journey}")
            page = (
                await conn.execute(
                    select(
                        t.trigger_recipients.c.position,
                        t.trigger_recipients.c.recipient_id,
                        t.trigger_recipients.c.data,
                    )
                    .where(
                        t.trigger_recipients.c.trigger_id == trigger_id,
                        t.trigger_recipients.c.position > after,
                    )
                    .order_by(t.trigger_recipients.c.position)
                    .limit(limit)
                )
            ).all()
            if not page:
                return [], -1, 0
            ids = [row.recipient_id for row in page]
            ours: dict[str, str] = {}
            busy: set[str] = set()
            for chunk in _chunks(ids):
                rows = await conn.execute(
                    select(t.runs.c.recipient_id, t.runs.c.run_id, t.runs.c.workflow_id).where(
                        t.runs.c.journey == journey,
                        t.runs.c.recipient_id.in_(chunk),
                        t.runs.c.closed == 0,
                    )
                )
                for row in rows:
                    if row.workflow_id == workflow_id:
                        ours[row.recipient_id] = row.run_id
                    else:
                        busy.add(row.recipient_id)
            members: list[tuple[str, str, dict[str, Any]]] = []
            new_rows = []
            for row in page:
                rid = row.recipient_id
                if rid in busy and rid not in ours:
                    continue
                run_id = ours.get(rid) or new_member_run_id()
                if rid not in ours:
                    new_rows.append(
                        {
                            "workflow_id": workflow_id,
                            "run_id": run_id,
                            "journey": journey,
                            "recipient_id": rid,
                            "trigger_id": trigger_id,
                            "started_at": started,
                            "closed": 0,
                            "member": 1,
                        }
                    )
                members.append((rid, run_id, dict(row.data or {})))
            for chunk in _chunks(new_rows, 5000):
                await conn.execute(insert(t.runs), list(chunk))
        return members, int(page[-1].position), len(page) - len(members)

    async def close_runs(
        self, workflow_id: str, outcomes: Sequence[tuple[str, dict[str, Any]]]
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
        async with self.writer.begin() as conn:
            await conn.execute(
                statement,
                [{"wf": workflow_id, "rid": rid, "outcome": outcome} for rid, outcome in outcomes],
            )

    async def open_run_of(self, journey: str, recipient_id: str) -> tuple[str, str] | None:
        """(workflow id, run id) of the recipient's open run of a journey, if any."""
        async with self.engine.connect() as conn:
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

    async def cohorts_of_trigger(self, trigger_id: str) -> list[str]:
        """The workflow ids of a trigger's cohorts, in the order they were claimed."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(t.runs.c.workflow_id, func.min(t.runs.c.started_at).label("first"))
                .where(t.runs.c.trigger_id == trigger_id, t.runs.c.member == 1)
                .group_by(t.runs.c.workflow_id)
                .order_by("first", t.runs.c.workflow_id)
            )
            return [str(r.workflow_id) for r in rows]

    async def member_runs(self, trigger_id: str, recipient_id: str) -> list[tuple[str, str]]:
        """(workflow id, run id) of a recipient's runs in a trigger."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(t.runs.c.workflow_id, t.runs.c.run_id).where(
                    t.runs.c.trigger_id == trigger_id, t.runs.c.recipient_id == recipient_id
                )
            )
            return [(r.workflow_id, r.run_id) for r in rows]

    async def in_trigger(self, trigger_id: str, recipient_id: str) -> bool:
        """Whether a cohort trigger named this recipient."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t.trigger_recipients.c.position)
                    .where(
                        t.trigger_recipients.c.trigger_id == trigger_id,
                        t.trigger_recipients.c.recipient_id == recipient_id,
                    )
                    .limit(1)
                )
            ).first()
        return row is not None

    async def runs_of_workflow(self, workflow_id: str) -> list[str]:
        """The run ids of a cohort workflow's recipients."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(t.runs.c.run_id).where(t.runs.c.workflow_id == workflow_id)
            )
            return [str(r.run_id) for r in rows]

    async def close_open_runs_of_trigger(self, trigger_id: str) -> None:
        """Mark every cohort run of a trigger ended (after the trigger was cancelled)."""
        async with self.writer.begin() as conn:
            await conn.execute(
                update(t.runs)
                .where(
                    t.runs.c.trigger_id == trigger_id,
                    t.runs.c.member == 1,
                    t.runs.c.closed == 0,
                )
                .values(closed=1)
            )

    async def matching(
        self, condition: Any, recipient_ids: Sequence[str], *, now: datetime | None = None
    ) -> tuple[set[str], set[str]]:
        """Which of these people a condition holds for, in one query per few hundred ids.

        Returns:
            (the ids it holds for, the ids that have no profile: the caller decides those,
            since a condition such as ``ne`` or ``not`` can hold for someone unknown).

        """
        compiler = self.sql()
        if now is not None:
            compiler.now = now
        where = compiler.where(condition)
        matched: set[str] = set()
        known: set[str] = set()
        async with self.engine.connect() as conn:
            for chunk in _chunks(list(recipient_ids)):
                rows = await conn.execute(
                    select(t.profiles.c.id, where.label("hit")).where(t.profiles.c.id.in_(chunk))
                )
                for row in rows:
                    known.add(row.id)
                    if row.hit:
                        matched.add(row.id)
        return matched, set(recipient_ids) - known
