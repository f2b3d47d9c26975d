"""The cohort's send steps: each channel in turn, retried for a window, withdrawn on cancel.

Workflow code. A send step tries its channels in order for the members it has not reached
yet; each channel is a round of activities (:mod:`definitions.send_rounds`). Transient
provider failures are retried by Temporal with backoff (nothing is held between attempts:
no worker slot, no workflow task) until the channel's retry window ends, when the
activity fails the message with the reason.

Members never wait for each other's failing deliveries: the *stragglers* of a round (a
batch sent some of its messages and is to retry the others) are detached into a group of
their own, which keeps retrying them and then goes on through the journey, while the rest
go on at once. A member who is cancelled or leaves while their message waits for a retry
is taken out at once: the message is *withdrawn* in the store (see
:mod:`journeys.store.messages`), which no later attempt gets past; only a message being
handed to its provider at that instant is waited for.

A member's timeline entry for the step is written as soon as their outcome is final (sent,
or not sent on the last channel, or they left), so it always comes before the entry of a
cancel or exit that followed it.

Runs started before retry windows (no ``send-retry-window`` marker in their history) keep
five attempts and wait for their sends in flight when cancelled.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions import contract as c
    from definitions.runtime import WINDOWED_SENDS_PATCH, retry_window, send_entry
    from definitions.send_rounds import Outstanding, SendRounds
    from definitions.steps.send import SendStep
    from definitions.values import JSONValue

if TYPE_CHECKING:
    from definitions.group import Group

__all__ = ["Detach", "Sends"]

Detach = Callable[[list[str], Callable[["Group"], Awaitable[None]]], None]
"""Hands members to a group of their own that runs the given coroutine first, then goes
on from the step after the current one (``Group.detach``)."""


class Sends(SendRounds):
    """Mixed into :class:`definitions.interpreter.Cohort`: its send steps."""

    after_send: dict[str, tuple[str, str, str, dict[str, Any]]]
    unrecorded: dict[str, tuple[SendStep, list[c.SendResult]]]
    in_flight: Counter[str]

    if TYPE_CHECKING:

        def active(self, members: Iterable[str]) -> list[str]: ...
        def record(
            self, step: str, kind: str, outcome: str, members: Iterable[str], **detail: JSONValue
        ) -> None: ...

    def windowed(self) -> bool:
        """Whether this run retries sends for a window and withdraws them on cancel."""
        return workflow.patched(WINDOWED_SENDS_PATCH)

    async def send(self, step: SendStep, members: list[str], detach: Detach | None) -> None:
        """Deliver a send step's message, trying its channels in order until one sends.

        The members a channel did not reach move on to the next channel together; those
        whose message on a channel is still being retried after the others' have answered
        are detached (see the module).
        """
        attempts: dict[str, list[c.SendResult]] = {rid: [] for rid in members}
        for rid in members:
            self.unrecorded[rid] = (step, attempts[rid])
        detached: set[str] = set()
        try:
            await self._channels(step, 0, members, attempts, detach, detached, again=False)
        finally:
            self._finish([rid for rid in members if rid not in detached])

    async def _resume(
        self,
        step: SendStep,
        index: int,
        members: list[str],
        attempts: dict[str, list[c.SendResult]],
        group: Group,
    ) -> None:
        """The stragglers' own group: retry their channel, then the step's later ones."""
        detached: set[str] = set()
        try:
            await self._channels(step, index, members, attempts, group.detach, detached, again=True)
        finally:
            self._finish([rid for rid in members if rid not in detached])

    async def _channels(
        self,
        step: SendStep,
        start: int,
        members: list[str],
        attempts: dict[str, list[c.SendResult]],
        detach: Detach | None,
        detached: set[str],
        *,
        again: bool,
    ) -> None:
        pending = list(members)
        for index in range(start, len(step.channels)):
            channel = step.channels[index]
            pending = [rid for rid in self.active(pending) if rid not in detached]
            if not pending:
                return
            stragglers = await self._send_on(
                step, channel, pending, attempts, again=again and index == start
            )
            while stragglers and detach is None:  # nowhere to detach them to: retry here
                stragglers = await self._send_on(step, channel, stragglers, attempts, again=True)
            if stragglers:
                assert detach is not None
                detached.update(stragglers)
                detach(
                    stragglers,
                    functools.partial(self._resume, step, index, stragglers, attempts),
                )
            pending = [
                rid
                for rid in self.active(pending)
                if rid not in detached and attempts[rid] and attempts[rid][-1].state != "sent"
            ]

    async def _send_on(
        self,
        step: SendStep,
        channel: str,
        members: list[str],
        attempts: dict[str, list[c.SendResult]],
        *,
        again: bool,
    ) -> list[str]:
        """One round on a channel; returns the stragglers (members still being retried).

        ``again``: the members' messages on this channel are outstanding from an earlier
        round, whose retry window still holds.
        """
        windowed = self.windowed()
        if again:
            members = [rid for rid in members if rid in self.outstanding]
            if not members:
                return []
            retry_until = self.outstanding[members[0]].retry_until
        else:
            retry_until = (
                workflow.now() + retry_window(self.input.retry_windows, channel)
                if windowed
                else None
            )
            for rid in members:
                self.in_flight[rid] += 1
                self.outstanding[rid] = Outstanding(step, channel, attempts[rid], retry_until)
        batches, handles = self._start(step, channel, members, retry_until)
        if not windowed:
            await self._send_as_before(channel, batches, handles)
            return []
        return await self._round(step, channel, batches, handles)

    def _settle(self, rid: str, result: c.SendResult | None) -> None:
        """A member's message on a channel has its answer (None: it was withdrawn)."""
        entry = self.outstanding.pop(rid, None)
        if entry is None:  # answered already (a withdrawal, or its batch)
            return
        if result is not None:
            entry.attempts.append(result)
        self.in_flight[rid] -= 1
        last = entry.channel == entry.step.channels[-1]
        sent = result is not None and result.state == "sent"
        if sent or last or not self.active([rid]):
            self._finish([rid])

    async def withdraw(self, members: list[str], reason: str) -> None:
        """Take members' messages out of their sends: nothing goes out after this returns.

        A message being handed to its provider right now is waited for, and recorded in
        the member's timeline as it ended; the others are recorded withdrawn in the log.
        """
        members = [rid for rid in members if rid in self.outstanding]
        if not members:
            return
        answer = await self.settle_in_store(
            [
                (rid, self.outstanding[rid].step.id, self.outstanding[rid].channel)
                for rid in members
            ],
            reason,
            "skipped",
        )
        for rid, result, gone in zip(members, answer.results, answer.withdrawn, strict=True):
            self._settle(rid, None if gone else result)

    def record_send_of(self, rid: str) -> None:
        """Write a member's entry for the send step they are in, if it is not written yet."""
        found = self.unrecorded.pop(rid, None)
        if found is not None and found[1]:
            step, attempts = found
            state, detail = send_entry(step, list(attempts))
            self.record(step.id, "send", state, [rid], **detail)

    def _finish(self, members: list[str]) -> None:
        """Members whose send step is over: its entry, then an exit or cancel that waited."""
        for rid in members:
            self.record_send_of(rid)
            if rid in self.after_send and self.in_flight[rid] <= 0:
                at, kind, outcome, detail = self.after_send.pop(rid)
                self.record(at, kind, outcome, [rid], **detail)
