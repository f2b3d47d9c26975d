"""The cohort's sends: a step's message per channel, in batches, retried for a window.

Workflow code. A cohort of one sends with the single-recipient activity, a larger cohort
with one activity per channel's ``batch_size`` members. Transient provider failures are
retried by Temporal with backoff (nothing is held between attempts: no worker slot, no
workflow task) until the channel's retry window ends; the activity then fails the
message with the reason. A recipient who is cancelled or leaves while their message
waits for a retry is taken out at once: the message is *withdrawn* in the store (see
:mod:`journeys.store.messages`), which no later attempt can get past, and only a message
being handed to its provider at that instant is waited for.

Runs started before retry windows (no ``send-retry-window`` marker in their history)
keep five attempts, and a cancel waits for their sends in flight.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from definitions import contract as c
    from definitions.batches import chunks
    from definitions.plan import Plan
    from definitions.runtime import (
        CHECK_RETRY,
        RETRY_GRACE,
        SEND_ATTEMPTS,
        SEND_RETRY,
        WINDOWED_RETRY,
        WINDOWED_SENDS_PATCH,
        channel_queue,
        message_id_for,
        retry_window,
        send_entry,
    )
    from definitions.steps.send import SendStep

if TYPE_CHECKING:
    from temporalio.workflow import ActivityHandle

__all__ = ["BATCH_HEARTBEAT", "DEFAULT_BATCH", "Outstanding", "Sends"]

DEFAULT_BATCH = 250
"""Recipients per send activity when the channel's batch size is not configured."""
BATCH_HEARTBEAT = timedelta(seconds=10)
"""A send activity whose worker stops heartbeating this long is retried elsewhere."""


@dataclass
class Outstanding:
    """A member's message that a send activity has not answered for yet."""

    step: SendStep
    channel: str
    attempts: list[c.SendResult]
    """The member's results on the step's channels so far (shared with ``send``)."""


