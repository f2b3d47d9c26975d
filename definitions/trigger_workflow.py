"""``TriggerWorkflow``: starts a large trigger's cohorts, a page of recipients at a time.

``trigger()`` stores the recipients and starts this workflow, so it returns in seconds
whatever the number of recipients. Each page is claimed into a cohort by an activity
(recipients already in the journey keep their run), then started as a child
:class:`definitions.workflow.JourneyWorkflow` that outlives this one. The parent continues
as new before its history grows long.

For a journey that never waits long (no ``wait`` over a minute, no ``wait_for`` or
``window``: its cohorts end about as soon as their messages are out), at most
``cohorts_at_once`` cohorts run at a time: the next page is claimed when one of them
finishes, so a worker holds that many cohorts' members whatever the number of recipients.
A journey that waits longer starts every cohort at once, as before: its recipients must
not wait for other cohorts' waits to end. Before it continues as new, the parent waits for
the cohorts it is pacing (the next run cannot wait for them); it continues as new after
100 cohorts, or sooner
when the pages' members (carried in the claims' results and the cohorts' inputs) have made
its history large. Triggers started before ``COHORTS_AT_ONCE_PATCH`` start every cohort at
once and continue as new every 100 cohorts, as they did.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from definitions import contract as c
    from definitions.plan import Plan
    from definitions.runtime import CHECK_RETRY, COHORTS_AT_ONCE_PATCH, search_attributes

__all__ = ["BRIEF_WAIT", "HISTORY_BYTES", "TriggerWorkflow", "brief", "cohort_workflow_id"]

_COHORTS_PER_RUN = 100
"""Cohorts one run of the parent starts before it continues as new."""
BRIEF_WAIT = 60.0
"""The longest ``wait`` (seconds) of a journey whose cohorts are paced (see the module)."""
HISTORY_BYTES = 16_000_000
"""History size past which the parent continues as new before claiming another page: a
page adds two copies of its members (at most ``MAX_INPUT_BYTES`` each) and Temporal ends
a workflow whose history passes 50 MB."""


def cohort_workflow_id(journey: str, trigger_id: str, number: int) -> str:
    """The workflow id of a trigger's n-th cohort (``<journey>/<trigger>/cohort-<n>``)."""
    return f"{journey}/{trigger_id}/cohort-{number}"


@workflow.defn(name=c.TRIGGER_WORKFLOW)
class TriggerWorkflow:
    """One trigger() call with many recipients: pages them into cohort workflows."""

    @workflow.init
    def __init__(self, input: c.TriggerInput) -> None:
        self._input = input
        self._cohorts: list[str] = []
        self._started = input.started
        self._skipped = input.skipped
        self._finished = False

    @workflow.run
    async def run(self, input: c.TriggerInput) -> c.TriggerProgress:
        """Claim and start cohorts until every recipient is in one."""
        bounded = workflow.patched(COHORTS_AT_ONCE_PATCH)
        at_once = input.cohorts_at_once if bounded and brief(input.plan) else 0
        running: list[ChildWorkflowHandle[object, object]] = []
        after, number = input.after, input.next_cohort
        plan = input.plan
        for _ in range(_COHORTS_PER_RUN):
            if bounded and self._started_any(input, number) and _history_large():
                break
            if at_once and len(running) >= at_once:
                running = await _one_finished(running)
            workflow_id = cohort_workflow_id(plan.journey, input.trigger_id, number)
            claim: c.ClaimResult = await workflow.execute_activity(
                c.CLAIM,
                c.ClaimInput(input.trigger_id, plan.journey, workflow_id, after, input.cohort_size),
                result_type=c.ClaimResult,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=CHECK_RETRY,
                summary=f"claim cohort-{number} ({input.cohort_size} at most)",
            )
            if claim.last < 0:
                self._finished = True
                break
            after = claim.last
            self._skipped += claim.skipped
            if claim.members:
                child = await workflow.start_child_workflow(
                    c.WORKFLOW,
                    c.JourneyInput(
                        plan,
                        "",
                        input.trigger_id,
                        input.data,
                        members=claim.members,
                        cohort=f"cohort-{number}",
                        batch_sizes=input.batch_sizes,
                        history_limit=input.history_limit,
                        retry_windows=input.retry_windows,
                    ),
                    id=workflow_id,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    search_attributes=search_attributes(
                        plan.journey, f"cohort-{number}", input.trigger_id
                    ),
                    static_summary=(
                        f"{plan.journey} for {len(claim.members)} recipients "
                        f"(cohort-{number} of {input.trigger_id})"
                    ),
                )
                if at_once:
                    running.append(child)
                self._cohorts.append(workflow_id)
                self._started += len(claim.members)
                workflow.set_current_details(
                    f"{self._started} recipients started in {number} cohorts"
                    + (f", {self._skipped} already in the journey" if self._skipped else "")
                )
            number += 1
        if self._finished:
            return self.progress()
        while running:  # the next run could not wait for them: it would start too many
            running = await _one_finished(running)
        workflow.continue_as_new(
            c.TriggerInput(
                plan,
                input.trigger_id,
                input.data,
                input.cohort_size,
                input.batch_sizes,
                input.history_limit,
                next_cohort=number,
                after=after,
                started=self._started,
                skipped=self._skipped,
                retry_windows=input.retry_windows,
                cohorts_at_once=input.cohorts_at_once,
            )
        )

    @staticmethod
    def _started_any(input: c.TriggerInput, number: int) -> bool:
        """Whether this run has claimed a page yet (each run claims one at least)."""
        return number > input.next_cohort

    @workflow.query(name=c.PROGRESS_QUERY)
    def progress(self) -> c.TriggerProgress:
        """Cohorts started so far, and how many recipients are in them."""
        return c.TriggerProgress(
            list(self._cohorts), self._started, self._skipped, finished=self._finished
        )


def brief(plan: Plan) -> bool:
    """Whether a journey's cohorts end about as soon as their messages are out.

    Only sends, branches, splits, exits and waits up to :data:`BRIEF_WAIT` (any other
    kind, a step kind added later included, may hold its recipients for long).
    """
    for step in plan.steps.values():
        if step.kind == "wait" and getattr(step, "seconds", BRIEF_WAIT + 1) <= BRIEF_WAIT:
            continue
        if step.kind not in ("send", "branch", "split", "exit"):
            return False
    return True


def _history_large() -> bool:
    """Whether the parent's history is large enough that it should continue as new."""
    return workflow.info().get_current_history_size() >= HISTORY_BYTES


async def _one_finished(
    running: list[ChildWorkflowHandle[object, object]],
) -> list[ChildWorkflowHandle[object, object]]:
    """Wait until one of the running cohorts ends (however it ends); those still running."""
    await workflow.wait(running, return_when="FIRST_COMPLETED")
    for child in running:
        if child.done() and not child.cancelled():
            child.exception()  # a failed cohort is the cohort's to report, not the trigger's
    return [child for child in running if not child.done()]
