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
from typing import TYPE_CHECKING, Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions import contract as c
    from definitions.plan import Plan
    from definitions.runtime import CHECK_RETRY
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
    """Mixed into :class:`definitions.cohort.Cohort`: its calls to activities."""

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

    async def check(self, condition: Any, members: list[str], summary: str) -> list[str]:
        """The members a condition holds for now (one activity per thousand members)."""
        if self.single:
            held: bool = await workflow.execute_activity(
                c.EVALUATE,
                c.EvaluateInput(condition, members[0]),
                result_type=bool,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=CHECK_RETRY,
                summary=summary,
            )
            return list(members) if held else []
        found = await asyncio.gather(
            *(
                workflow.execute_activity(
                    c.EVALUATE_MANY,
                    c.EvaluateManyInput(condition, chunk),
                    result_type=list[str],
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=CHECK_RETRY,
                    summary=f"{summary} ({len(chunk)} recipients)",
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
                workflow.execute_activity(
                    c.WINDOW_MANY,
                    c.WindowManyInput(step, chunk, now),
                    result_type=list[float],
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=CHECK_RETRY,
                    summary=f"{step.id}: when does {step.label} open? ({len(chunk)} recipients)",
                )
                for chunk in chunks(members, _CHECK_CHUNK)
            )
        )
        return [seconds for part in found for seconds in part]

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
        await asyncio.gather(
            *(
                workflow.execute_activity(
                    c.CLOSE,
                    c.CloseInput(
                        workflow_id,
                        [self.member_progress(rid) for rid in chunk],
                        [self.states[rid].member.run_id for rid in chunk],
                    ),
                    start_to_close_timeout=timedelta(minutes=1),
                    retry_policy=CHECK_RETRY,
                    summary=f"{len(chunk)} recipient(s) done",
                )
                for chunk in chunks(ended, _CLOSE_CHUNK)
            )
        )
