"""The cohort triggers of the client: start a large trigger, read its status, cancel it.

A trigger above ``[cohorts] threshold`` recipients keeps them in the store
(``store.members``) and starts one trigger workflow, which pages them into cohort
workflows. One recipient of a cohort can be read and cancelled on their own too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timedelta

from pydantic import TypeAdapter
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from definitions import contract as c
from definitions.contract import progress_json
from definitions.plan import Plan
from definitions.runtime import search_attributes
from definitions.values import JSONValue
from journeys.client.context import ClientContext
from journeys.client.workflows import STATES, run_status, trigger_workflow_id
from journeys.models import CohortStatus, RunStatus, TriggerStatus
from journeys.store import RunRecord, TriggerRecord

__all__ = ["CohortTriggers"]

_QUERY_TIMEOUT = timedelta(seconds=10)
_START_WAIT = 30.0
"""Seconds a cancel waits for the cohort a recipient was just claimed into to start."""
_PROGRESS = TypeAdapter(c.RunProgress)


class CohortTriggers:
    """Triggers run as cohorts: their start, their status and their cancellation.

    Args:
        context: the client's connections and settings.

    """

    def __init__(self, context: ClientContext) -> None:
        self.context = context

    async def start(
        self,
        plan: Plan,
        record: TriggerRecord,
        payload: dict[str, JSONValue],
        recipients: list[tuple[str, dict[str, JSONValue] | None]],
    ) -> None:
        """Keep the recipients and start the trigger's workflow (safe to repeat)."""
        await self.context.store.members.add(record.id, recipients)
        await self.context.temporal.start_workflow(
            c.TRIGGER_WORKFLOW,
            c.TriggerInput(
                plan,
                record.id,
                payload,
                cohort_size=self.context.cohorts.size,
                batch_sizes=dict(self.context.batch_sizes),
                history_limit=self.context.cohorts.history_limit,
                retry_windows=dict(self.context.retry_windows),
                cohorts_at_once=self.context.cohorts.at_once,
            ),
            id=trigger_workflow_id(plan.journey, record.id),
            task_queue=self.context.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=search_attributes(
                plan.journey, f"{len(recipients)} recipients", record.id
            ),
            static_summary=f"{plan.journey} for {len(recipients)} recipients, in cohorts",
            static_details=plan.description or None,
        )

    async def status(self, trigger: TriggerRecord, size: int) -> TriggerStatus:
        """A cohort trigger's status: its recipients counted by state and per step."""
        parent = self.context.temporal.get_workflow_handle(
            trigger_workflow_id(trigger.journey, trigger.id), result_type=c.TriggerProgress
        )
        described = await parent.describe()
        starting = described.status in (
            WorkflowExecutionStatus.RUNNING,
            WorkflowExecutionStatus.CONTINUED_AS_NEW,
        )
        cohorts = await asyncio.gather(
            *(
                self._cohort_status(wf)
                for wf in await self.context.store.runs.cohorts_of(trigger.id)
            )
        )
        progress: c.TriggerProgress | None = None
        if not starting and described.status == WorkflowExecutionStatus.COMPLETED:
            progress = await parent.result()
        else:
            with contextlib.suppress(RPCError, WorkflowQueryFailedError):
                progress = await parent.query(
                    c.PROGRESS_QUERY, result_type=c.TriggerProgress, rpc_timeout=_QUERY_TIMEOUT
                )
        return TriggerStatus(
            trigger.id,
            trigger.journey,
            [],
            recipients=size,
            started=sum(cohort.members for cohort in cohorts),
            skipped=progress.skipped if progress else 0,
            starting=starting,
            cohorts=list(cohorts),
        )

    async def _cohort_status(self, workflow_id: str) -> CohortStatus:
        handle = self.context.temporal.get_workflow_handle(workflow_id, result_type=c.RunProgress)
        try:
            described = await handle.describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            # Claimed by the trigger's workflow, which has not started it yet.
            members = await self.context.store.runs.of_workflow(workflow_id)
            return CohortStatus(workflow_id, "running", len(members), {"pending": len(members)})
        state = STATES.get(described.status, "running") if described.status else "running"
        counts: c.CohortCounts | None = None
        if state == "completed":
            counts = (await handle.result()).counts
        else:
            with contextlib.suppress(RPCError, WorkflowQueryFailedError):
                counts = await handle.query(
                    c.COUNTS_QUERY, result_type=c.CohortCounts, rpc_timeout=_QUERY_TIMEOUT
                )
        if counts is None:
            members = await self.context.store.runs.of_workflow(workflow_id)
            return CohortStatus(workflow_id, state, len(members), {state: len(members)})
        return CohortStatus(workflow_id, state, counts.members, counts.states, counts.steps)

    async def member_status(self, run: RunRecord) -> RunStatus:
        """One recipient of a cohort: from the store once ended, else from the workflow."""
        progress: c.RunProgress | None = None
        if run.outcome is not None:
            progress = _PROGRESS.validate_python(run.outcome)
        state = progress.state if progress else "running"
        closed_at: datetime | None = None
        if progress is None:
            handle = self.context.temporal.get_workflow_handle(run.workflow_id)
            try:
                described = await handle.describe()
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                # Claimed by the trigger's workflow, which has not started the cohort yet.
                return run_status(run, "pending", None, started_at=run.started_at, closed_at=None)
            state = STATES.get(described.status, "running") if described.status else "running"
            closed_at = described.close_time
            with contextlib.suppress(RPCError, WorkflowQueryFailedError):
                progress = await handle.query(
                    c.MEMBER_QUERY,
                    c.MemberRequest(run.recipient_id),
                    result_type=c.RunProgress,
                    rpc_timeout=_QUERY_TIMEOUT,
                )
            if progress is not None and state == "running":
                state = progress.state
        return run_status(run, state, progress, started_at=run.started_at, closed_at=closed_at)

    async def cancel_member(self, run: RunRecord) -> None:
        """Take one recipient out of their cohort; returns once nothing is in flight for them."""
        handle = self.context.temporal.get_workflow_handle(run.workflow_id)
        deadline = time.monotonic() + _START_WAIT
        while True:
            try:
                await handle.execute_update(
                    c.CANCEL_RECIPIENT_UPDATE,
                    c.MemberRequest(run.recipient_id),
                    result_type=c.RunProgress,
                )
            except RPCError as exc:
                # Claimed into a cohort the trigger's workflow is about to start: wait for
                # it, or the recipient would run after this returned.
                if exc.status == RPCStatusCode.NOT_FOUND and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                    continue
            except WorkflowUpdateFailedError:
                pass
            break
        # The workflow records the recipient's outcome itself; if it could not (it had
        # ended, or no worker answered), the run is still marked ended here.
        found = await self.context.store.runs.find(run.workflow_id, run.run_id)
        if found and found[0].outcome is None:
            cancelled = c.RunProgress(run.journey, run.recipient_id, "cancelled")
            await self.context.store.runs.close(
                run.workflow_id, [(run.run_id, progress_json(cancelled))]
            )

    async def cancel(self, trigger: TriggerRecord, wait: timedelta) -> None:
        """Stop the trigger's workflow starting cohorts, then cancel every cohort."""
        parent = self.context.temporal.get_workflow_handle(
            trigger_workflow_id(trigger.journey, trigger.id)
        )
        await _cancel_and_wait(parent, wait)
        cohorts = await self.context.store.runs.cohorts_of(trigger.id)
        await asyncio.gather(
            *(
                _cancel_and_wait(self.context.temporal.get_workflow_handle(wf), wait)
                for wf in cohorts
            )
        )
        await self.context.store.runs.close_cohorts_of(trigger.id)


async def _cancel_and_wait(handle: WorkflowHandle[object, object], wait: timedelta) -> None:
    try:
        described = await handle.describe()
    except RPCError:
        return
    if described.status != WorkflowExecutionStatus.RUNNING:
        return
    await handle.cancel()
    with contextlib.suppress(WorkflowFailureError, TimeoutError):
        await asyncio.wait_for(handle.result(), wait.total_seconds())
