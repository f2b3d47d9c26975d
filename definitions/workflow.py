"""``JourneyWorkflow``: runs a compiled plan for a cohort of recipients, deterministically.

A recipient triggered alone is a cohort of one. The interpreter lives in
:mod:`definitions.interpreter`; runs started before it existed (no ``cohorts`` patch marker
in their history) replay through :mod:`definitions.legacy`. The workflow never reads YAML
or the store itself.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions import contract as c
    from definitions.interpreter import Cohort
    from definitions.legacy import LegacyRun
    from definitions.runtime import (
        CHANNEL_QUEUES_PATCH,
        COHORTS_PATCH,
        JOURNEY_KEY,
        RECIPIENT_KEY,
        SEARCH_ATTRIBUTES,
        STEP_KEY,
        TRIGGER_KEY,
    )

__all__ = [
    "CHANNEL_QUEUES_PATCH",
    "COHORTS_PATCH",
    "JOURNEY_KEY",
    "RECIPIENT_KEY",
    "SEARCH_ATTRIBUTES",
    "STEP_KEY",
    "TRIGGER_KEY",
    "JourneyWorkflow",
]


@workflow.defn(name=c.WORKFLOW)
class JourneyWorkflow:
    """A journey run for a cohort of recipients (often a cohort of one)."""

    @workflow.init
    def __init__(self, input: c.JourneyInput) -> None:
        self._input = input
        self._impl: Cohort | LegacyRun | None = None

    def _interpreter(self) -> Cohort | LegacyRun:
        """Chosen once, by whichever handler runs first (the patch call is memoised)."""
        if self._impl is None:
            if workflow.patched(COHORTS_PATCH):
                self._impl = Cohort(self._input)
            else:
                self._impl = LegacyRun(self._input)
        return self._impl

    @workflow.run
    async def run(self, input: c.JourneyInput) -> c.RunProgress:
        """Interpret the plan for every recipient, to the end (or their exit)."""
        return await self._interpreter().run()

    @workflow.signal(name=c.EVENT_SIGNAL)
    async def on_event(self, signal: c.EventSignal) -> None:
        """An event a recipient did: it may end a wait_for, or meet the exit goal."""
        impl = self._interpreter()
        if isinstance(impl, LegacyRun):
            await impl.on_event(signal)
            return
        rid = impl.on_event(signal)
        if rid is not None:
            await impl.check_exit([rid], f"after event {signal.name}")

    @workflow.update(name=c.CANCEL_RECIPIENT_UPDATE)
    async def cancel_recipient(self, request: c.MemberRequest) -> c.RunProgress:
        """Take one recipient out of the cohort; returns once nothing is in flight for them."""
        impl = self._interpreter()
        if isinstance(impl, LegacyRun):
            return impl.progress()
        impl.cancel_member(request.recipient_id)
        if request.recipient_id in impl.outstanding and impl.windowed():
            await impl.withdraw([request.recipient_id], "cancelled")
        await workflow.wait_condition(lambda: impl.in_flight[request.recipient_id] <= 0)
        await impl.close([request.recipient_id])
        return impl.member_progress(request.recipient_id)

    @cancel_recipient.validator
    def _known_recipient(self, request: c.MemberRequest) -> None:
        if isinstance(self._impl, Cohort) and request.recipient_id not in self._impl.states:
            raise ValueError(f"{request.recipient_id!r} is not in this cohort")

    @workflow.query(name=c.PROGRESS_QUERY)
    def progress(self) -> c.RunProgress:
        """Where the run is: a cohort of one's timeline, or a cohort's counts."""
        if self._impl is None:
            return c.RunProgress(self._input.plan.journey, self._input.recipient_id, "running")
        return self._impl.progress()

    @workflow.query(name=c.MEMBER_QUERY)
    def member(self, request: c.MemberRequest) -> c.RunProgress:
        """One recipient's position and timeline."""
        if not isinstance(self._impl, Cohort):
            return self.progress()
        if request.recipient_id not in self._impl.states:
            raise ValueError(f"{request.recipient_id!r} is not in this cohort")
        return self._impl.member_progress(request.recipient_id)

    @workflow.query(name=c.COUNTS_QUERY)
    def counts(self) -> c.CohortCounts:
        """How many recipients are in each state, and per step what happened."""
        if not isinstance(self._impl, Cohort):
            progress = self.progress()
            return c.CohortCounts(1, {progress.state: 1})
        return self._impl.counts()
