"""Tracked events, applied a group at a time.

Events tracked at the same time — concurrent requests, the tracks of a batch — are
recorded together by a :class:`~journeys.store.coalesce.Coalescer`: in one transaction
(:mod:`journeys.store.events`), then the open runs of all their people read in one query,
and the trigger segments their events can change compared with the memberships last
recorded in one query. Most events change no membership, so their share of the work is a
few statements shared by the group. What an event signals and starts is then done for
that event alone, in its caller's task, exactly as if it had come by itself — while the
next group is recorded — and each caller gets its own result or its own error.

A group holds one event per person: a person's next event waits for the next group, so
a person's events are recorded in the order they came; a caller that waits for one
``track`` before the next (as a batch does) has each applied in full in that order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from definitions.plan import Plan
from definitions.values import JSONValue
from journeys.client.context import ClientContext
from journeys.client.entry import Entry
from journeys.client.runs import Runs
from journeys.models import TrackResult
from journeys.store import RunRecord
from journeys.store.coalesce import Coalescer

__all__ = ["GROUP", "Ingest"]

log = logging.getLogger("journeys.people")

GROUP = 200
"""Events applied together at most."""


@dataclass(frozen=True)
class Tracked:
    """An event to record for a person, checked."""

    person_id: str
    event: str
    data: dict[str, JSONValue]
    timestamp: datetime | None
    event_id: str | None


class Ingest:
    """Records events and signals and starts the journeys they concern, a group at a time.

    Args:
        context: the client's connections and settings.
        runs: where the person's running journeys are signalled.
        entry: where the journeys an event or a segment starts are started.

    """

    def __init__(self, context: ClientContext, runs: Runs, entry: Entry) -> None:
        self.context = context
        self.runs = runs
        self.entry = entry
        self._together: Coalescer[Tracked, _Read | TrackResult | BaseException] = Coalescer(
            self._record, most=GROUP, key=lambda one: one.person_id
        )

    async def track(self, tracked: Tracked) -> TrackResult:
        """Apply one event: recorded and read in the next group, then signalled and started.

        Raises the event's own error. What the event signals and starts is done in the
        caller's task, so the next group is recorded meanwhile.
        """
        answer = await self._together(tracked)
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, TrackResult):
            return answer
        return await self._after(tracked, answer)

    async def _record(self, group: list[Tracked]) -> list[_Read | TrackResult | BaseException]:
        """Record a group of events of different people, and read what each one needs.

        For each: what was read for it, a result (a repeat), or its error.
        """
        events = self.context.store.events
        recorded = await asyncio.gather(
            *(
                events.record(
                    one.person_id,
                    one.event,
                    one.data,
                    one.timestamp,
                    event_id=one.event_id,
                    create_person=True,
                )
                for one in group
            ),
            return_exceptions=True,
        )
        fresh = [one for one, r in zip(group, recorded, strict=True) if r is True]
        plans = self.entry.triggered()
        read: _Read
        try:
            people = [one.person_id for one in fresh]
            open_runs = await self.context.store.runs.open_of_people(people) if fresh else {}
            may_enter = await self.entry.may_have_entered(
                {one.person_id: one.event for one in fresh}, plans
            )
            read = _Read(plans, open_runs, may_enter)
        except Exception as exc:  # each event reads what it needs alone
            log.warning("reading for %d events failed (%s): each reads alone", len(fresh), exc)
            read = _Read(plans, None, None)
        answers: list[_Read | TrackResult | BaseException] = []
        for r in recorded:
            if isinstance(r, BaseException):
                answers.append(r)
            elif r is False:  # its event_id was recorded before: a repeat changes nothing
                answers.append(TrackResult(recorded=False))
            else:
                answers.append(read)
        return answers

    async def _after(self, one: Tracked, read: _Read) -> TrackResult:
        """What one recorded event signals and starts."""
        person = one.person_id
        open_runs = None if read.open_runs is None else read.open_runs.get(person, [])
        reached = await self.runs.signal_runs(person, one.event, one.data, open_runs)
        started = await self.entry.enter_event(
            person, one.event, one.data, one.timestamp, read.plans
        )
        if read.may_enter is None or person in read.may_enter:
            started += await self.entry.enter_segments(person, read.plans, event=one.event)
        return TrackResult(True, reached, started)


@dataclass(frozen=True)
class _Read:
    """What was read for a group's recorded events (None: each reads its own)."""

    plans: list[Plan]
    """The journeys that start themselves."""
    open_runs: Mapping[str, Sequence[RunRecord]] | None
    """Each person's runs not known to be closed (a person with none is absent)."""
    may_enter: set[str] | None
    """The people who may have entered a trigger segment."""
