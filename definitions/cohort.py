"""The cohort interpreter: runs a compiled plan for recipients that move through it together.

Recipients standing at the same place form a :class:`Group`: a list of members and a
continuation (a stack of ``(sequence, next index)`` frames). A group runs its steps one
after the other; a step that sends some members elsewhere (a branch, a split, an early
``wait_for`` arrival, a window that opens sooner for some) hands them to a new group with
a copy of the continuation, which runs on its own. A recipient triggered alone is a
cohort of one: the same code, one member.

Everything here is workflow code: deterministic, no I/O; conditions, windows and sends
are batched activities.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from definitions import contract as c
    from definitions.conditions import (
        AttributeCondition,
        EventCondition,
        children,
        event_names,
    )
    from definitions.plan import MAIN, Plan
    from definitions.runtime import (
        CHECK_RETRY,
        SEND_ATTEMPTS,
        SEND_RETRY,
        STEP_KEY,
        bucket,
        channel_queue,
    )
    from definitions.steps import KINDS
    from definitions.steps.send import SendStep
    from definitions.steps.window import WindowStep

if TYPE_CHECKING:
    from temporalio.workflow import ActivityHandle

__all__ = ["Cohort", "Group"]

DEFAULT_BATCH = 100
"""Recipients per send activity when the channel's batch size is not configured."""
BATCH_HEARTBEAT = timedelta(seconds=10)
"""A batch of sends whose worker stops heartbeating this long is retried elsewhere."""
_CHECK_CHUNK = 1000
"""Recipients per condition or window activity."""
_CLOSE_CHUNK = 200
"""Finished runs per close activity (each carries its timeline)."""


