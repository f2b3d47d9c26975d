"""The per-recipient interpreter as it ran before cohorts, kept to replay runs started then.

Runs started before the ``cohorts`` patch have histories made by this code; replaying
them needs the same commands in the same order, so it stays here, frozen, step kinds
included. New runs never come here: :class:`definitions.workflow.JourneyWorkflow`
sends them to the cohort interpreter. Delete this module once no run started before
the patch is left.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from definitions import contract as c
    from definitions.conditions import (
        Condition,
        describe_condition,
        event_names,
        only_lasting_events,
    )
    from definitions.plan import MAIN, Plan
    from definitions.runtime import (
        CHANNEL_QUEUES_PATCH,
        CHECK_RETRY,
        SEND_RETRY,
        STEP_KEY,
        bucket,
        send_entry,
    )
    from definitions.steps import KINDS
    from definitions.steps.send import SendStep
    from definitions.steps.split import choose_path
    from definitions.steps.window import WindowStep
    from definitions.values import JSONValue

__all__ = ["LegacyRun"]


class _Exit(Exception):
    """Raised inside the interpreter to leave the journey."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LegacyRun:
    """One recipient's run of a journey, as interpreted before cohorts (replay only)."""

    def __init__(self, input: c.JourneyInput) -> None:
        self._input = input
        self._plan: Plan = input.plan
        self._timeline: list[c.TimelineEntry] = []
        self._done: list[str] = []
        self._current: str | None = None
        self._unused_events: Counter[str] = Counter()
        self._exit_reason: str | None = None
        self._state = "running"
        self._cancelled_attempt: c.SendResult | None = None
        exit_when = self._plan.exit_when
        self._exit_events = event_names(exit_when) if exit_when else set()
        self._exit_needs_polling = exit_when is not None and not only_lasting_events(exit_when)

    async def run(self) -> c.RunProgress:
        """Interpret the plan from its main sequence to the end (or an exit)."""
        state = "completed"
        try:
            if self._plan.exit_when is not None and await self._check_exit("on entry"):
                raise _Exit(self._exit_reason or "exit_when met")
            await self.run_sequence(MAIN)
        except _Exit as exit:
            state = "exited"
            self._exit_reason = exit.reason
            self.record(self._current or "-", "exit", "left the journey", reason=exit.reason)
        except BaseException as err:
            if is_cancelled_exception(err):
                self.record(self._current or "-", "cancel", "cancelled")
            raise
        self._current = None
        self._state = state
        reason = f": {self._exit_reason}" if self._exit_reason else ""
        workflow.set_current_details(f"{state}{reason}")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.progress()

    async def on_event(self, signal: c.EventSignal) -> None:
        """An event the recipient did: it may end a wait_for, or meet the exit goal."""
        self._unused_events[signal.name] += 1
        if signal.name in self._exit_events and self._exit_reason is None:
            await self._check_exit(f"after event {signal.name}")

    def progress(self) -> c.RunProgress:
        """Where the run is and its timeline so far."""
        return c.RunProgress(
            journey=self._plan.journey,
            recipient_id=self._input.recipient_id,
            state=self._state,
            current_step=self._current,
            steps_done=[s for s in self._done if s != self._current],
            timeline=list(self._timeline),
            exit_reason=self._exit_reason,
        )

    # -- the interpreter ------------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        """The plan being run (part of the step Runner interface)."""
        return self._plan

    async def run_sequence(self, sequence: str) -> None:
        """Run each step of a sequence, honouring the exit goal between steps."""
        for step_id in self._plan.sequences[sequence]:
            if self._exit_reason is not None:
                raise _Exit(self._exit_reason)
            if (
                self._exit_needs_polling
                and self._done
                and await self._check_exit(f"before {step_id}")
            ):
                raise _Exit(self._exit_reason or "exit_when met")
            step = self._plan.step(step_id)
            self._enter(step_id, KINDS[step.kind].label(step))
            await self._run_step(step)

    async def _run_step(self, step: Any) -> None:  # noqa: ANN401  (frozen: dispatches on step.kind as it did)
        """The step kinds' code as it was when these runs started."""
        kind = step.kind
        if kind == "send":
            await self.send(step)
        elif kind == "wait":
            await self.sleep(step.seconds, f"{step.id}: wait {step.duration}")
            self.record(step.id, "wait", "waited", duration=step.duration)
        elif kind == "wait_for":
            limit = f" (at most {step.timeout})" if step.timeout else ""
            arrived = await self.wait_for_event(
                step.event, step.timeout_seconds, f"{step.id}: wait for {step.event}{limit}"
            )
            self.record(
                step.id, "wait_for", "event arrived" if arrived else "timed out", event=step.event
            )
            if not arrived and step.on_timeout == "exit":
                self.exit(f"{step.id}: {step.event} did not happen within {step.timeout}")
        elif kind == "branch":
            matched = await self.check(
                step.condition, f"{step.id}: {describe_condition(step.condition)}?"
            )
            self.record(step.id, "branch", "then" if matched else "else")
            chosen = step.then if matched else step.otherwise
            if chosen is not None:
                await self.run_sequence(chosen)
        elif kind == "split":
            path = choose_path(step, self.bucket(f"{self._plan.journey}:{step.id}"))
            self.record(step.id, "split", path.name)
            if path.sequence is not None:
                await self.run_sequence(path.sequence)
        elif kind == "window":
            await self.wait_window(step)
            self.record(step.id, "window", "open", window=step.label)
        elif kind == "exit":
            self.exit(step.id)
        else:  # pragma: no cover - the plan was validated when the run started
            raise ApplicationError(f"unknown step kind {kind!r}", non_retryable=True)

    def _enter(self, step_id: str, label: str) -> None:
        self._done.append(step_id)
        self._current = step_id
        workflow.upsert_search_attributes([STEP_KEY.value_set(step_id)])
        workflow.set_current_details(f"**{step_id}**: {label}")

    async def _check_exit(self, when: str) -> bool:
        """Evaluate the exit goal; True (and the reason kept) when the recipient must leave."""
        assert self._plan.exit_when is not None
        if await self.check(self._plan.exit_when, f"exit_when ({when})"):
            self._exit_reason = self._exit_reason or f"exit_when met ({when})"
        return self._exit_reason is not None

    def _info(self) -> c.RunInfo:
        info = workflow.info()
        return c.RunInfo(
            self._plan.journey,
            self._input.recipient_id,
            info.workflow_id,
            info.run_id,
            self._input.trigger_id,
        )

    async def send(self, step: SendStep) -> None:
        """Deliver a send step's message, trying its channels in order until one sends.

        Each attempt is shielded from cancellation: a message being handed to a provider
        when the run is cancelled finishes (and is recorded) before the run ends, so that
        nothing is sent once cancel() has returned, and no further channel is tried.
        """
        attempts: list[c.SendResult] = []
        try:
            for channel in step.channels:
                result = await self._attempt(step, channel)
                attempts.append(result)
                if result.state == "sent":
                    break
        finally:
            self._record_send(step, attempts)

    async def _attempt(self, step: SendStep, channel: str) -> c.SendResult:
        template = self._plan.templates.get(step.template) if step.template else None
        request = c.SendInput(
            self._info(), step, template, self._input.data, self._input.event, channel=channel
        )
        # Sends go to a task queue per channel, so each can carry its provider's rate limit.
        queue = (
            f"{workflow.info().task_queue}.send.{channel}"
            if workflow.patched(CHANNEL_QUEUES_PATCH)
            else None
        )
        delivery = workflow.start_activity(
            c.SEND,
            request,
            result_type=c.SendResult,
            task_queue=queue,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=SEND_RETRY,
            summary=f"{step.id}: send {step.template or 'payload'} via {channel}",
        )
        try:
            await asyncio.shield(delivery)
        except asyncio.CancelledError:
            self._cancelled_attempt = await self._outcome(channel, delivery)
            raise
        except ActivityError:
            pass
        return await self._outcome(channel, delivery)

    @staticmethod
    async def _outcome(
        channel: str, delivery: workflow.ActivityHandle[c.SendResult]
    ) -> c.SendResult:
        try:
            result: c.SendResult = await delivery
        except ActivityError as err:
            cause = err.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            return c.SendResult("", channel, "failed", reason=reason)
        return result

    def _record_send(self, step: SendStep, attempts: list[c.SendResult]) -> None:
        if self._cancelled_attempt is not None:
            attempts.append(self._cancelled_attempt)
            self._cancelled_attempt = None
        if not attempts:
            return
        state, detail = send_entry(step, attempts)
        self.record(step.id, "send", state, **detail)

    async def sleep(self, seconds: float, summary: str) -> None:
        """A durable timer that ends early when the recipient exits."""
        try:
            await workflow.wait_condition(
                lambda: self._exit_reason is not None, timeout=seconds, timeout_summary=summary
            )
        except TimeoutError:
            return
        raise _Exit(self._exit_reason or "exit")

    async def wait_for_event(self, event: str, timeout: float | None, summary: str) -> bool:
        """Wait for an event not yet used by an earlier wait_for of this run."""

        def arrived() -> bool:
            return self._unused_events[event] > 0 or self._exit_reason is not None

        try:
            await workflow.wait_condition(arrived, timeout=timeout, timeout_summary=summary)
        except TimeoutError:
            return False
        if self._exit_reason is not None:
            raise _Exit(self._exit_reason)
        self._unused_events[event] -= 1
        return True

    async def check(self, condition: Condition, summary: str) -> bool:
        """Evaluate a condition in the evaluate activity."""
        result: bool = await workflow.execute_activity(
            c.EVALUATE,
            c.EvaluateInput(condition, self._input.recipient_id),
            result_type=bool,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=CHECK_RETRY,
            summary=summary,
        )
        return result

    async def wait_window(self, step: WindowStep) -> None:
        """Sleep until the window opens in the recipient's timezone."""
        seconds: float = await workflow.execute_activity(
            c.WINDOW,
            c.WindowInput(step, self._input.recipient_id, workflow.now()),
            result_type=float,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=CHECK_RETRY,
            summary=f"{step.id}: when does {step.label} open?",
        )
        if seconds > 0:
            await self.sleep(seconds, f"{step.id}: wait for {step.label}")

    def bucket(self, salt: str) -> float:
        """A number in [0, 100) fixed by the salt and the recipient id."""
        return bucket(salt, self._input.recipient_id)

    def record(self, step: str, kind: str, outcome: str, **detail: JSONValue) -> None:
        """Add an entry to the timeline."""
        self._timeline.append(c.TimelineEntry(step, kind, outcome, workflow.now(), detail))

    def exit(self, reason: str) -> NoReturn:
        """Leave the journey."""
        raise _Exit(reason)
