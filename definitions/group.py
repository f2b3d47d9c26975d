"""A group: recipients of a cohort at the same place in the plan, run together.

A group runs its steps one after the other. A step that sends some members elsewhere (a
branch, a split, an early ``wait_for`` arrival, a window that opens sooner for some) hands
them to a new group with a copy of the continuation, which runs on its own. Groups are the
``Runner`` the step kinds' code is written against.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions import contract as c
    from definitions.conditions import Condition
    from definitions.plan import Plan
    from definitions.runtime import STEP_KEY, bucket
    from definitions.steps import KINDS, Step
    from definitions.steps.base import Question
    from definitions.steps.send import SendStep
    from definitions.values import JSONValue

if TYPE_CHECKING:
    from definitions.interpreter import Cohort

__all__ = ["Group"]

_Input = TypeVar("_Input")
_Result = TypeVar("_Result")
_Answer = TypeVar("_Answer")


class Group:
    """Members at the same place in the plan: the ``Runner`` the step kinds' code runs against.

    Args:
        cohort: the cohort the members belong to.
        members: the recipients, by id.
        frames: the continuation: ``(sequence, index of the next step)``, innermost last.
        resume: the wait it was parked in by the previous run (continue-as-new).
        first: what the group does before its continuation (see :meth:`detach`).

    """

    def __init__(
        self,
        cohort: Cohort,
        members: list[str],
        frames: list[tuple[str, int]],
        resume: c.GroupSnapshot | None = None,
        first: Callable[[Group], Awaitable[None]] | None = None,
    ) -> None:
        self.cohort = cohort
        self._members = members
        self.frames = frames
        self._step: Step | None = None
        self.resume = resume
        """Set when the group was parked at a wait by the previous run (continue-as-new)."""
        self._first = first
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
            if self._first is not None:
                first, self._first = self._first, None
                await first(self)
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

    def _enter(self, step: Step) -> None:
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

    def detach(self, members: list[str], first: Callable[[Group], Awaitable[None]]) -> None:
        """Members finish the current step apart (``first``), then go on from the next one.

        A send step detaches the members whose messages are still being retried, so the
        others need not wait for them.
        """
        chosen = set(members)
        self._members = [m for m in self._members if m not in chosen]
        self.cohort.spawn(Group(self.cohort, list(members), list(self.frames), first=first))

    # -- the Runner interface ---------------------------------------------------------------

    async def send(self, step: SendStep) -> None:
        """Deliver the step's message to every member."""
        await self.cohort.send(step, self.members, self.detach)

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

    async def check(self, condition: Condition, summary: str) -> list[str]:
        """The members a condition holds for now."""
        return await self.cohort.check(condition, self.members, summary)

    async def ask(
        self,
        question: Question[_Input, _Result, _Answer],
        request: Callable[[list[str], datetime], _Input],
        summary: str,
    ) -> dict[str, _Answer]:
        """Each member's answer to a step kind's question, from its activity in batches."""
        return await self.cohort.ask(question, request, self.members, summary)

    async def wait_each(
        self, seconds: dict[str, float], summary: str, opened: Callable[[list[str]], None]
    ) -> None:
        """Each member waits their own number of seconds (a window: until it opens for them).

        Members due at the same second wait on one timer and go on together; ``opened`` is
        called for each such group as it goes on.
        """
        self.resume = None  # a wait parked by the previous run simply asks again
        start = workflow.now()
        by_time: dict[int, list[str]] = {}
        for rid, wait in seconds.items():
            by_time.setdefault(max(0, round(wait)), []).append(rid)
        times = sorted(by_time)
        for i, at in enumerate(times):
            wait = at - (workflow.now() - start).total_seconds()
            await self.sleep(wait, summary)
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
        self,
        step: str,
        kind: str,
        outcome: str,
        members: list[str] | None = None,
        **detail: JSONValue,
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
