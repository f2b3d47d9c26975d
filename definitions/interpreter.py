"""The cohort interpreter: runs a compiled plan for recipients that move through it together.

Recipients standing at the same place form a :class:`definitions.group.Group`; the cohort
holds what is known of every recipient (state, position, timeline, unused events), runs
its groups until none is left, and continues as new when its history grows long. A
recipient triggered alone is a cohort of one: the same code, one member.

Everything here is workflow code: deterministic, no I/O; conditions, step kinds'
questions (a window's delays…) and sends are activities (:mod:`definitions.batches`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Iterable
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions import contract as c
    from definitions.batches import Batches
    from definitions.conditions import (
        event_names,
        only_lasting_events,
    )
    from definitions.group import Group
    from definitions.plan import MAIN, Plan
    from definitions.send_rounds import Outstanding
    from definitions.sends import Sends
    from definitions.steps.send import SendStep
    from definitions.values import JSONValue

__all__ = ["Cohort"]


class Cohort(Sends, Batches):
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
        self.outstanding: dict[str, Outstanding] = {}
        """Members' messages a send activity has not answered for yet."""
        self.unrecorded: dict[str, tuple[SendStep, list[c.SendResult]]] = {}
        """Members in a send step whose entry for it is not written yet, with their tries."""
        self.event_version = 0
        self.tasks: list[asyncio.Task[None]] = []
        exit_when = self.plan.exit_when
        self.exit_events = event_names(exit_when) if exit_when else set()
        self.exit_needs_polling = exit_when is not None and not only_lasting_events(exit_when)

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
        if self.outstanding:  # a group cancelled before it sent its stragglers again
            await asyncio.shield(
                asyncio.ensure_future(self.withdraw(list(self.outstanding), "cancelled"))
            )
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
        self, step: str, kind: str, outcome: str, members: Iterable[str], **detail: JSONValue
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

    def _note(self, rid: str, kind: str, outcome: str, **detail: JSONValue) -> None:
        """Record a member's exit or cancel, after the send in flight for them if any."""
        at = self.states[rid].current or "-"
        if self.in_flight[rid] > 0:
            self.after_send[rid] = (at, kind, outcome, detail)
        else:
            self.record_send_of(rid)  # tried a channel, waiting for the others' answers
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
        flying = [rid for rid in met if rid in self.outstanding]
        if flying and self.windowed():  # their messages waiting for a retry stay unsent
            await self.withdraw(flying, "left the journey")

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
