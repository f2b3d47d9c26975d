"""The runs of the client: trigger a journey, read a run's or a trigger's status, cancel.

A trigger up to ``[cohorts] threshold`` recipients starts a run each here; a larger one
(or one asked to) goes to :class:`~journeys.client.cohort_triggers.CohortTriggers`, which
is also asked about the status and cancellation of those triggers and of their recipients.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from definitions import contract as c
from definitions.errors import InvalidRequestError, UnknownRunError
from definitions.plan import Plan
from definitions.runtime import search_attributes
from definitions.values import JSONValue, require_id
from journeys.client.cohort_triggers import CohortTriggers
from journeys.client.context import ClientContext
from journeys.client.workflows import STATES, run_status, workflow_id_for
from journeys.models import RunHandle, RunStatus, TriggerHandle, TriggerStatus
from journeys.recipients import (
    check_data,
    check_input_size,
    parse_per_recipient_data,
    parse_recipients,
)
from journeys.store import RunRecord, TriggerRecord

__all__ = ["LOOKUP_LIMIT", "Runs"]

_STARTS_AT_ONCE = 32
_QUERY_TIMEOUT = timedelta(seconds=10)
LOOKUP_LIMIT = 1000
"""The longest run, trigger or message id looked up (message ids run to about 700)."""
_RETRYING_SHOWN = 50
"""Messages of a run looked at for those waiting for a retry (a run sends a few at a time)."""


class Runs:
    """Journey runs: start them, read their status, cancel them, send them events.

    Args:
        context: the client's connections and settings.
        cohort_triggers: where triggers run as cohorts are started, read and cancelled.

    """

    def __init__(self, context: ClientContext, cohort_triggers: CohortTriggers) -> None:
        self.context = context
        self.cohort_triggers = cohort_triggers

    async def trigger(
        self,
        journey: str,
        recipients: Sequence[str | Mapping[str, object]],
        *,
        data: Mapping[str, object] | None = None,
        idempotency_key: str | None = None,
        per_recipient_data: Mapping[str, Mapping[str, object]] | None = None,
        cohorts: bool | None = None,
    ) -> TriggerHandle:
        """Start a journey for recipients.

        Up to ``[cohorts] threshold`` recipients (50 by default) get a run each, and the
        handle lists them. More run as cohorts: the recipients are stored, the trigger's
        workflow starts them in cohort workflows of ``[cohorts] size`` a page at a time,
        and this returns at once with the trigger id (``status(trigger_id)`` shows the
        progress). Either way a recipient moves through the journey exactly as alone.

        Everything is checked before anything starts. A recipient already in this journey
        keeps their run (its handle says ``started=False``; a cohort counts them as
        ``skipped``). With an ``idempotency_key``, calling again with the same key starts
        nothing new and returns the same trigger.

        Args:
            journey: the journey's name (its YAML file name).
            recipients: ids, or mappings with an ``id`` and profile fields to upsert.
            data: values the journey's templates see as ``trigger.*``.
            idempotency_key: makes the whole call safe to retry.
            per_recipient_data: values for one recipient each, over ``data``.
            cohorts: True to run as cohorts, False for a run each, whatever the number.

        Raises:
            UnknownJourneyError: no such journey (the error lists those that exist).
            DefinitionError: the journey's files are wrong.
            InvalidRecipientError: a recipient or a recipient's data is unusable.
            InvalidRequestError: the data, the idempotency key or ``cohorts`` is unusable,
                or the runs' inputs would be too large for Temporal.

        """
        if not isinstance(journey, str):
            raise InvalidRequestError(
                [f"journey: expected a journey's name, found {type(journey).__name__}"]
            )
        plan = self.context.library.compile(journey)
        people = parse_recipients(recipients)
        payload = check_data(data)
        personal = parse_per_recipient_data(per_recipient_data, (rid for rid, _ in people))
        if idempotency_key is not None:
            require_id(idempotency_key, "idempotency_key")
        if cohorts is not None and not isinstance(cohorts, bool):
            raise InvalidRequestError([f"cohorts: expected True, False or None, found {cohorts!r}"])
        as_cohorts = (
            cohorts if cohorts is not None else len(people) > self.context.cohorts.threshold
        )
        check_input_size(
            plan, payload, people, personal, self.context.cohorts.size if as_cohorts else None
        )
        # Everything is checked: from here on the trigger is written and started.
        record = TriggerRecord(
            id=f"trg_{secrets.token_hex(8)}",
            journey=journey,
            data=payload,
            created_at=datetime.now(UTC),
            idempotency_key=idempotency_key,
        )
        record = await self.context.store.runs.save_trigger(record)
        await self.context.store.profiles.upsert(people)
        if as_cohorts:
            await self.cohort_triggers.start(
                plan,
                record,
                payload,
                [(rid, personal.get(rid)) for rid, _ in people],
            )
            return TriggerHandle(record.id, journey, [], recipients=len(people), cohorts=True)
        ours = {r.recipient_id: r for r in await self.context.store.runs.of_trigger(record.id)}
        gate = asyncio.Semaphore(_STARTS_AT_ONCE)

        async def start(recipient_id: str) -> RunHandle:
            if recipient_id in ours:
                run = ours[recipient_id]
                return RunHandle(run.run_id, run.workflow_id, journey, recipient_id)
            async with gate:
                return await self.start(
                    plan, record, recipient_id, {**payload, **personal.get(recipient_id, {})}
                )

        runs = await asyncio.gather(*(start(rid) for rid, _ in people))
        return TriggerHandle(record.id, journey, list(runs), recipients=len(people))

    async def start(
        self,
        plan: Plan,
        trigger: TriggerRecord,
        recipient_id: str,
        data: dict[str, JSONValue],
        event: Mapping[str, JSONValue] | None = None,
    ) -> RunHandle:
        """Start one recipient's run of a trigger (a recipient already in it keeps theirs)."""
        workflow_id = workflow_id_for(plan.journey, recipient_id)
        member = await self.context.store.runs.open_in(plan.journey, recipient_id)
        if member is not None and member[0] != workflow_id:  # in a cohort of this journey
            return RunHandle(member[1], member[0], plan.journey, recipient_id, started=False)
        attributes = search_attributes(plan.journey, recipient_id, trigger.id)
        try:
            handle = await self.context.temporal.start_workflow(
                c.WORKFLOW,
                c.JourneyInput(
                    plan,
                    recipient_id,
                    trigger.id,
                    data,
                    dict(event or {}),
                    retry_windows=dict(self.context.retry_windows),
                ),
                id=workflow_id,
                task_queue=self.context.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=attributes,
                static_summary=f"{plan.journey} for {recipient_id}",
                static_details=plan.description or None,
            )
        except WorkflowAlreadyStartedError:
            existing = await self.context.temporal.get_workflow_handle(workflow_id).describe()
            return RunHandle(
                existing.run_id, workflow_id, plan.journey, recipient_id, started=False
            )
        run_id = handle.result_run_id or handle.run_id or ""
        await self.context.store.runs.add(
            RunRecord(
                workflow_id, run_id, plan.journey, recipient_id, trigger.id, datetime.now(UTC)
            )
        )
        return RunHandle(run_id, workflow_id, plan.journey, recipient_id)

    async def status(
        self, run_or_trigger_id: str, *, recipient: str | None = None
    ) -> RunStatus | TriggerStatus:
        """The status of a run (by run id or workflow id) or of a whole trigger.

        A cohort trigger's status counts its recipients by state and per step; with
        ``recipient``, the status of that one recipient of the trigger instead.

        Raises:
            UnknownRunError: no run or trigger has that id, or the recipient is not in it.

        """
        require_id(run_or_trigger_id, "id", limit=LOOKUP_LIMIT)
        if recipient is not None:
            require_id(recipient, "recipient")
        trigger = await self.context.store.runs.get_trigger(run_or_trigger_id)
        if trigger is not None and recipient is not None:
            found = await self.context.store.runs.of_member(trigger.id, recipient)
            if not found and await self.context.store.members.contains(trigger.id, recipient):
                # Named by the trigger, not yet put in a cohort by its workflow.
                return RunStatus(
                    "", "", trigger.journey, recipient, "pending", trigger_id=trigger.id
                )
            if not found:
                raise UnknownRunError(f"{recipient!r} has no run in trigger {trigger.id}")
            return await self.read_status(await self.find(found[-1][1]))
        if trigger is not None:
            size = await self.context.store.members.count(trigger.id)
            if size is not None:
                return await self.cohort_triggers.status(trigger, size)
            runs = await self.context.store.runs.of_trigger(trigger.id)
            statuses = await asyncio.gather(*(self.read_status(r) for r in runs))
            return TriggerStatus(trigger.id, trigger.journey, list(statuses))
        return await self.read_status(await self.find(run_or_trigger_id))

    async def cancel(
        self, run_or_trigger_id: str, *, wait: timedelta = timedelta(seconds=90)
    ) -> RunStatus | TriggerStatus:
        """Cancel a run, or every running run of a trigger, and wait until they stop.

        A run stops at once, even in the middle of a wait or while a message waits for a
        retry (the message is withdrawn); a message being handed to a provider at that
        instant finishes, and nothing is sent after cancel() returns. Cancelling a run
        that has ended changes nothing.

        Args:
            run_or_trigger_id: a run id, a workflow id or a trigger id.
            wait: how long to wait for the runs to stop — longer than a provider's answer
                to a message handed over at that instant can take.

        Raises:
            UnknownRunError: no run or trigger has that id.

        """
        require_id(run_or_trigger_id, "id", limit=LOOKUP_LIMIT)
        trigger = await self.context.store.runs.get_trigger(run_or_trigger_id)
        if trigger is not None and await self.context.store.members.count(trigger.id) is not None:
            await self.cohort_triggers.cancel(trigger, wait)
            return await self.status(run_or_trigger_id)
        runs = (
            await self.context.store.runs.of_trigger(trigger.id)
            if trigger
            else [await self.find(run_or_trigger_id)]
        )
        await asyncio.gather(*(self._cancel_run(r, wait) for r in runs))
        return await self.status(run_or_trigger_id)

    async def _cancel_run(self, run: RunRecord, wait: timedelta) -> None:
        if run.member:
            await self.cohort_triggers.cancel_member(run)
            return
        handle = self.context.temporal.get_workflow_handle(run.workflow_id, run_id=run.run_id)
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return
        await handle.cancel()
        with contextlib.suppress(WorkflowFailureError, TimeoutError):
            await asyncio.wait_for(handle.result(), wait.total_seconds())
        await self.context.store.runs.mark_closed(run.workflow_id, run.run_id)

    async def find(self, run_id: str) -> RunRecord:
        """A run by run id or workflow id.

        Raises:
            UnknownRunError: no run has that id.

        """
        found = await self.context.store.runs.get(run_id) or next(
            iter(await self.context.store.runs.find(run_id)), None
        )
        if found is None:
            raise UnknownRunError(
                f"unknown run or trigger {run_id!r}: expected a run id, a "
                "workflow id (<journey>/<recipient>) or a trigger id (trg_…)"
            )
        return found

    async def read_status(self, run: RunRecord) -> RunStatus:
        """A run's status, with the messages waiting for a retry while it runs."""
        status = await (
            self.cohort_triggers.member_status(run) if run.member else self._own_status(run)
        )
        if status.state != "running":
            return status
        logged = await self.context.store.messages.find(
            workflow_id=run.workflow_id, run_id=run.run_id, limit=_RETRYING_SHOWN
        )
        retrying = [m for m in logged if m.state == "queued"]
        return dataclasses.replace(status, retrying=retrying) if retrying else status

    async def _own_status(self, run: RunRecord) -> RunStatus:
        handle: WorkflowHandle[Any, c.RunProgress] = self.context.temporal.get_workflow_handle(
            run.workflow_id, run_id=run.run_id, result_type=c.RunProgress
        )
        description = await handle.describe()
        state = STATES.get(description.status, "running") if description.status else "running"
        progress: c.RunProgress | None = None
        if state == "completed":
            progress = await handle.result()
            state = progress.state
        else:
            try:
                progress = await handle.query(
                    c.PROGRESS_QUERY, result_type=c.RunProgress, rpc_timeout=_QUERY_TIMEOUT
                )
            except (RPCError, WorkflowQueryFailedError):
                progress = None  # no worker to answer: the state is still known
        if state != "running" and not run.closed:
            await self.context.store.runs.mark_closed(run.workflow_id, run.run_id)
        return run_status(
            run,
            state,
            progress,
            started_at=description.start_time,
            closed_at=description.close_time,
        )

    async def signal_runs(
        self,
        recipient_id: str,
        event: str,
        data: dict[str, JSONValue],
        open_runs: Sequence[RunRecord] | None = None,
    ) -> int:
        """Send an event to the recipient's running journeys; returns how many it reached.

        ``open_runs``: the recipient's runs not known to be closed, when the caller has
        read them already (for many people at once); otherwise they are read here.
        """
        reached = 0
        if open_runs is None:
            open_runs = await self.context.store.runs.open_of(recipient_id)
        for run in open_runs:
            handle = self.context.temporal.get_workflow_handle(
                run.workflow_id, run_id=None if run.member else run.run_id
            )
            try:
                await handle.signal(c.EVENT_SIGNAL, c.EventSignal(event, data, recipient_id))
                reached += 1
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                if not run.member:  # a cohort closes its members' runs itself
                    await self.context.store.runs.mark_closed(run.workflow_id, run.run_id)
        return reached