def _only_lasting_events(condition: Any) -> bool:
    """True when only new events can change the condition (events ever done, no attributes)."""
    if isinstance(condition, EventCondition):
        return condition.within is None and condition.happened
    if isinstance(condition, AttributeCondition):
        return False
    return all(_only_lasting_events(child) for child in children(condition))


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class Cohort:
    """The recipients of one journey workflow, and everything the workflow knows of them.

    Args:
        input: the workflow's input.

    """

    def __init__(self, input: c.JourneyInput) -> None:
        self.input = input
        self.plan: Plan = input.plan
        members = input.members or [
            c.CohortMember(input.recipient_id, "", {}),
        ]
        self.single = not input.members
        self.states: dict[str, c.MemberState] = {m.recipient_id: c.MemberState(m) for m in members}
        self.order = [m.recipient_id for m in members]
        self.steps: dict[str, Counter[str]] = {}
        self.closed: set[str] = set()
        if input.resume is not None:
            self.states = {s.member.recipient_id: s for s in input.resume.members}
            self.steps = {k: Counter(v) for k, v in input.resume.steps.items()}
            self.closed = {rid for rid, s in self.states.items() if s.state != "running"}
        self.groups: list[Group] = []
        self.in_flight: Counter[str] = Counter()
        self.after_send: dict[str, tuple[str, str, str, dict[str, Any]]] = {}
        """Exits and cancels that came while a send was in flight for the member."""
        self.event_version = 0
        self.tasks: list[asyncio.Task[None]] = []
        exit_when = self.plan.exit_when
        self.exit_events = event_names(exit_when) if exit_when else set()
        self.exit_needs_polling = exit_when is not None and not _only_lasting_events(exit_when)

    # -- running ---------------------------------------------------------------------------

    async def run(self) -> c.RunProgress:
        """Run every member through the plan; the result sums the cohort up."""
        if self.single:
            # A cohort of one's run id is the workflow's first run id (stable across
            # continue-as-new): message ids and the store know it by that.
            only = self.states[self.order[0]]
            only.member = c.CohortMember(
                only.member.recipient_id, workflow.info().first_execution_run_id, {}
            )
        try:
            if self.input.resume is not None:
                for parked in self.input.resume.groups:
                    self.spawn(Group(self, list(parked.members), list(parked.frames), parked))
            else:
                if self.plan.exit_when is not None:
                    await self.check_exit(self.order, "on entry", step="-")
                self.spawn(Group(self, list(self.active(self.order)), [(MAIN, 0)]))
            while True:
                await workflow.wait_condition(lambda: self._finished() or self._may_roll_over())
                if self._finished():
                    break
                await self.close(self.order)  # the next run carries no timelines of those
                if self._may_roll_over():
                    self._continue_as_new()
            for task in self.tasks:
                task.result()  # a group's unexpected error fails the workflow
        except asyncio.CancelledError:
            await self._cancelled()
            raise
        for state in self.states.values():
            if state.state == "running":
                state.state = "completed"
            state.current = None
        await self.close(self.order)
        await workflow.wait_condition(workflow.all_handlers_finished)
        self.set_details()
        return self.result()

    async def _cancelled(self) -> None:
        """Cancel every group (a send in flight finishes first), then record the cancel."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for rid in self.order:
            self.cancel_member(rid)
        await asyncio.shield(asyncio.ensure_future(self.close(self.order)))

    def spawn(self, group: Group) -> None:
        """Start a group on its own."""
        if group.members:
            self.groups.append(group)
            self.tasks.append(asyncio.create_task(group.run()))

    def _finished(self) -> bool:
        return all(t.done() for t in self.tasks)

    def _may_roll_over(self) -> bool:
        """The history is long and every group is parked in a wait with nothing in flight."""
        info = workflow.info()
        if not (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self.input.history_limit
        ):
            return False
        live = [g for g, t in zip(self.groups, self.tasks, strict=True) if not t.done()]
        return (
            all(g.parked is not None for g in live)
            and not +self.in_flight
            and workflow.all_handlers_finished()
        )

    def _continue_as_new(self) -> None:
        """Hand every member's state and every parked group to a new run of the workflow."""
        live = [g for g, t in zip(self.groups, self.tasks, strict=True) if not t.done()]
        members = [
            self.states[rid]
            if self.states[rid].state == "running"
            else c.MemberState(  # ended and closed: the store has their timeline
                self.states[rid].member,
                self.states[rid].state,
                exit_reason=self.states[rid].exit_reason,
            )
            for rid in self.order
        ]
        snapshot = c.CohortSnapshot(
            members,
            [g.snapshot() for g in live if g.members],
            {k: dict(v) for k, v in self.steps.items()},
        )
        workflow.continue_as_new(dataclasses.replace(self.input, resume=snapshot))

    # -- members ---------------------------------------------------------------------------

    def active(self, members: Iterable[str]) -> list[str]:
        """The members still in the journey."""
        return [m for m in members if self.states[m].state == "running"]

    def run_info(self, rid: str) -> c.RunInfo:
        """Who a member is, as activities need to know it."""
        state = self.states[rid]
        return c.RunInfo(
            self.plan.journey,
            rid,
            workflow.info().workflow_id,
            state.member.run_id,
            self.input.trigger_id,
        )

    def record(
        self, step: str, kind: str, outcome: str, members: Iterable[str], **detail: Any
    ) -> None:
        """Add an entry to each member's timeline, and count it for the step."""
        now = workflow.now()
        count = 0
        for rid in members:
            self.states[rid].timeline.append(c.TimelineEntry(step, kind, outcome, now, detail))
            count += 1
        if count:
            counted = "exited" if kind == "exit" else outcome
            self.steps.setdefault(step, Counter())[counted] += count

    def leave(self, rid: str, reason: str) -> None:
        """A member exits the journey (once)."""
        state = self.states[rid]
        if state.state != "running":
            return
        state.state = "exited"
        state.exit_reason = reason
        self._note(rid, "exit", "left the journey", reason=reason)

    def cancel_member(self, rid: str) -> bool:
        """A member is cancelled; False if they had already left."""
        state = self.states[rid]
        if state.state != "running":
            return False
        state.state = "cancelled"
        self._note(rid, "cancel", "cancelled")
        return True

    def _note(self, rid: str, kind: str, outcome: str, **detail: Any) -> None:
        """Record a member's exit or cancel, after the send in flight for them if any."""
        at = self.states[rid].current or "-"
        if self.in_flight[rid] > 0:
            self.after_send[rid] = (at, kind, outcome, detail)
        else:
            self.record(at, kind, outcome, [rid], **detail)

    def count(self, step: str, what: str, n: int = 1) -> None:
        """Count something that is not a timeline outcome (``reached``, ``exited``)."""
        self.steps.setdefault(step, Counter())[what] += n

    def on_event(self, signal: c.EventSignal) -> str | None:
        """Note a member's event; returns the member when it may meet the exit goal."""
        rid = signal.recipient_id or (self.order[0] if self.single else "")
        state = self.states.get(rid)
        if state is None or state.state != "running":
            return None
        state.unused_events[signal.name] = state.unused_events.get(signal.name, 0) + 1
        self.event_version += 1
        if signal.name in self.exit_events:
            return rid
        return None

    async def check_exit(self, members: list[str], when: str, *, step: str | None = None) -> None:
        """Evaluate the exit goal for members; those it holds for leave."""
        assert self.plan.exit_when is not None
        members = self.active(members)
        if not members:
            return
        met = await self.check(self.plan.exit_when, members, f"exit_when ({when})")
        for rid in met:
            if step is not None:
                self.states[rid].current = None
            self.leave(rid, f"exit_when met ({when})")

    # -- activities ------------------------------------------------------------------------

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
        last = attempts[-1]
        states = {a.state for a in attempts}
        state = "sent" if "sent" in states else "skipped" if states == {"skipped"} else "failed"
        detail: dict[str, Any] = {
            "channel": last.channel,
            "address": last.address,
            "message_id": last.message_id,
            **last.detail,
        }
        if last.reason:
            detail["reason" if last.state == "skipped" else "error"] = last.reason
        if len(step.channels) > 1:
            detail["attempts"] = [
                {
                    "channel": a.channel,
                    "state": a.state,
                    **({"reason": a.reason} if a.reason else {}),
                }
                for a in attempts
            ]
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

    # -- what the UI and status show -------------------------------------------------------

    def member_progress(self, rid: str) -> c.RunProgress:
        """One member's position and timeline."""
        state = self.states[rid]
        return c.RunProgress(
            journey=self.plan.journey,
            recipient_id=rid,
            state=state.state,
            current_step=state.current if state.state == "running" else None,
            steps_done=[s for s in state.done if s != state.current or state.state != "running"],
            timeline=list(state.timeline),
            exit_reason=state.exit_reason,
        )

    def counts(self) -> c.CohortCounts:
        """The cohort at a glance."""
        states = Counter(s.state for s in self.states.values())
        steps = {step: dict(counter) for step, counter in self.steps.items()}
        for state in self.states.values():
            if state.state == "running" and state.current is not None:
                at = steps.setdefault(state.current, {})
                at["waiting"] = at.get("waiting", 0) + 1
        return c.CohortCounts(len(self.states), dict(states), steps)

    def progress(self) -> c.RunProgress:
        """The cohort of one's progress, or a cohort's state and counts."""
        if self.single:
            return self.member_progress(self.order[0])
        counts = self.counts()
        running = counts.states.get("running", 0)
        return c.RunProgress(
            journey=self.plan.journey,
            recipient_id="",
            state="running" if running else "completed",
            counts=counts,
        )

    def result(self) -> c.RunProgress:
        """The workflow's result."""
        return self.progress()

    def set_details(self, step: str | None = None, label: str = "") -> None:
        """What the Temporal UI shows as the run's current details."""
        if self.single:
            state = self.states[self.order[0]]
            if step is not None:
                workflow.set_current_details(f"**{step}**: {label}")
            elif state.state != "running":
                reason = f": {state.exit_reason}" if state.exit_reason else ""
                workflow.set_current_details(f"{state.state}{reason}")
            return
        states = Counter(s.state for s in self.states.values())
        where = Counter(s.current for s in self.states.values() if s.state == "running")
        parts = [f"{n} at **{at}**" for at, n in sorted(where.items(), key=lambda kv: -kv[1])[:5]]
        ended = ", ".join(
            f"{n} {state}" for state, n in sorted(states.items()) if state != "running"
        )
        workflow.set_current_details(
            f"{len(self.states)} recipients: " + "; ".join([*parts, *([ended] if ended else [])])
        )


