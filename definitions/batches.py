"""The cohort's activities: conditions and windows in batches, and closing runs.

Workflow code. A cohort of one uses the single-recipient activities (as runs always did);
a larger cohort asks about a thousand recipients per condition or window activity. Sends
are in :mod:`definitions.sends`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions import contract as c
    from definitions.conditions import Condition
    from definitions.plan import Plan
    from definitions.runtime import CHECK_RETRY, TYPED_RESULTS_PATCH
    from definitions.steps.send import SendStep
    from definitions.steps.window import WindowStep

__all__ = ["Batches", "chunks"]

_Bare = TypeVar("_Bare")
_Typed = TypeVar("_Typed")

_TYPED = {
    c.EVALUATE: c.EVALUATE_V2,
    c.EVALUATE_MANY: c.EVALUATE_MANY_V2,
    c.WINDOW_MANY: c.WINDOW_MANY_V2,
    c.CLOSE: c.CLOSE_V2,
}
"""Each activity with a bare result, and its counterpart returning a dataclass."""

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

    async def window_delays(self, step: WindowStep, members: list[str]) -> list[float]:
        """Seconds until the window opens for each member."""
        now = workflow.now()
        found = await asyncio.gather(
            *(
                self._ask(
                    c.WINDOW_MANY,
                    c.WindowManyInput(step, chunk, now),
                    (list[float], c.WindowManyResult, lambda r: r.seconds),
                    timedelta(minutes=2),
                    f"{step.id}: when does {step.label} open? ({len(chunk)} recipients)",
                )
                for chunk in chunks(members, _CHECK_CHUNK)
            )
        )
        return [seconds for part in found for seconds in part]

    async def _ask(
        self,
        name: str,
        request: object,
        shapes: tuple[type[_Bare], type[_Typed], Callable[[_Typed], _Bare]],
        timeout: timedelta,
        summary: str,
    ) -> _Bare:
        """Call a condition or window activity, in the shape this run's history has.

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
