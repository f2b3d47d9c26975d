"""People, events, devices, segments and journey entry, as methods of the client.

Mixed into :class:`journeys.client.JourneysClient`; every operation here can also start
journeys: an event starts the journeys whose ``trigger`` is that event, and a change that
puts a person into a segment starts the journeys triggered by entering it — each within
its ``entry`` rule (``once``, ``every_time``, ``at_most_once_per``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.service import RPCError

from definitions.conditions import Condition, SegmentCondition
from definitions.errors import (
    DefinitionError,
    InvalidRequestError,
    JourneysError,
    UnknownRunError,
)
from definitions.plan import Plan
from definitions.values import check_json, check_text, require_id, require_timestamp
from journeys.models import RunHandle
from journeys.recipients import check_data, parse_condition
from journeys.store import PersonPage, Store, TriggerRecord

if TYPE_CHECKING:
    from definitions.compiler import Library

__all__ = [
    "ActivityEntry",
    "BatchResult",
    "PeopleMixin",
    "Person",
    "TrackResult",
]

log = logging.getLogger("journeys.people")
_CONDITION: TypeAdapter[Any] = TypeAdapter(Condition)


@dataclass(frozen=True)
class TrackResult:
    """What recording an event did."""

    recorded: bool
    """False when an event with the same ``event_id`` was recorded before."""
    reached: int = 0
    """Running journeys of the person the event was sent to."""
    started: list[RunHandle] = field(default_factory=list)
    """Journeys the event (or a segment it put the person in) started."""


@dataclass(frozen=True)
class Person:
    """A person as the store knows them."""

    id: str
    attributes: dict[str, Any]
    created_at: datetime | None
    devices: list[dict[str, Any]]
    segments: list[str]


@dataclass(frozen=True)
class ActivityEntry:
    """One item of a person's activity feed."""

    type: str
    """``event``, ``journey_entered``, ``journey_left`` or ``message``."""
    at: datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class BatchResult:
    """The outcome of one operation of a batch."""

    index: int
    ok: bool
    error: str | None = None
    started: list[str] = field(default_factory=list)
    """Run ids of journeys the operation started."""


def _check_id(value: Any, what: str = "id") -> str:
    return require_id(value, what)


def _check_ids(values: Any) -> list[str]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise InvalidRequestError([f"ids: expected a list of ids, found {type(values).__name__}"])
    return [_check_id(p, f"ids[{i}]") for i, p in enumerate(values)]


def _check_event(value: Any) -> str:
    """An event name: the rules of ids (text, 1 to 255 characters, no control characters)."""
    return require_id(value, "event")