class Group:
    """Members at the same place in the plan: the ``Runner`` the step kinds' code runs against.

    Args:
        cohort: the cohort the members belong to.
        members: the recipients, by id.
        frames: the continuation: ``(sequence, index of the next step)``, innermost last.

    """

    def __init__(
        self,
        cohort: Cohort,
        members: list[str],
        frames: list[tuple[str, int]],
        resume: c.GroupSnapshot | None = None,
    ) -> None:
        self.cohort = cohort
        self._members = members
        self.frames = frames
        self._step: Any = None
        self.resume = resume
        """Set when the group was parked at a wait by the previous run (continue-as-new)."""
        self.parked: tuple[datetime | None] | None = None
        """While waiting: (when the wait ends,); the group can then be carried over."""

    def snapshot(self) -> c.GroupSnapshot:
        """The parked group: its members, and its continuation at the step it waits in."""
        assert self.parked is not None
        frames = list(self.frames)
        sequence, index = frames[-1]
        frames[-1] = (sequence, index - 1)
        return c.GroupSnapshot(list(self.members), frames, self.parked[0])

    @property
    def plan(self) -> Plan:
        """The plan being run."""
        return self.cohort.plan

    @property
    def members(self) -> list[str]:
        """The group's members still in the journey."""
        self._members = self.cohort.active(self._members)
        return self._members

    async def run(self) -> None:
        """Run steps until the continuation is empty or no member is left."""
        cohort = self.cohort
        try:
            while self.frames and self.members:
                sequence, index = self.frames[-1]
                steps = self.plan.sequences[sequence]
                if index >= len(steps):
                    self.frames.pop()
                    continue
                self.frames[-1] = (sequence, index + 1)
                step = self.plan.step(steps[index])
                if self.resume is not None:  # back in the wait it was parked in
                    self._step = step
                    await KINDS[step.kind].run(step, self)
                    self.resume = None
                    continue
                if cohort.exit_needs_polling:
                    stepped = [m for m in self.members if cohort.states[m].done]
                    if stepped:
                        await cohort.check_exit(stepped, f"before {step.id}")
                        if not self.members:
                            break
                self._enter(step)
                await KINDS[step.kind].run(step, self)
        finally:
            self._step = None
        ended = [m for m in self._members if cohort.states[m].state == "running"]
        for rid in ended:
            cohort.states[rid].state = "completed"
            cohort.states[rid].current = None
        if not cohort.single:
            await cohort.close(cohort.order)

    def _enter(self, step: Any) -> None:
        cohort = self.cohort
        members = self.members
        for rid in members:
            state = cohort.states[rid]
            state.done.append(step.id)
            state.current = step.id
        cohort.count(step.id, "reached", len(members))
        self._step = step
        workflow.upsert_search_attributes([STEP_KEY.value_set(step.id)])
        cohort.set_details(step.id, KINDS[step.kind].label(step))

    def fork(self, members: list[str], sequence: str | None = None) -> None:
        """Members go on without the rest of the group.

        They run ``sequence`` first, if given, then whatever follows the current step.
        """
        chosen = set(members)
        self._members = [m for m in self._members if m not in chosen]
        frames = list(self.frames)
        if sequence is not None:
            frames.append((sequence, 0))
        self.cohort.spawn(Group(self.cohort, list(members), frames))

    # -- the Runner interface ---------------------------------------------------------------

    async def send(self, step: SendStep) -> None:
        """Deliver the step's message to every member."""
        await self.cohort.send(step, self.members)

    async def sleep(self, seconds: float, summary: str) -> None:
        """One durable timer for the group; ends early when no member is left."""
        deadline = workflow.now() + timedelta(seconds=seconds)
        if self.resume is not None:
            deadline, self.resume = self.resume.deadline or deadline, None
        seconds = (deadline - workflow.now()).total_seconds()
        if seconds <= 0:
            return
        self.parked = (deadline,)
        try:
            await workflow.wait_condition(
                lambda: not self.members, timeout=seconds, timeout_summary=summary
            )
        except TimeoutError:
            return
        finally:
            self.parked = None

    async def wait_for_event(
        self,
        event: str,
        timeout: float | None,
        summary: str,
        arrived: Callable[[list[str]], None],
    ) -> list[str]:
        """Wait for each member's event; returns the members it did not come for in time.

        Members whose event comes go on at once (``arrived`` is called for them first),
        those whose events came together as one group. An event done before the step was
        reached, and not used by an earlier ``wait_for``, counts.
        """
        cohort = self.cohort
        deadline = workflow.now() + timedelta(seconds=timeout) if timeout is not None else None
        if self.resume is not None:
            deadline, self.resume = self.resume.deadline, None
        while True:
            ready = [m for m in self.members if cohort.states[m].unused_events.get(event, 0) > 0]
            if ready:
                for rid in ready:
                    cohort.states[rid].unused_events[event] -= 1
                arrived(ready)
                if len(ready) == len(self.members):
                    return []
                self.fork(ready)
            if not self.members:
                return []
            remaining = None
            if deadline is not None:
                remaining = (deadline - workflow.now()).total_seconds()
                if remaining <= 0:
                    return self.members
            seen = cohort.event_version
            self.parked = (deadline,)
            try:
                await workflow.wait_condition(
                    lambda seen=seen: cohort.event_version != seen or not self.members,  # type: ignore[misc]
                    timeout=remaining,
                    timeout_summary=summary,
                )
            except TimeoutError:
                return self.members
            finally:
                self.parked = None

    async def check(self, condition: Any, summary: str) -> list[str]:
        """The members a condition holds for now."""
        return await self.cohort.check(condition, self.members, summary)

    async def wait_window(self, step: WindowStep, opened: Callable[[list[str]], None]) -> None:
        """Each member waits until the window opens in their timezone.

        Members for whom it opens at the same moment wait on one timer and go on together;
        ``opened`` is called for each such group as it goes on.
        """
        self.resume = None  # a window parked by the previous run simply asks again
        members = self.members
        delays = await self.cohort.window_delays(step, members)
        start = workflow.now()
        by_time: dict[int, list[str]] = {}
        for rid, seconds in zip(members, delays, strict=True):
            by_time.setdefault(max(0, round(seconds)), []).append(rid)
        times = sorted(by_time)
        for i, at in enumerate(times):
            wait = at - (workflow.now() - start).total_seconds()
            await self.sleep(wait, f"{step.id}: wait for {step.label}")
            group = self.cohort.active(by_time[at])
            if not group:
                continue
            opened(group)
            if i < len(times) - 1:
                self.fork(group)

    def bucket(self, salt: str, recipient_id: str) -> float:
        """A number in [0, 100) fixed by the salt and the recipient (for splits)."""
        return bucket(salt, recipient_id)

    def record(
        self, step: str, kind: str, outcome: str, members: list[str] | None = None, **detail: Any
    ) -> None:
        """Add an entry to the timelines of members (by default, the whole group)."""
        self.cohort.record(
            step, kind, outcome, self.members if members is None else members, **detail
        )

    def route(self, members: list[str], sequence: str | None) -> None:
        """Members continue in ``sequence`` (then after this step) on their own."""
        members = self.cohort.active(members)
        if not members:
            return
        if len(members) == len(self.members) and sequence is None:
            return
        self.fork(members, sequence)

    def exit(self, reason: str, members: list[str] | None = None) -> None:
        """Members (by default, the whole group) leave the journey now."""
        for rid in list(self.members if members is None else members):
            self.cohort.leave(rid, reason)