class Sends:
    """Mixed into :class:`definitions.cohort.Cohort`: its send steps."""

    input: c.JourneyInput
    plan: Plan
    single: bool
    states: dict[str, c.MemberState]
    in_flight: Counter[str]
    after_send: dict[str, tuple[str, str, str, dict[str, Any]]]
    outstanding: dict[str, Outstanding]

    if TYPE_CHECKING:

        def active(self, members: Iterable[str]) -> list[str]: ...
        def run_info(self, rid: str) -> c.RunInfo: ...
        def record(
            self, step: str, kind: str, outcome: str, members: Iterable[str], **detail: Any
        ) -> None: ...

    def windowed(self) -> bool:
        """Whether this run retries sends for a window and withdraws them on cancel."""
        return workflow.patched(WINDOWED_SENDS_PATCH)

    async def send(self, step: SendStep, members: list[str]) -> None:
        """Deliver a send step's message, trying its channels in order until one sends.

        The members a channel did not reach move on to the next channel together. A member
        cancelled or gone meanwhile is not sent to (their message is withdrawn); one whose
        message was being handed to a provider at that instant has it finish first.
        """
        attempts: dict[str, list[c.SendResult]] = {rid: [] for rid in members}
        pending = list(members)
        try:
            for channel in step.channels:
                pending = self.active(pending)
                if not pending:
                    break
                await self._send_on(step, channel, pending, attempts)
                pending = [
                    rid
                    for rid in self.active(pending)
                    if attempts[rid] and attempts[rid][-1].state != "sent"
                ]
        finally:
            for rid, tried in attempts.items():
                if tried:
                    self._record_send(step, rid, tried)
                self._after_send(rid)

    async def _send_on(
        self,
        step: SendStep,
        channel: str,
        members: list[str],
        attempts: dict[str, list[c.SendResult]],
    ) -> None:
        """Send on one channel in batches, adding each member's result to ``attempts``."""
        windowed = self.windowed()
        size = max(1, self.input.batch_sizes.get(channel, DEFAULT_BATCH))
        template = self.plan.templates.get(step.template) if step.template else None
        queue = channel_queue(workflow.info().task_queue, channel)
        label = f"{step.id}: send {step.template or 'payload'} via {channel}"
        options: dict[str, Any] = {"retry_policy": SEND_RETRY}
        retry_until = None
        if windowed:
            window = retry_window(self.input.retry_windows, channel)
            retry_until = workflow.now() + window
            options = {
                "retry_policy": WINDOWED_RETRY,
                "schedule_to_close_timeout": window + RETRY_GRACE,
            }
        batches = chunks(members, size)
        handles: list[ActivityHandle[Any]] = []
        for batch in batches:
            self.in_flight.update(batch)
            for rid in batch:
                self.outstanding[rid] = Outstanding(step, channel, attempts[rid])
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
                    heartbeat_timeout=BATCH_HEARTBEAT,
                    summary=summary,
                    **options,
                )
            )

        if not windowed:
            await self._send_as_before(channel, batches, handles)
            return
        collectors = [
            asyncio.create_task(self._collect(step, channel, batch, handle))
            for batch, handle in zip(batches, handles, strict=True)
        ]
        try:
            await workflow.wait_condition(lambda: not any(m in self.outstanding for m in members))
        except asyncio.CancelledError:  # withdraw what has not gone out, stop the batches
            await self.withdraw(list(members), "cancelled")
            _stop(handles, collectors)
            raise
        _stop(handles, collectors)  # batches whose every member was withdrawn

    async def _collect(self, step: SendStep, channel: str, batch: list[str], handle: Any) -> None:
        """Settle each member of a batch with its answer, when it comes."""
        try:
            answer = await asyncio.shield(handle)
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                for rid in batch:
                    self._settle(rid, c.SendResult("", channel, "failed", reason=cause.message))
                return
            # No answer within the window and its grace (every worker was down): fail what
            # did not go out, as the log says.
            still = [rid for rid in batch if rid in self.outstanding]
            if still:
                results = await self._settle_in_store(
                    [(rid, step.id, channel) for rid in still],
                    f"no answer: {cause or err}",
                    "failed",
                )
                for rid, result in zip(still, results, strict=True):
                    self._settle(rid, result)
            return
        results = [answer] if isinstance(answer, c.SendResult) else list(answer.results)
        for rid, result in zip(batch, results, strict=True):
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

    def _settle(self, rid: str, result: c.SendResult | None) -> Outstanding | None:
        """A member's message on the current channel has its answer (None: withdrawn)."""
        entry = self.outstanding.pop(rid, None)
        if entry is None:  # answered already, by a withdrawal
            return None
        if result is not None:
            entry.attempts.append(result)
        self.in_flight[rid] -= 1
        return entry

    async def withdraw(self, members: list[str], reason: str) -> None:
        """Take members' messages out of their sends: nothing goes out after this returns.

        A message being handed to its provider right now is waited for, and recorded in
        the member's timeline as it ended; the others are recorded withdrawn in the log.
        """
        members = [rid for rid in members if rid in self.outstanding]
        if not members:
            return
        results = await self._settle_in_store(
            [
                (rid, self.outstanding[rid].step.id, self.outstanding[rid].channel)
                for rid in members
            ],
            reason,
            "skipped",
        )
        for rid, result in zip(members, results, strict=True):
            withdrawn = result.state == "skipped" and result.reason == reason
            entry = self._settle(rid, None if withdrawn else result)
            if entry is None:  # its batch answered while the withdrawal ran
                continue
            if entry.attempts:
                self._record_send(entry.step, rid, list(entry.attempts))
                entry.attempts.clear()
            self._after_send(rid)

    async def _settle_in_store(
        self, messages: list[tuple[str, str, str]], reason: str, state: str
    ) -> list[c.SendResult]:
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
        return list(answer.results)

    def _after_send(self, rid: str) -> None:
        """Record the exit or cancel that came while the member's message was in flight."""
        if rid in self.after_send and self.in_flight[rid] <= 0:
            at, kind, outcome, detail = self.after_send.pop(rid)
            self.record(at, kind, outcome, [rid], **detail)

    def _record_send(self, step: SendStep, rid: str, attempts: list[c.SendResult]) -> None:
        state, detail = send_entry(step, attempts)
        self.record(step.id, "send", state, [rid], **detail)


def _stop(handles: list[Any], collectors: list[asyncio.Task[None]]) -> None:
    """Cancel the send activities no one waits for any more (their members withdrawn)."""
    for handle, collector in zip(handles, collectors, strict=True):
        if not collector.done():
            collector.cancel()
            handle.cancel()
