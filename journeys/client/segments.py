"""Segments, as the client reads and changes them: definitions, members, manual lists.

Segments come from ``segments.yaml`` and from the API (``store.segments`` keeps those);
adding people to a manual segment starts the journeys triggered by entering it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import TypeAdapter

from definitions.conditions import Condition, SegmentCondition
from definitions.errors import InvalidRequestError, UnknownRunError
from journeys.client.checks import check_id, check_ids, check_text
from journeys.client.context import ClientContext
from journeys.client.entry import Entry
from journeys.models import RunHandle
from journeys.recipients import parse_condition
from journeys.store import PersonPage

__all__ = ["Segments"]

_CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)


class Segments:
    """Segment definitions, their members and a person's memberships.

    Args:
        context: the client's connections and settings.
        entry: where the journeys triggered by entering a segment are started.

    """

    def __init__(self, context: ClientContext, entry: Entry) -> None:
        self.context = context
        self.entry = entry

    async def segment_definitions(self) -> dict[str, SegmentCondition]:
        """Every segment: those of segments.yaml and those defined through the API."""
        found: dict[str, SegmentCondition] = {}
        for name, saved in (await self.context.store.segments.saved()).items():
            if saved["kind"] == "manual":
                found[name] = SegmentCondition(segment=name, manual=True)
            else:
                found[name] = SegmentCondition(
                    segment=name, condition=_CONDITION.validate_python(saved["condition"])
                )
        found.update(self.context.library.segments())
        return found

    async def _segment(self, name: str) -> tuple[SegmentCondition, dict[str, SegmentCondition]]:
        known = await self.segment_definitions()
        if name not in known:
            raise UnknownRunError(
                f"unknown segment {name!r}: expected one of {', '.join(sorted(known)) or 'none'}"
            )
        return known[name], known

    async def segment_members(
        self, name: str, *, after: str | None = None, limit: int = 100
    ) -> PersonPage:
        """The people in a segment, a page at a time (one SQL query per page)."""
        segment, known = await self._segment(name)
        return await self.context.store.segments.members(
            segment, after=after, limit=max(1, min(limit, 1000)), lookup=known.get
        )

    async def segment_size(self, name: str) -> int:
        """How many people are in a segment."""
        segment, known = await self._segment(name)
        return await self.context.store.segments.count(segment, lookup=known.get)

    async def memberships(self, person_id: str) -> list[str]:
        """The segments a person is in (one SQL query)."""
        check_id(person_id)
        known = await self.segment_definitions()
        return await self.context.store.segments.memberships(
            person_id, dict(known), lookup=known.get
        )

    async def define_segment(
        self,
        name: str,
        condition: Mapping[str, object] | None = None,
        *,
        manual: bool = False,
        description: str = "",
    ) -> None:
        """Define a segment through the API: a condition, or a manual list.

        Raises:
            InvalidRequestError: the condition is not valid (the message says where).

        """
        check_id(name, "name")
        if description:
            check_text(description, "description", 1024)
        if name in self.context.library.segments():
            raise InvalidRequestError([f"name: {name!r} is defined in segments.yaml"])
        if manual:
            await self.context.store.segments.save(name, "manual", None, description)
            return
        parsed = parse_condition(condition or {}, "condition")
        await self.context.store.segments.save(
            name, "dynamic", parsed.model_dump(by_alias=True, exclude_none=True), description
        )

    async def add_to_segment(self, name: str, person_ids: Sequence[str]) -> list[RunHandle]:
        """Add people to a manual segment; starts journeys triggered by entering it."""
        ids = check_ids(person_ids)
        segment, _ = await self._segment(name)
        if not segment.manual:
            raise InvalidRequestError(
                [f"segment {name!r} is not manual: its members follow from its condition"]
            )
        await self.context.store.segments.add_members(
            name, ids
        )  # creates those who have no profile
        started: list[RunHandle] = []
        for person_id in ids:
            started += await self.entry.enter_segments(person_id)
        return started

    async def remove_from_segment(self, name: str, person_ids: Sequence[str]) -> None:
        """Take people out of a manual segment."""
        ids = check_ids(person_ids)
        segment, _ = await self._segment(name)
        if not segment.manual:
            raise InvalidRequestError([f"segment {name!r} is not manual"])
        await self.context.store.segments.remove_members(name, ids)
        for person_id in ids:
            await self.entry.enter_segments(person_id)
