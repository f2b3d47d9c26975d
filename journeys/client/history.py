"""A person's history: their activity feed, and everything kept about them (GDPR access)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from temporalio.service import RPCError

from definitions.errors import InvalidRequestError
from definitions.values import JSONValue
from journeys.client.checks import check_id
from journeys.client.context import ClientContext
from journeys.client.people import People

__all__ = ["ActivityEntry", "History"]


@dataclass(frozen=True)
class ActivityEntry:
    """One item of a person's activity feed."""

    type: str
    """``event``, ``journey_entered``, ``journey_left`` or ``message``."""
    at: datetime
    detail: dict[str, JSONValue]


class History:
    """What happened to a person, read back.

    Args:
        context: the client's connections and settings.
        people: where the person is read.

    """

    def __init__(self, context: ClientContext, people: People) -> None:
        self.context = context
        self.people = people

    async def activity(
        self, person_id: str, *, types: Sequence[str] | None = None, limit: int = 100
    ) -> list[ActivityEntry]:
        """A person's activity feed, newest first.

        Events, journeys entered and left, and messages with their states; ``types`` keeps
        only some of them.
        """
        check_id(person_id)
        kinds = ("event", "journey_entered", "journey_left", "message")
        wanted = set(types or kinds)
        if not wanted <= set(kinds):
            unknown = ", ".join(sorted(repr(t) for t in wanted - set(kinds)))
            raise InvalidRequestError(
                [f"types: expected some of {', '.join(kinds)}, found {unknown}"]
            )
        entries: list[ActivityEntry] = []
        if "event" in wanted:
            entries += [
                ActivityEntry("event", e["timestamp"], {"name": e["name"], "data": e["data"]})
                for e in await self.context.store.events.of_person(person_id, limit=limit)
            ]
        if wanted & {"journey_entered", "journey_left"}:
            for run in await self.context.store.runs.of_person(person_id):
                detail: dict[str, JSONValue] = {"journey": run.journey, "run_id": run.run_id}
                if "journey_entered" in wanted:
                    entries.append(ActivityEntry("journey_entered", run.started_at, detail))
                if "journey_left" in wanted:
                    handle = self.context.temporal.get_workflow_handle(
                        run.workflow_id, run_id=run.run_id
                    )
                    try:
                        described = await handle.describe()
                    except RPCError:
                        continue
                    if described.close_time is not None:
                        state = described.status.name.lower() if described.status else ""
                        entries.append(
                            ActivityEntry(
                                "journey_left", described.close_time, {**detail, "status": state}
                            )
                        )
        if "message" in wanted:
            for m in await self.context.store.messages.find(recipient_id=person_id, limit=limit):
                entries.append(
                    ActivityEntry(
                        "message",
                        m.updated_at or m.created_at or datetime.now(UTC),
                        {
                            "id": m.id,
                            "channel": m.channel,
                            "step": m.step,
                            "state": m.state,
                            "reason": m.reason,
                            "address": m.address,
                        },
                    )
                )
        entries.sort(key=lambda e: e.at, reverse=True)
        return entries[:limit]

    async def export_person(self, person_id: str) -> dict[str, JSONValue]:
        """Everything the store holds about a person, as JSON-ready data (GDPR access).

        Raises:
            UnknownRunError: no such person.

        """
        person = await self.people.person(person_id)
        prefs = await self.context.store.consent.preferences(person_id)
        messages = await self.context.store.messages.find(recipient_id=person_id, limit=100000)
        exported = _jsonable(
            {
                "person": {
                    "id": person.id,
                    "attributes": person.attributes,
                    "created_at": person.created_at,
                },
                "devices": person.devices,
                "segments": person.segments,
                "events": await self.context.store.events.of_person(person_id, limit=100000),
                "messages": [asdict(m) for m in messages],
                "preferences": asdict(prefs),
                "runs": [asdict(r) for r in await self.context.store.runs.of_person(person_id)],
            }
        )
        assert isinstance(exported, dict)  # a dict comes back as a dict
        return exported


def _jsonable(value: object) -> JSONValue:
    """``value`` with its datetimes as ISO text: the store holds JSON values and datetimes."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"expected a JSON value or a datetime, found {type(value).__name__}")
