"""One round of a send step on one channel: its activities, their answers, the store's word.

Workflow code, mixed into :class:`definitions.interpreter.Cohort` under
:class:`definitions.sends.Sends`. A round starts the send activities for some members —
the single-recipient activity for a cohort of one, one batch activity per channel's
``batch_size`` members otherwise — and settles each member with its answer as it comes.
A batch that sent some of its messages and met a transient failure with others answers
at once, marking those ``retry``: they are the round's *stragglers*, sent again by a
round of their own, so that one failing address never holds the rest of its batch.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from definitions import contract as c
    from definitions.batches import chunks
    from definitions.errors import PermanentDeliveryError
    from definitions.plan import Plan
    from definitions.runtime import (
        CHECK_RETRY,
        RETRY_GRACE,
        SEND_ATTEMPTS,
        SEND_RETRY,
        WINDOWED_RETRY,
        channel_queue,
        message_id_for,
    )
    from definitions.steps.send import SendStep

__all__ = ["BATCH_HEARTBEAT", "DEFAULT_BATCH", "Outstanding", "SendRounds"]

DEFAULT_BATCH = 250
"""Recipients per send activity when the channel's batch size is not configured."""
BATCH_HEARTBEAT = timedelta(seconds=10)
"""A send activity whose worker stops heartbeating this long is retried elsewhere."""


@dataclass
class Outstanding:
    """A member's message on a channel that has no final answer yet."""

    step: SendStep
    channel: str
    attempts: list[c.SendResult]
    """The member's results on the step's channels so far (shared with the send)."""
    retry_until: datetime | None = None
    """The end of the message's retry window (None: runs started before windows)."""


_Handle = workflow.ActivityHandle[c.SendResult | c.SendManyResult]
"""A send activity: a single send's or a batch's."""


