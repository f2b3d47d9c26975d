"""Journeys that start themselves: on an event, or when a person enters a segment.

Each starts within its ``entry`` rule (``once``, ``every_time``, ``at_most_once_per``);
:class:`~journeys.client.people.People` and :class:`~journeys.client.segments.Segments`
call here after every change that may start one.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from definitions.compile_context import TEMPLATES_DIR
from definitions.conditions import Condition, SegmentCondition
from definitions.errors import DefinitionError
from definitions.plan import Plan
from definitions.values import JSONValue
from journeys.client.context import ClientContext
from journeys.client.runs import Runs
from journeys.client.watch import Watch, watch
from journeys.models import RunHandle
from journeys.store import TriggerRecord

__all__ = ["Entry"]

log = logging.getLogger("journeys.people")


class Entry:
    """Starting the journeys whose ``trigger`` is an event or a segment.

    Args:
        context: the client's connections and settings.
        runs: where runs are started.

    """

    def __init__(self, context: ClientContext, runs: Runs) -> None:
        self.context = context
        self.runs = runs
        self._triggered: tuple[object, list[Plan], dict[str, Watch]] | None = None

    def triggered(self) -> list[Plan]:
        """The journeys that start themselves: on an event or on entering a segment.

        Compiled again only when a file of the journeys directory (or its templates)
        is added, removed or modified; otherwise the last answer is reused.
        """
        stamp = _stamp(self.context.library.directory)
        cached = self._triggered
        if cached is not None and cached[0] == stamp:
            return cached[1]
        plans = self._compile_triggered()
        watches = {
            p.trigger_segment.segment: watch(p.trigger_segment)
            for p in plans
            if isinstance(p.trigger_segment, SegmentCondition)
        }
        self._triggered = (stamp, plans, watches)
        return plans

    def _watches(self) -> dict[str, Watch]:
        """What can change each trigger segment (of the last :meth:`triggered`)."""
        if self._triggered is None:
            self.triggered()
        assert self._triggered is not None
        return self._triggered[2]

    def _compile_triggered(self) -> list[Plan]:
        plans = []
        for name in self.context.library.names():
            try:
                plan = self.context.library.compile(name)
            except DefinitionError as exc:
                log.warning("journey %s is skipped for triggers: %s", name, exc)
                continue
            if plan.trigger_event or plan.trigger_segment:
                plans.append(plan)
        return plans

    async def _may_enter(self, plan: Plan, person_id: str) -> bool:
        if plan.entry == "every_time":
            return True
        last = await self.context.store.runs.last_started(plan.journey, person_id)
        if last is None:
            return True
        if plan.entry == "interval" and plan.entry_interval is not None:
            return datetime.now(UTC) - last >= timedelta(seconds=plan.entry_interval)
        return False

    async def _enter(
        self,
        plans: list[Plan],
        person_id: str,
        data: Mapping[str, JSONValue],
        event: Mapping[str, JSONValue] | None,
        cause: str,
    ) -> list[RunHandle]:
        started = []
        for plan in plans:
            if not await self._may_enter(plan, person_id):
                continue
            record = TriggerRecord(
                f"trg_{secrets.token_hex(8)}",
                plan.journey,
                {"cause": cause, **data},
                datetime.now(UTC),
            )
            record = await self.context.store.runs.save_trigger(record)
            handle = await self.runs.start(plan, record, person_id, {}, event)
            if handle.started:
                started.append(handle)
        return started

    async def enter_event(
        self,
        person_id: str,
        event: str,
        data: dict[str, JSONValue],
        timestamp: datetime | None,
        triggered: list[Plan],
    ) -> list[RunHandle]:
        """Start the journeys ``event`` triggers, each within its entry rule."""
        plans = [p for p in triggered if p.trigger_event == event]
        if not plans:
            return []
        at = (timestamp or datetime.now(UTC)).isoformat()
        return await self._enter(
            plans, person_id, {}, {"name": event, "data": data, "timestamp": at}, f"event {event}"
        )

    async def enter_segments(
        self, person_id: str, triggered: list[Plan] | None = None, *, event: str | None = None
    ) -> list[RunHandle]:
        """Start the journeys of the trigger segments the person has just entered.

        Args:
            person_id: the person.
            triggered: the self-starting journeys, when the caller has them already.
            event: the name of the event just recorded, when that is the change: only the
                segments it can change are evaluated (:mod:`journeys.client.watch`).

        """
        plans, watched = self._segment_plans(triggered, event)
        if not plans:
            return []
        entered = await self.context.store.segments.entered(person_id, watched)
        started = []
        for segment in sorted(entered):
            chosen = [p for p in plans if p.trigger_segment.segment == segment]  # type: ignore[union-attr]
            started += await self._enter(
                chosen, person_id, {}, {"segment": segment}, f"segment {segment}"
            )
        return started

    async def may_have_entered(self, events: Mapping[str, str], triggered: list[Plan]) -> set[str]:
        """Of these people (id → the event just recorded for them), who may have entered.

        The others entered no trigger segment and need no :meth:`enter_segments`. One
        read for them all, of the segments each one's event can change.
        """
        by_event = {e: self._segment_plans(triggered, e)[1] for e in set(events.values())}
        wanted = {person: by_event[e] for person, e in events.items() if by_event[e]}
        if not wanted:
            return set()
        return await self.context.store.segments.changed(wanted)

    def _segment_plans(
        self, triggered: list[Plan] | None, event: str | None
    ) -> tuple[list[Plan], dict[str, Condition]]:
        """The journeys started by entering a segment ``event`` can change; the segments.

        ``event`` None: any change (every trigger segment).
        """
        everyone = self.triggered() if triggered is None else triggered
        watches = self._watches() if event is not None else {}
        plans = [
            p
            for p in everyone
            if p.trigger_segment is not None
            and (
                event is None
                or not isinstance(p.trigger_segment, SegmentCondition)
                or p.trigger_segment.segment not in watches
                or watches[p.trigger_segment.segment].changed_by(event)
            )
        ]
        watched: dict[str, Condition] = {}
        for p in plans:
            if p.trigger_segment is not None:
                watched[p.trigger_segment.segment] = p.trigger_segment  # type: ignore[union-attr]
        return plans, watched


def _stamp(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """The journeys directory's and its templates' files, with their times and sizes."""
    found: list[tuple[str, int, int]] = []
    for folder in (directory, directory / TEMPLATES_DIR):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat()
            except OSError:
                continue
            found.append((entry.path, info.st_mtime_ns, info.st_size))
    return tuple(sorted(found))
