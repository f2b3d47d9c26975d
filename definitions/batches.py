"""The cohort's activities: conditions and windows in batches, and closing runs.

Workflow code. A cohort of one uses the single-recipient activities (as runs always did);
a larger cohort asks about a thousand recipients per condition or window activity. Sends
are in :mod:`definitions.sends`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from definitions import contract as c
    from definitions.conditions import Condition
    from definitions.plan import Plan
    from definitions.runtime import CHECK_RETRY, TYPED_RESULTS_PATCH
    from definitions.steps.window import WindowStep

__all__ = ["Batches", "chunks"]

_CHECK_CHUNK = 1000
"""Recipients per condition or window activity."""
_CLOSE_CHUNK = 200
"""Finished runs per close activity (each carries its timeline)."""


def chunks(items: list[str], size: int) -> list[list[str]]:
    """Items in lists of ``size`` (the last one shorter)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


class Batches:
    """Mixed into :class:`definitions.interpreter.Cohort`: its calls to activities."""

    input: c.JourneyInput
    plan: Plan
    single: bool
    states: dict[str, c.MemberState]
    closed: set[str]
    in_flight: Counter[str]
    unrecorded: dict[str, Any]
    after_send: dict[str, Any]

    if TYPE_CHECKING:

        def member_progress(self, rid: str) -> c.RunProgress: ...
        def windowed(self) -> bool: ...

    def typed_results(self) -> bool:
        """Whether this run calls the activities that return a dataclass (see the patch)."""
        return workflow.patched(TYPED_RESULTS_PATCH)

    async def check(self, condition: Condition, members: list[str], summary: str) -> list[str]:
        """The members a condition holds for now (one activity per thousand members)."""
        if self.single:
            return list(members) if await self._holds(condition, members[0], summary) else []
        typed = self.typed_results()
        found = await asyncio.gather(
            *(
                self._matching(condition, chunk, f"{summary} ({len(chunk)} recipients)", typed)
                for chunk in chunks(members, _CHECK_CHUNK)
            )
        )
        return [rid for part in found for rid in part]

    async def _holds(self, condition: Condition, rid: str, summary: str) -> bool:
        """Whether a condition holds for one member (a cohort of one)."""
        request = c.EvaluateInput(condition, rid)
        options = _check_options(timedelta(seconds=30), summary)
        if self.typed_results():
            result: c.EvaluateResult = await workflow.execute_activity(
                c.EVALUATE_V2, request, result_type=c.EvaluateResult, **options
            )
            return result.holds
        held: bool = await workflow.execute_activity(
            c.EVALUATE, request, result_type=bool, **options
        )
        return held

    async def _matching(
        self, condition: Condition, chunk: list[str], summary: str, typed: bool
    ) -> list[str]:
        """The members of one chunk a condition holds for."""
        request = c.EvaluateManyInput(condition, chunk)
        options = _check_options(timedelta(minutes=2), summary)
        if typed:
            result: c.EvaluateManyResult = await workflow.execute_activity(
                c.EVALUATE_MANY_V2, request, result_type=c.EvaluateManyResult, **options
            )
            return result.matched
        matched: list[str] = await workflow.execute_activity(
            c.EVALUATE_MANY, request, result_type=list[str], **options
        )
        return matched

    async def window_delays(self, step: WindowStep, members: list[str]) -> list[float]:
        """Seconds until the window opens for each member."""
        now = workflow.now()
        typed = self.typed_results()
        found = await asyncio.gather(
            *(
                self._delays(
                    c.WindowManyInput(step, chunk, now),
                    f"{step.id}: when does {step.label} open? ({len(chunk)} recipients)",
                    typed,
                )
                for chunk in chunks(members, _CHECK_CHUNK)
            )
        )
        return [seconds for part in found for seconds in part]

    async def _delays(self, request: c.WindowManyInput, summary: str, typed: bool) -> list[float]:
        """Seconds until the window opens for each member of one chunk."""
        options = _check_options(timedelta(minutes=2), summary)
        if typed:
            result: c.WindowManyResult = await workflow.execute_activity(
                c.WINDOW_MANY_V2, request, result_type=c.WindowManyResult, **options
            )
            return result.seconds
        delays: list[float] = await workflow.execute_activity(
            c.WINDOW_MANY, request, result_type=list[float], **options
        )
        return delays

    def _closable(self, rid: str) -> bool:
        """An ended member whose timeline is complete (their send step written)."""
        if rid in self.closed or self.states[rid].state == "running":
            return False
        unfinished = self.in_flight[rid] > 0 or rid in self.unrecorded or rid in self.after_send
        # Runs started before retry windows closed such members at once, as they were.
        return not unfinished or not self.windowed()

    async def close(self, members: Iterable[str]) -> None:
        """Tell the store which members have ended, with their timelines."""
        ended = [rid for rid in members if self._closable(rid)]
        if not ended:
            return
        self.closed.update(ended)
        workflow_id = workflow.info().workflow_id
        name = c.CLOSE_V2 if self.typed_results() else c.CLOSE
        await asyncio.gather(
            *(
                workflow.execute_activity(
                    name,
                    c.CloseInput(
                        workflow_id,
                        [self.member_progress(rid) for rid in chunk],
                        [self.states[rid].member.run_id for rid in chunk],
                    ),
                    result_type=c.CloseResult if name == c.CLOSE_V2 else None,
                    start_to_close_timeout=timedelta(minutes=1),
                    retry_policy=CHECK_RETRY,
                    summary=f"{len(chunk)} recipient(s) done",
                )
                for chunk in chunks(ended, _CLOSE_CHUNK)
            )
        )


class _CheckOptions(TypedDict):
    """The options of every condition and window activity."""

    start_to_close_timeout: timedelta
    retry_policy: RetryPolicy
    summary: str


def _check_options(timeout: timedelta, summary: str) -> _CheckOptions:
    return {"start_to_close_timeout": timeout, "retry_policy": CHECK_RETRY, "summary": summary}
