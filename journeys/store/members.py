"""A cohort trigger's stored recipients, and claiming them into cohorts a page at a time."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import insert, select, update

from definitions.values import JSONValue
from journeys.store import tables as t
from journeys.store.database import Database, chunks
from journeys.store.dialects import advisory_lock

__all__ = ["MemberStore", "new_member_run_id"]


def new_member_run_id() -> str:
    """A run id for one recipient of a cohort."""
    return f"m_{secrets.token_hex(8)}"


class MemberStore:
    """The recipients a cohort trigger named, kept for its parent workflow to page.

    Args:
        db: the store's database.

    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self, trigger_id: str, recipients: Sequence[tuple[str, Mapping[str, JSONValue] | None]]
    ) -> None:
        """Keep a cohort trigger's recipients (in order) for its parent workflow to page.

        Written once: a second call for the same trigger (a retried trigger with the same
        idempotency key), even at the same time, changes nothing (the trigger's row is
        locked while its recipients are written).
        """
        async with self.db.writer.begin() as conn:
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
            for chunk in chunks(rows, 5000):
                await conn.execute(insert(t.trigger_recipients), list(chunk))
            await conn.execute(
                update(t.triggers)
                .where(t.triggers.c.id == trigger_id)
                .values(recipients=len(recipients))
            )

    async def count(self, trigger_id: str) -> int | None:
        """How many recipients a cohort trigger has; None for a trigger of single runs."""
        async with self.db.engine.connect() as conn:
            value = (
                await conn.execute(
                    select(t.triggers.c.recipients).where(t.triggers.c.id == trigger_id)
                )
            ).scalar()
        return int(value) if value is not None else None

    async def contains(self, trigger_id: str, recipient_id: str) -> bool:
        """Whether a cohort trigger named this recipient."""
        async with self.db.engine.connect() as conn:
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

    async def claim(
        self, trigger_id: str, journey: str, workflow_id: str, after: int, limit: int
    ) -> tuple[list[tuple[str, str, dict[str, JSONValue]]], int, int]:
        """Put the trigger's next page of recipients in a cohort, in one transaction.

        Each member gets a run of the cohort's workflow, written in the same transaction.
        A recipient with an open run of the journey (in another cohort or on their own)
        keeps it and is left out. Claiming the same page for the same cohort again (a
        retried activity) returns the same members. Claims of one journey run one at a
        time (a lock on the journey's name), so two cohorts never both claim a person.

        Returns:
            (members as (recipient id, run id, data), position of the page's last
            recipient or -1 when none was left, how many were left out).

        """
        started = datetime.now(UTC)
        async with self.db.writer.begin() as conn:
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
            for chunk in chunks(ids):
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
            members: list[tuple[str, str, dict[str, JSONValue]]] = []
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
            for chunk in chunks(new_rows, 5000):
                await conn.execute(insert(t.runs), list(chunk))
        return members, int(page[-1].position), len(page) - len(members)
