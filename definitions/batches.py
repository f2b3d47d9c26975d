"""The cohort's activities: conditions and step kinds' questions in batches, closing runs.

Workflow code. A cohort of one uses the single-recipient condition activity (as runs
always did); a larger cohort asks about a thousand recipients per condition activity. A
step kind's :class:`~definitions.steps.base.Question` (a window's delays, …) is asked in
batches for any cohort. Sends are in :mod:`definitions.sends`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions import contract as c
    from definitions.conditions import Condition
    from definitions.plan import Plan
    from definitions.runtime import CHECK_RETRY, TYPED_RESULTS_PATCH
    from definitions.steps.base import Question
    from definitions.steps.send import SendStep

__all__ = ["Batches", "chunks"]

_Bare = TypeVar("_Bare")
_Typed = TypeVar("_Typed")
_Input = TypeVar("_Input")
_Answer = TypeVar("_Answer")

_TYPED = {
    c.EVALUATE: c.EVALUATE_V2,
    c.EVALUATE_MANY: c.EVALUATE_MANY_V2,
    c.CLOSE: c.CLOSE_V2,
}
"""Each activity with a bare result, and its counterpart returning a dataclass."""

_CHECK_CHUNK = 1000
"""Recipients per condition activity."""
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
    unrecorded: dict[str, tuple[SendStep, list[c.SendResult]]]
    after_send: dict[str, tuple[str, str, str, dict[str, Any]]]

    if TYPE_CHECKING:

        def member_progress(self, rid: str) -> c.RunProgress: ...
        def windowed(self) -> bool: ...

    def typed_results(self) -> bool:
        """Whether this run calls the activities that return a dataclass (see the patch)."""
        return workflow.patched(TYPED_RESULTS_PATCH)

    async def check(self, condition: Condition, members: list[str], summary: str) -> list[str]:
        """The members a condition holds for now (one activity per thousand members)."""
        if self.single:
            held = await self._ask(
                c.EVALUATE,
                c.EvaluateInput(condition, members[0]),
                (bool, c.EvaluateResult, lambda r: r.holds),
                timedelta(seconds=30),
                summary,
            )
            return list(members) if held else []
        found = await asyncio.gather(
            *(
                self._ask(
                    c.EVALUATE_MANY,
                    c.EvaluateManyInput(condition, chunk),
                    (list[str], c.EvaluateManyResult, lambda r: r.matched),
                    timedelta(minutes=2),
                    f"{summary} ({len(chunk)} recipients)",
                )
                for chunk in chunks(members, _CHECK_CHUNK)
            )
        )
        return [rid for part in found for rid in part]

    async def ask(
        self,
        question: Question[_Input, _Typed, _Answer],
        request: Callable[[list[str], datetime], _Input],
        members: list[str],
        summary: str,
    ) -> dict[str, _Answer]:
        """Each member's answer to a step kind's question: one activity per batch."""
        now = workflow.now()
        found = await asyncio.gather(
            *(
                self._question(
                    question, request(chunk, now), f"{summary} ({len(chunk)} recipients)"
                )
                for chunk in chunks(members, question.batch)
            )
        )
        answers = [answer for part in found for answer in part]
        return dict(zip(members, answers, strict=True))

    async def _question(
        self, question: Question[_Input, _Typed, _Answer], request: _Input, summary: str
    ) -> list[_Answer]:
        """One batch of a question, in the shape this run's history has (see ``_ask``)."""
        if question.before_typed_results is not None and not self.typed_results():
            question = question.before_typed_results
        result = await workflow.execute_activity(
            question.activity,
            request,
            result_type=question.result,
            start_to_close_timeout=question.timeout,
            retry_policy=CHECK_RETRY,
            summary=summary,
        )
        return question.answers(result)

    async def _ask(
        self,
        name: str,
        request: object,
        shapes: tuple[type[_Bare], type[_Typed], Callable[[_Typed], _Bare]],
        timeout: timedelta,
        summary: str,
    ) -> _Bare:
        """Call a condition activity, in the shape this run's history has.

        Runs with the typed-results patch call ``_TYPED[name]``, which returns a dataclass;
        runs started before call ``name`` itself, whose result is a bare value.

        Args:
            name: the activity with the bare result.
            request: its input.
            shapes: the bare result's type, the typed result's, and the bare value in it.
            timeout: the activity's start-to-close timeout.
            summary: what the Temporal UI shows.

        """
        bare, typed, unwrap = shapes
        if self.typed_results():
            result: _Typed = await workflow.execute_activity(
                _TYPED[name],
                request,
                result_type=typed,
                start_to_close_timeout=timeout,
                retry_policy=CHECK_RETRY,
                summary=summary,
            )
            return unwrap(result)
        value: _Bare = await workflow.execute_activity(
            name,
            request,
            result_type=bare,
            start_to_close_timeout=timeout,
            retry_policy=CHECK_RETRY,
            summary=summary,
        )
        return value

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
        name = _TYPED[c.CLOSE] if self.typed_results() else c.CLOSE
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
