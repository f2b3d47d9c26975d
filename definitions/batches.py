"""The cohort's activities: conditions, windows and sends in batches, and closing runs.

Workflow code. A cohort of one uses the single-recipient activities (as runs always did);
a larger cohort asks about a thousand recipients per condition or window activity and sends
to a channel's ``batch_size`` per send activity.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from definitions import contract as c
    from definitions.plan import Plan
    from definitions.runtime import (
        CHECK_RETRY,
        SEND_ATTEMPTS,
        SEND_RETRY,
        channel_queue,
        send_entry,
    )
    from definitions.steps.send import SendStep
    from definitions.steps.window import WindowStep

if TYPE_CHECKING:
    from temporalio.workflow import ActivityHandle

__all__ = ["BATCH_HEARTBEAT", "DEFAULT_BATCH", "Batches"]

DEFAULT_BATCH = 250
"""Recipients per send activity when the channel's batch size is not configured."""
BATCH_HEARTBEAT = timedelta(seconds=10)
"""A batch of sends whose worker stops heartbeating this long is retried elsewhere."""
_CHECK_CHUNK = 1000
"""Recipients per condition or window activity."""
_CLOSE_CHUNK = 200
"""Finished runs per close activity (each carries its timeline)."""


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class Batches:
    """Mixed into :class:`definitions.cohort.Cohort`: its calls to activities."""

    input: c.JourneyInput
    plan: Plan
    single: bool
    states: dict[str, c.MemberState]
    closed: set[str]
    in_flight: Counter[str]
    after_send: dict[str, tuple[str, str, str, dict[str, Any]]]

    if TYPE_CHECKING:

        def active(self, members: Iterable[str]) -> list[str]: ...
        def run_info(self, rid: str) -> c.RunInfo: ...
        def record(
            self, step: str, kind: str, outcome: str, members: Iterable[str], **detail: Any
        ) -> None: ...
        def member_progress(self, rid: str) -> c.RunProgress: ...

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
                for chunk in _chunks(members, _CHECK_CHUNK)
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
                for chunk in _chunks(members, _CHECK_CHUNK)
            )
        )
        return [seconds for part in found for seconds in part]

    async def send(self, step: SendStep, members: list[str]) -> None:
        """Deliver a send step's message, trying its channels in order until one sends.

        The members a channel did not reach move on to the next channel together. Each
        batch is shielded from cancellation: a batch being handed to a provider when the
        run (or a member) is cancelled finishes and is recorded, and nothing is sent after.
        """
        attempts: dict[str, list[c.SendResult]] = {rid: [] for rid in members}
        pending = list(members)
        try:
            for channel in step.channels:
                pending = self.active(pending)
                if not pending:
                    break
                await self._send_on(step, channel, pending, attempts)
                pending = [rid for rid in pending if attempts[rid][-1].state != "sent"]
        finally:
            for rid, tried in attempts.items():
                if tried:
                    self._record_send(step, rid, tried)
                if rid in self.after_send and self.in_flight[rid] <= 0:
                    at, kind, outcome, detail = self.after_send.pop(rid)
                    self.record(at, kind, outcome, [rid], **detail)

    async def _send_on(
        self,
        step: SendStep,
        channel: str,
        members: list[str],
        attempts: dict[str, list[c.SendResult]],
    ) -> None:
        """Send on one channel in batches, adding each member's result to ``attempts``.

        The results are added even when the run is cancelled meanwhile: batches finish first.
        """
        size = max(1, self.input.batch_sizes.get(channel, DEFAULT_BATCH))
        template = self.plan.templates.get(step.template) if step.template else None
        queue = channel_queue(workflow.info().task_queue, channel)
        label = f"{step.id}: send {step.template or 'payload'} via {channel}"
        chunks = _chunks(members, size)
        handles: list[ActivityHandle[Any]] = []
        for chunk in chunks:
            self.in_flight.update(chunk)
            if self.single:
                rid = chunk[0]
                handles.append(
                    workflow.start_activity(
                        c.SEND,
                        c.SendInput(
                            self.run_info(rid),
                            step,
                            template,
                            self.input.data,
                            self.input.event,
                            channel=channel,
                        ),
                        result_type=c.SendResult,
                        task_queue=queue,
                        start_to_close_timeout=timedelta(seconds=60),
                        retry_policy=SEND_RETRY,
                        summary=label,
                    )
                )
                continue
            handles.append(
                workflow.start_activity(
                    c.SEND_MANY,
                    c.SendManyInput(
                        step,
                        channel,
                        [self.run_info(rid) for rid in chunk],
                        template,
                        [{**self.input.data, **self.states[rid].member.data} for rid in chunk],
                        self.input.event,
                        final_attempt=SEND_ATTEMPTS,
                    ),
                    result_type=c.SendManyResult,
                    task_queue=queue,
                    start_to_close_timeout=timedelta(minutes=5),
                    heartbeat_timeout=BATCH_HEARTBEAT,
                    retry_policy=SEND_RETRY,
                    summary=f"{label} ({len(chunk)} recipients)",
                )
            )

        async def collect() -> None:
            for chunk, handle in zip(chunks, handles, strict=True):
                results = await self._outcome(channel, chunk, handle)
                for rid, result in zip(chunk, results, strict=True):
                    attempts[rid].append(result)
                self.in_flight.subtract(chunk)

        # Not a ``finally``: a workflow evicted from the worker's cache is closed with
        # GeneratorExit, and nothing may be awaited then.
        try:
            await asyncio.shield(asyncio.gather(*handles, return_exceptions=True))
        except asyncio.CancelledError:
            await collect()
            raise
        await collect()

    @staticmethod
    async def _outcome(channel: str, chunk: list[str], handle: Any) -> list[c.SendResult]:
        try:
            result = await asyncio.shield(handle)
        except ActivityError as err:
            cause = err.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            return [c.SendResult("", channel, "failed", reason=reason) for _ in chunk]
        if isinstance(result, c.SendResult):
            return [result]
        return list(result.results)

    def _record_send(self, step: SendStep, rid: str, attempts: list[c.SendResult]) -> None:
        state, detail = send_entry(step, attempts)
        self.record(step.id, "send", state, [rid], **detail)

    async def close(self, members: Iterable[str]) -> None:
        """Tell the store which members have ended, with their timelines."""
        ended = [
            rid for rid in members if rid not in self.closed and self.states[rid].state != "running"
        ]
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
                for chunk in _chunks(ended, _CLOSE_CHUNK)
            )
        )