class SendRounds:
    """The activities of a send step's rounds (see the module)."""

    input: c.JourneyInput
    plan: Plan
    single: bool
    states: dict[str, c.MemberState]
    in_flight: Counter[str]
    outstanding: dict[str, Outstanding]

    if TYPE_CHECKING:

        def run_info(self, rid: str) -> c.RunInfo: ...
        def _settle(self, rid: str, result: c.SendResult | None) -> None: ...
        async def withdraw(self, members: list[str], reason: str) -> None: ...

    def _start(
        self, step: SendStep, channel: str, members: list[str], retry_until: datetime | None
    ) -> tuple[list[list[str]], list[Any]]:
        """Start the round's activities: the members in batches, and a handle for each."""
        size = max(1, self.input.batch_sizes.get(channel, DEFAULT_BATCH))
        template = self.plan.templates.get(step.template) if step.template else None
        queue = channel_queue(workflow.info().task_queue, channel)
        label = f"{step.id}: send {step.template or 'payload'} via {channel}"
        options: dict[str, Any] = {"retry_policy": SEND_RETRY}
        if retry_until is not None:
            left = max(retry_until - workflow.now(), timedelta(seconds=1))
            options = {
                "retry_policy": WINDOWED_RETRY,
                "schedule_to_close_timeout": left + RETRY_GRACE,
                # Runs started before windows: their workers may not heartbeat.
                "heartbeat_timeout": BATCH_HEARTBEAT,
            }
        elif not self.single:
            options["heartbeat_timeout"] = BATCH_HEARTBEAT
        batches = chunks(members, size)
        handles = []
        for batch in batches:
            if self.single:
                request: Any = c.SendInput(
                    self.run_info(batch[0]),
                    step,
                    template,
                    self.input.data,
                    self.input.event,
                    channel=channel,
                    retry_until=retry_until,
                )
                name, timeout, summary = c.SEND, 60, label
                result_type: type[Any] = c.SendResult
            else:
                request = c.SendManyInput(
                    step,
                    channel,
                    [self.run_info(rid) for rid in batch],
                    template,
                    [{**self.input.data, **self.states[rid].member.data} for rid in batch],
                    self.input.event,
                    final_attempt=SEND_ATTEMPTS,
                    retry_until=retry_until,
                )
                name, result_type = c.SEND_MANY, c.SendManyResult
                timeout, summary = 300, f"{label} ({len(batch)} recipients)"
            handles.append(
                workflow.start_activity(
                    name,
                    request,
                    result_type=result_type,
                    task_queue=queue,
                    start_to_close_timeout=timedelta(seconds=timeout),
                    summary=summary,
                    **options,
                )
            )
        return batches, handles

    async def _round(
        self, step: SendStep, channel: str, batches: list[list[str]], handles: list[Any]
    ) -> list[str]:
        """Settle each member as their batch answers; returns the stragglers.

        Cancelled, it withdraws what has not gone out and stops the activities.
        """
        retrying: list[str] = []
        collectors = [
            asyncio.create_task(self._collect(step, channel, batch, handle, retrying))
            for batch, handle in zip(batches, handles, strict=True)
        ]

        def waiting() -> bool:  # for a batch with a member still waiting for its answer
            return any(
                not task.done() and any(m in self.outstanding for m in batch)
                for task, batch in zip(collectors, batches, strict=True)
            )

        try:
            await workflow.wait_condition(lambda: not waiting())
        except asyncio.CancelledError:
            await self.withdraw([m for batch in batches for m in batch], "cancelled")
            _stop(handles, collectors)
            raise
        _stop(handles, collectors)  # batches whose every member was withdrawn
        for task in collectors:  # a collector's own error fails the workflow task, visibly
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return [rid for rid in retrying if rid in self.outstanding]

    async def _collect(
        self,
        step: SendStep,
        channel: str,
        batch: list[str],
        handle: _Handle,
        retrying: list[str],
    ) -> None:
        """Settle a batch's members with its answer, when it comes."""
        try:
            answer = await asyncio.shield(handle)
        except ActivityError as err:
            cause = err.cause
            if PermanentDeliveryError.crossed(cause):
                for rid in batch:  # a single send failed for good: its own answer
                    self._settle(rid, c.SendResult("", channel, "failed", reason=cause.message))
                return
            # No answer in its window (every worker down, an error it could not get past):
            # what did not go out is failed, as the log says.
            still = [rid for rid in batch if rid in self.outstanding]
            if still:
                shown = cause.message if isinstance(cause, ApplicationError) else cause or err
                answered = await self.settle_in_store(
                    [(rid, step.id, channel) for rid in still], f"no answer: {shown}", "failed"
                )
                for rid, result in zip(still, answered.results, strict=True):
                    self._settle(rid, result)
            return
        results = [answer] if isinstance(answer, c.SendResult) else list(answer.results)
        for rid, result in zip(batch, results, strict=True):
            if result.state == "retry":
                retrying.append(rid)
            else:
                self._settle(rid, result)

    async def _send_as_before(
        self, channel: str, batches: list[list[str]], handles: list[Any]
    ) -> None:
        """Runs started before retry windows: a cancel waits for the batches in flight."""

        async def collect() -> None:
            for batch, handle in zip(batches, handles, strict=True):
                try:
                    answer = await asyncio.shield(handle)
                except ActivityError as err:
                    cause = err.cause
                    reason = (
                        cause.message if isinstance(cause, ApplicationError) else str(cause or err)
                    )
                    results = [c.SendResult("", channel, "failed", reason=reason) for _ in batch]
                else:
                    results = [answer] if isinstance(answer, c.SendResult) else list(answer.results)
                for rid, result in zip(batch, results, strict=True):
                    self._settle(rid, result)

        # Not a ``finally``: a workflow evicted from the worker's cache is closed with
        # GeneratorExit, and nothing may be awaited then.
        try:
            await asyncio.shield(asyncio.gather(*handles, return_exceptions=True))
        except asyncio.CancelledError:
            await collect()
            raise
        await collect()

    async def settle_in_store(
        self, messages: Iterable[tuple[str, str, str]], reason: str, state: str
    ) -> c.WithdrawResult:
        """Withdraw (member, step, channel) messages in the store, as ``state``."""
        refs = []
        for rid, step_id, channel in messages:
            run = self.run_info(rid)
            refs.append(c.MessageRef(message_id_for(run, step_id, channel), run, step_id, channel))
        answer: c.WithdrawResult = await workflow.execute_activity(
            c.WITHDRAW,
            c.WithdrawInput(refs, reason, state),
            result_type=c.WithdrawResult,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=BATCH_HEARTBEAT,
            retry_policy=CHECK_RETRY,
            summary=f"{len(refs)} message(s) {state}: {reason}",
        )
        return answer


def _stop(handles: list[Any], collectors: list[asyncio.Task[None]]) -> None:
    """Cancel the send activities no one waits for any more (their members withdrawn)."""
    for handle, collector in zip(handles, collectors, strict=True):
        if not collector.done():
            collector.cancel()
            handle.cancel()