def _check_text(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        shown = f"{len(value)} characters" if isinstance(value, str) else repr(value)[:40]
        raise InvalidRequestError(
            [f"{what}: expected text of 1 to {limit} characters, found {shown}"]
        )
    problems = check_text(value, what)
    if problems:
        raise InvalidRequestError(problems)
    return value


class PeopleMixin:
    """People operations of :class:`~journeys.client.JourneysClient`."""

    store: Store
    library: Library

    if TYPE_CHECKING:  # provided by JourneysClient

        async def _start(
            self,
            plan: Any,
            trigger: TriggerRecord,
            recipient_id: str,
            data: dict[str, Any],
            event: dict[str, Any] | None = None,
        ) -> RunHandle: ...

        async def signal_runs(self, recipient_id: str, event: str, data: dict[str, Any]) -> int: ...

        async def cancel(self, run_or_trigger_id: str, *, wait: timedelta = ...) -> Any: ...

        @property
        def temporal(self) -> Any: ...

    # -- identify and track ----------------------------------------------------------------

    async def identify(
        self,
        person_id: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        anonymous_id: str | None = None,
    ) -> list[RunHandle]:
        """Create or update a person: attributes merge, ``created_at`` is kept.

        The merge is shallow (a key given replaces that key) and atomic: concurrent
        identifies of the same person all hold. A ``devices`` attribute (``[{token,
        platform}]`` or tokens) registers those devices, as :meth:`add_device` does. With
        ``anonymous_id``, the events that anonymous visitor did become this person's.
        Returns the journeys this started (by putting the person into a segment).
        """
        _check_id(person_id)
        values = check_data(attributes, "attributes")
        if anonymous_id is not None:
            _check_id(anonymous_id, "anonymous_id")
        await self.store.profiles.identify(person_id, values, anonymous_id=anonymous_id)
        return await self._enter_segments(person_id)

    async def track(
        self,
        person_id: str,
        event: str,
        data: Mapping[str, Any] | None = None,
        *,
        timestamp: datetime | None = None,
        event_id: str | None = None,
    ) -> TrackResult:
        """Record an event for a person; signal and start the journeys it concerns.

        The event goes to the person's running journeys, and starts the journeys it
        triggers. A person who has no profile yet gets an empty one. An ``event_id`` seen before
        makes this a no-op (safe retries).
        """
        _check_id(person_id)
        _check_event(event)
        payload = check_data(data)
        timestamp = _time(timestamp)
        if event_id is not None:
            _check_id(event_id, "event_id")
        recorded = await self.store.events.record(
            person_id, event, payload, timestamp, event_id=event_id, create_person=True
        )
        if recorded is None:
            return TrackResult(recorded=False)
        reached = await self.signal_runs(person_id, event, payload)
        plans = self._triggered()
        started = await self._enter_event(person_id, event, payload, timestamp, plans)
        started += await self._enter_segments(person_id, plans)
        return TrackResult(True, reached, started)

    async def track_anonymous(
        self,
        anonymous_id: str | None,
        event: str,
        data: Mapping[str, Any] | None = None,
        *,
        timestamp: datetime | None = None,
        event_id: str | None = None,
    ) -> TrackResult:
        """Record an event of an anonymous visitor; it joins their person on identify."""
        _check_id(anonymous_id, "anonymous_id")
        _check_event(event)
        payload = check_data(data)
        timestamp = _time(timestamp)
        if event_id is not None:
            _check_id(event_id, "event_id")
        recorded = await self.store.events.record(
            None,
            event,
            payload,
            timestamp,
            anonymous_id=anonymous_id,
            event_id=event_id,
        )
        return TrackResult(recorded is not None)

    # -- people --------------------------------------------------------------------------------

    async def person(self, person_id: str) -> Person:
        """A person with their attributes, devices and segment memberships.

        Raises:
            UnknownRunError: no such person.

        """
        _check_id(person_id)
        profile = await self.store.profiles.get(person_id)
        if profile is None:
            raise UnknownRunError(f"unknown person {person_id!r}")
        devices = list(profile.pop("devices", []) or [])
        profile.pop("id", None)
        return Person(
            person_id,
            profile,
            await self.store.profiles.created_at(person_id),
            devices,
            await self.memberships(person_id),
        )

    async def people(
        self,
        *,
        email: str | None = None,
        attribute: tuple[str, Any] | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> PersonPage:
        """People in id order, a page at a time, filtered by email or an attribute value."""
        if email is not None:
            _check_text(email, "email", 320)
        if attribute is not None:
            if not isinstance(attribute, tuple) or len(attribute) != 2:
                raise InvalidRequestError(["attribute: expected (name, value)"])
            _check_text(attribute[0], "attribute", 255)
            if '"' in attribute[0]:
                raise InvalidRequestError(["attribute: expected a name without '\"'"])
            problems = check_json(attribute[1], f"attribute {attribute[0]}")
            if problems:
                raise InvalidRequestError(problems)
        if after is not None:
            _check_id(after, "after")
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidRequestError([f"limit: expected a whole number, found {limit!r}"])
        return await self.store.profiles.page(
            email=email, attribute=attribute, after=after, limit=max(1, min(limit, 1000))
        )

    async def resolve_person(
        self, *, id: str | None = None, email: str | None = None, create: bool = False
    ) -> str:
        """A person's id from an id or an email (Customer.io's identifiers).

        Raises:
            UnknownRunError: the email belongs to nobody (and ``create`` is False).

        """
        if id:
            return _check_id(id)
        if not email:
            raise InvalidRequestError(["identifiers: expected 'id' or 'email', found neither"])
        found = await self.store.profiles.find_by_email(email)
        if found is None:
            if not create:
                raise UnknownRunError(f"no person with email {email!r}")
            await self.store.profiles.upsert([(email, {"email": email})])
            return email
        return found

    async def delete_person(self, person_id: str) -> bool:
        """Delete a person and everything about them (GDPR erasure).

        Their running journeys are cancelled first, and every run of theirs is deleted from
        Temporal too, so no history keeps their data (a cohort's history, shared with other
        recipients, keeps their id until its retention ends). Returns False if they did not
        exist.
        """
        _check_id(person_id)
        runs = await self.store.runs.of_person(person_id)
        for run in runs:
            if not run.closed:
                await self.cancel(run.run_id)
        for run in runs:
            if run.member:
                # A cohort's history is shared with its other recipients: it is not
                # deleted; it keeps this id until the namespace's retention removes it.
                continue
            try:
                await self.temporal.workflow_service.delete_workflow_execution(
                    DeleteWorkflowExecutionRequest(
                        namespace=self.temporal.namespace,
                        workflow_execution=WorkflowExecution(
                            workflow_id=run.workflow_id, run_id=run.run_id
                        ),
                    )
                )
            except RPCError as exc:
                log.warning("could not delete run %s of %s: %s", run.run_id, person_id, exc)
        return await self.store.profiles.delete(person_id)

    async def export_person(self, person_id: str) -> dict[str, Any]:
        """Everything the store holds about a person, as JSON-ready data (GDPR access).

        Raises:
            UnknownRunError: no such person.

        """
        person = await self.person(person_id)
        prefs = await self.store.consent.preferences(person_id)
        messages = await self.store.messages.find(recipient_id=person_id, limit=100000)
        exported: dict[str, Any] = _jsonable(
            {
                "person": {
                    "id": person.id,
                    "attributes": person.attributes,
                    "created_at": person.created_at,
                },
                "devices": person.devices,
                "segments": person.segments,
                "events": await self.store.events.of_person(person_id, limit=100000),
                "messages": [asdict(m) for m in messages],
                "preferences": asdict(prefs),
                "runs": [asdict(r) for r in await self.store.runs.of_person(person_id)],
            }
        )
        return exported

    async def merge_people(self, primary: str, secondary: str) -> None:
        """Fold ``secondary`` into ``primary`` (attributes, events, messages, devices…).

        ``secondary``'s running journeys are cancelled: they ran for a person who no longer
        exists.
        """
        _check_id(primary, "primary")
        _check_id(secondary, "secondary")
        if primary == secondary:
            return
        for run in await self.store.runs.open_of(secondary):
            await self.cancel(run.run_id)
        await self.store.profiles.merge(primary, secondary)
        await self._enter_segments(primary)

    async def add_device(
        self,
        person_id: str,
        token: str,
        platform: str,
        *,
        attributes: Mapping[str, Any] | None = None,
        last_used: datetime | None = None,
    ) -> None:
        """Register a push token for a person."""
        _check_id(person_id)
        _check_text(token, "device id", 4096)
        _check_text(platform, "platform", 32)
        extra = check_data(attributes, "device")
        used = _time(last_used, "last_used")
        await self.store.profiles.add_device(person_id, token, platform, extra, used)

    async def remove_device(self, person_id: str, token: str) -> None:
        """Forget a push token."""
        _check_id(person_id)
        _check_text(token, "device id", 4096)
        await self.store.profiles.remove_device(person_id, token)

    async def activity(
        self, person_id: str, *, types: Sequence[str] | None = None, limit: int = 100
    ) -> list[ActivityEntry]:
        """A person's activity feed, newest first.

        Events, journeys entered and left, and messages with their states; ``types`` keeps
        only some of them.
        """
        _check_id(person_id)
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
                for e in await self.store.events.of_person(person_id, limit=limit)
            ]
        if wanted & {"journey_entered", "journey_left"}:
            for run in await self.store.runs.of_person(person_id):
                detail = {"journey": run.journey, "run_id": run.run_id}
                if "journey_entered" in wanted:
                    entries.append(ActivityEntry("journey_entered", run.started_at, detail))
                if "journey_left" in wanted:
                    handle = self.temporal.get_workflow_handle(run.workflow_id, run_id=run.run_id)
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
            for m in await self.store.messages.find(recipient_id=person_id, limit=limit):
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

    async def batch(self, operations: Sequence[Mapping[str, Any]]) -> list[BatchResult]:
        """Apply operations in order, each with its own result.

        Types: identify, track, track_anonymous, delete, add_device, remove_device,
        suppress, unsuppress, merge.
        """
        results = []
        for index, op in enumerate(operations):
            try:
                started = await self._apply(op)
            except InvalidRequestError as exc:
                results.append(BatchResult(index, False, "; ".join(exc.problems) or str(exc)))
                continue
            except (JourneysError, ValueError, KeyError, TypeError) as exc:
                message = str(exc.args[0]) if isinstance(exc, KeyError) else str(exc)
                results.append(BatchResult(index, False, message))
                continue
            except Exception:  # one operation's failure is its own result, never the batch's
                log.exception("batch operation %d (%s) failed", index, op.get("type"))
                results.append(BatchResult(index, False, "internal error: see the server log"))
                continue
            results.append(BatchResult(index, True, None, [r.run_id for r in started]))
        return results

    async def _apply(self, op: Mapping[str, Any]) -> list[RunHandle]:
        kind = op.get("type")
        if kind == "invalid":
            raise ValueError(op.get("error") or "invalid operation")
        if kind == "identify":
            return await self.identify(
                op["id"], op.get("attributes") or {}, anonymous_id=op.get("anonymous_id")
            )
        if kind == "track":
            result = await self.track(
                op["id"],
                op["event"],
                op.get("data"),
                timestamp=require_timestamp(op.get("timestamp")),
                event_id=op.get("event_id"),
            )
            return result.started
        if kind == "track_anonymous":
            await self.track_anonymous(
                op.get("anonymous_id"),
                op["event"],
                op.get("data"),
                timestamp=require_timestamp(op.get("timestamp")),
                event_id=op.get("event_id"),
            )
            return []
        if kind == "delete":
            await self.delete_person(_check_id(op["id"]))
            return []
        if kind == "add_device":
            await self.add_device(
                op["id"],
                op["token"],
                op.get("platform") or "unknown",
                attributes=op.get("attributes"),
            )
            return []
        if kind == "remove_device":
            await self.remove_device(_check_id(op["id"]), _check_id(op["token"], "token"))
            return []
        if kind in ("suppress", "unsuppress"):
            if kind == "suppress":
                await self.store.consent.suppress(
                    "person", _check_id(op["id"]), op.get("reason") or "suppressed through the API"
                )
            else:
                await self.store.consent.unsuppress("person", _check_id(op["id"]))
            return []
        if kind == "merge":
            await self.merge_people(op["primary"], op["secondary"])
            return []
        raise ValueError(
            f"type: expected identify, track, track_anonymous, delete, "
            f"add_device, remove_device, suppress, unsuppress or merge, "
            f"found {kind!r}"
        )

    # -- segments --------------------------------------------------------------------------

    async def segment_definitions(self) -> dict[str, SegmentCondition]:
        """Every segment: those of segments.yaml and those defined through the API."""
        found: dict[str, SegmentCondition] = {}
        for name, saved in (await self.store.segments.saved()).items():
            if saved["kind"] == "manual":
                found[name] = SegmentCondition(segment=name, manual=True)
            else:
                found[name] = SegmentCondition(
                    segment=name, condition=_CONDITION.validate_python(saved["condition"])
                )
        found.update(self.library.segments())
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
        return await self.store.segments.members(
            segment, after=after, limit=max(1, min(limit, 1000)), lookup=known.get
        )

    async def segment_size(self, name: str) -> int:
        """How many people are in a segment."""
        segment, known = await self._segment(name)
        return await self.store.segments.count(segment, lookup=known.get)

    async def memberships(self, person_id: str) -> list[str]:
        """The segments a person is in (one SQL query)."""
        _check_id(person_id)
        known = await self.segment_definitions()
        return await self.store.segments.memberships(person_id, dict(known), lookup=known.get)

    async def define_segment(
        self,
        name: str,
        condition: Mapping[str, Any] | None = None,
        *,
        manual: bool = False,
        description: str = "",
    ) -> None:
        """Define a segment through the API: a condition, or a manual list.

        Raises:
            InvalidRequestError: the condition is not valid (the message says where).

        """
        _check_id(name, "name")
        if description:
            _check_text(description, "description", 1024)
        if name in self.library.segments():
            raise InvalidRequestError([f"name: {name!r} is defined in segments.yaml"])
        if manual:
            await self.store.segments.save(name, "manual", None, description)
            return
        parsed = parse_condition(condition or {}, "condition")
        await self.store.segments.save(
            name, "dynamic", parsed.model_dump(by_alias=True, exclude_none=True), description
        )

    async def add_to_segment(self, name: str, person_ids: Sequence[str]) -> list[RunHandle]:
        """Add people to a manual segment; starts journeys triggered by entering it."""
        ids = _check_ids(person_ids)
        segment, _ = await self._segment(name)
        if not segment.manual:
            raise InvalidRequestError(
                [f"segment {name!r} is not manual: its members follow from its condition"]
            )
        await self.store.segments.add_members(name, ids)  # creates those who have no profile
        started: list[RunHandle] = []
        for person_id in ids:
            started += await self._enter_segments(person_id)
        return started

    async def remove_from_segment(self, name: str, person_ids: Sequence[str]) -> None:
        """Take people out of a manual segment."""
        ids = _check_ids(person_ids)
        segment, _ = await self._segment(name)
        if not segment.manual:
            raise InvalidRequestError([f"segment {name!r} is not manual"])
        await self.store.segments.remove_members(name, ids)
        for person_id in ids:
            await self._enter_segments(person_id)

    # -- entry -------------------------------------------------------------------------------

    def _triggered(self) -> list[Plan]:
        plans = []
        for name in self.library.names():
            try:
                plan = self.library.compile(name)
            except DefinitionError as exc:
                log.warning("journey %s is skipped for triggers: %s", name, exc)
                continue
            if plan.trigger_event or plan.trigger_segment:
                plans.append(plan)
        return plans

    async def _may_enter(self, plan: Plan, person_id: str) -> bool:
        if plan.entry == "every_time":
            return True
        last = await self.store.runs.last_started(plan.journey, person_id)
        if last is None:
            return True
        if plan.entry == "interval" and plan.entry_interval is not None:
            return datetime.now(UTC) - last >= timedelta(seconds=plan.entry_interval)
        return False

    async def _enter(
        self,
        plans: list[Plan],
        person_id: str,
        data: dict[str, Any],
        event: dict[str, Any] | None,
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
            record = await self.store.runs.save_trigger(record)
            handle = await self._start(plan, record, person_id, {}, event)
            if handle.started:
                started.append(handle)
        return started

    async def _enter_event(
        self,
        person_id: str,
        event: str,
        data: dict[str, Any],
        timestamp: datetime | None,
        triggered: list[Plan],
    ) -> list[RunHandle]:
        plans = [p for p in triggered if p.trigger_event == event]
        if not plans:
            return []
        at = (timestamp or datetime.now(UTC)).isoformat()
        return await self._enter(
            plans, person_id, {}, {"name": event, "data": data, "timestamp": at}, f"event {event}"
        )

    async def _enter_segments(
        self, person_id: str, triggered: list[Plan] | None = None
    ) -> list[RunHandle]:
        """Start the journeys of the trigger segments the person has just entered.

        Args:
            person_id: the person.
            triggered: the self-starting journeys, when the caller has them already.

        """
        plans = [
            p
            for p in (self._triggered() if triggered is None else triggered)
            if p.trigger_segment is not None
        ]
        if not plans:
            return []
        watched = {
            p.trigger_segment.segment: p.trigger_segment  # type: ignore[union-attr]
            for p in plans
        }
        entered = await self.store.segments.entered(person_id, dict(watched))
        started = []
        for segment in sorted(entered):
            chosen = [p for p in plans if p.trigger_segment.segment == segment]  # type: ignore[union-attr]
            started += await self._enter(
                chosen, person_id, {}, {"segment": segment}, f"segment {segment}"
            )
        return started


def _time(value: Any, what: str = "timestamp") -> datetime | None:
    return require_timestamp(value, what)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
