"""The native API: journeys, runs, people, events, segments and messages (Bearer token)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from definitions.errors import UnknownJourneyError
from definitions.values import check_document, check_id, check_timestamp, require_timestamp
from journeys.client import JourneysClient
from journeys.models import TriggerHandle
from journeys.server.auth import app_auth, native_auth
from journeys.server.fields import (
    Id,
    Seconds,
    operation_problems,
    optional_document,
    optional_id,
    optional_text,
    recipient_problems,
    require,
)
from journeys.server.routing import Route
from journeys.server.track_api import client

__all__ = ["broadcast_router", "router"]

router = APIRouter(prefix="/v1", tags=["Native API"], route_class=Route)
broadcast_router = APIRouter(tags=["Broadcasts (Customer.io App API)"], route_class=Route)

Client = Annotated[JourneysClient, Depends(client)]
Auth = Annotated[str, Depends(native_auth)]


def _handle(handle: TriggerHandle) -> dict[str, Any]:
    return {
        "trigger_id": handle.trigger_id,
        "journey": handle.journey,
        "runs": [asdict(r) for r in handle.runs],
    }


class TriggerBody(BaseModel):
    """Start a journey for recipients."""

    model_config = ConfigDict(extra="forbid")

    recipients: list[Any] = Field(min_length=1)
    """Ids, or mappings with an id and profile fields (checked one by one)."""
    data: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: Id | None = None


@router.post("/journeys/{journey}/trigger", status_code=202)
async def trigger(journey: str, body: TriggerBody, client: Client, _: Auth) -> dict[str, Any]:
    """Start a journey; returns the trigger id and a run per recipient."""
    require(
        recipient_problems(body.recipients),
        check_document(body.data, "data"),
        optional_id(body.idempotency_key, "idempotency_key"),
    )
    handle = await client.trigger(
        journey, body.recipients, data=body.data, idempotency_key=body.idempotency_key
    )
    return _handle(handle)


@router.get("/runs/{run_id}")
async def status(run_id: str, client: Client, _: Auth) -> dict[str, Any]:
    """The status of a run or of a trigger (``trg_…``)."""
    return asdict(await client.status(run_id))


@router.post("/runs/{run_id}/cancel")
async def cancel(run_id: str, client: Client, _: Auth) -> dict[str, Any]:
    """Cancel a run, or every run of a trigger."""
    return asdict(await client.cancel(run_id))


class IdentifyBody(BaseModel):
    """Attributes to merge into a person."""

    model_config = ConfigDict(extra="forbid")

    attributes: dict[str, Any] = Field(default_factory=dict)
    anonymous_id: Id | None = None


@router.put("/people/{person_id}")
async def identify(person_id: str, body: IdentifyBody, client: Client, _: Auth) -> dict[str, Any]:
    """Create or update a person."""
    require(
        check_document(body.attributes, "attributes"),
        optional_id(body.anonymous_id, "anonymous_id"),
    )
    started = await client.identify(person_id, body.attributes, anonymous_id=body.anonymous_id)
    return {"started": [asdict(r) for r in started]}


_ATTRIBUTE_FILTER = '^[^".:\\u0000]+(\\.[^".:\\u0000]+)*:[^\\u0000]*$'


def _attribute_filter(attribute: str) -> tuple[str, str]:
    """``key:value`` as a pair; the key names without ``"`` (the store's JSON paths)."""
    key, colon, value = attribute.partition(":")
    if not colon or not key:
        require([f"attribute: expected key:value, found {attribute!r}"])
    if '"' in key or any(not part for part in key.split(".")):
        require([f"attribute: expected a key of names without '\"' or empty parts, found {key!r}"])
    return key, value


@router.get("/people")
async def people(
    client: Client,
    _: Auth,
    email: str | None = None,
    attribute: Annotated[
        str | None,
        Query(
            description="key:value (a dotted key reads nested attributes)",
            json_schema_extra={"pattern": _ATTRIBUTE_FILTER},
        ),
    ] = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """People, a page at a time, filtered by email or ``attribute=key:value``."""
    pair = _attribute_filter(attribute) if attribute is not None else None
    page = await client.people(email=email, attribute=pair, after=after, limit=limit)
    return {"ids": page.ids, "next": page.next}


@router.get("/people/{person_id}")
async def person(person_id: str, client: Client, _: Auth) -> dict[str, Any]:
    """A person with attributes, devices and segment memberships."""
    return asdict(await client.person(person_id))


@router.delete("/people/{person_id}")
async def delete_person(person_id: str, client: Client, _: Auth) -> dict[str, Any]:
    """Delete a person and everything about them, cancelling their journeys first."""
    return {"deleted": await client.delete_person(person_id)}


@router.get("/people/{person_id}/export")
async def export_person(person_id: str, client: Client, _: Auth) -> dict[str, Any]:
    """Everything about a person, as JSON."""
    return await client.export_person(person_id)


@router.get("/people/{person_id}/activity")
async def activity(
    person_id: str,
    client: Client,
    _: Auth,
    type: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """A person's activity feed, newest first; ``type`` (repeatable) filters it."""
    entries = await client.activity(person_id, types=type, limit=limit)
    return {"activity": [asdict(e) for e in entries]}


@router.get("/people/{person_id}/messages")
async def messages(person_id: str, client: Client, _: Auth) -> dict[str, Any]:
    """A person's messages, newest first."""
    return {"messages": [asdict(m) for m in await client.messages(recipient=person_id)]}


class EventBody(BaseModel):
    """An event of a person (``person_id``) or of an anonymous visitor (``anonymous_id``)."""

    model_config = ConfigDict(extra="forbid")

    name: Id
    person_id: Id | None = None
    anonymous_id: Id | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    timestamp: Seconds = None
    event_id: Id | None = None

    def problems(self) -> list[str]:
        """Problems with the values (what the types do not say)."""
        whose = (
            ["person_id: expected person_id or anonymous_id, found neither"]
            if self.person_id is None and self.anonymous_id is None
            else []
        )
        return [
            *whose,
            *check_id(self.name, "name"),
            *optional_id(self.person_id, "person_id"),
            *optional_id(self.anonymous_id, "anonymous_id"),
            *check_document(self.data, "data"),
            *check_timestamp(self.timestamp, "timestamp"),
            *optional_id(self.event_id, "event_id"),
        ]


@router.post("/events")
async def track(body: EventBody, client: Client, _: Auth) -> dict[str, Any]:
    """Record an event; it reaches and starts journeys."""
    require(body.problems())
    timestamp = require_timestamp(body.timestamp)
    if body.person_id is not None:
        result = await client.track(
            body.person_id, body.name, body.data, timestamp=timestamp, event_id=body.event_id
        )
    else:
        result = await client.track_anonymous(
            body.anonymous_id, body.name, body.data, timestamp=timestamp, event_id=body.event_id
        )
    return asdict(result)


class BatchBody(BaseModel):
    """Operations applied in order (see ``JourneysClient.batch``)."""

    operations: list[dict[str, Any]] = Field(min_length=1)


@router.post("/batch")
async def batch(body: BatchBody, client: Client, _: Auth) -> dict[str, Any]:
    """Apply operations in order, each with its own result (a bad value is that result)."""
    operations: list[dict[str, Any]] = []
    for index, op in enumerate(body.operations):
        problems = operation_problems(op, f"operations[{index}]")
        operations.append({"type": "invalid", "error": "; ".join(problems)} if problems else op)
    return {"results": [asdict(r) for r in await client.batch(operations)]}


class SegmentBody(BaseModel):
    """A segment defined through the API: a condition, or a manual list."""

    model_config = ConfigDict(extra="forbid")

    name: Id
    condition: dict[str, Any] | None = None
    manual: bool = False
    description: str = ""


@router.get("/segments")
async def segments(client: Client, _: Auth) -> dict[str, Any]:
    """Every segment, from segments.yaml and the API."""
    known = await client.segment_definitions()
    return {"segments": [{"name": n, "manual": s.manual} for n, s in sorted(known.items())]}


@router.post("/segments", status_code=201)
async def define_segment(body: SegmentBody, client: Client, _: Auth) -> dict[str, Any]:
    """Define (or replace) a segment."""
    require(
        check_id(body.name, "name"),
        optional_document(body.condition, "condition"),
        optional_text(body.description, "description"),
    )
    await client.define_segment(
        body.name, body.condition, manual=body.manual, description=body.description
    )
    return {"name": body.name}


@router.get("/segments/{name}/members")
async def members(
    name: str,
    client: Client,
    _: Auth,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """A segment's members, a page at a time (one SQL query a page)."""
    page = await client.segment_members(name, after=after, limit=limit)
    return {"ids": page.ids, "next": page.next}


@router.put("/segments/{name}/members/{person_id}")
async def add_member(name: str, person_id: str, client: Client, _: Auth) -> dict[str, Any]:
    """Add a person to a manual segment."""
    started = await client.add_to_segment(name, [person_id])
    return {"started": [asdict(r) for r in started]}


@router.delete("/segments/{name}/members/{person_id}")
async def remove_member(name: str, person_id: str, client: Client, _: Auth) -> dict[str, Any]:
    """Take a person out of a manual segment."""
    await client.remove_from_segment(name, [person_id])
    return {}


@router.get("/messages/{message_id:path}")
async def message(message_id: str, client: Client, _: Auth) -> dict[str, Any]:
    """One message of the log."""
    return asdict(await client.message_status(message_id))


class PerUser(BaseModel):
    """Data for one recipient of a broadcast."""

    id: Id | None = None
    email: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    def problems(self, where: str) -> list[str]:
        """Problems with the values."""
        return [
            *optional_id(self.id, f"{where}.id"),
            *optional_text(self.email, f"{where}.email"),
            *check_document(self.data, f"{where}.data"),
        ]


class BroadcastBody(BaseModel):
    """Customer.io's broadcast trigger body."""

    ids: list[Id] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    per_user_data: list[PerUser] = Field(default_factory=list)
    id_ignore_missing: bool = False

    def problems(self) -> list[str]:
        """Problems with the values."""
        problems = check_document(self.data, "data")
        for index, person_id in enumerate(self.ids):
            problems += check_id(person_id, f"ids[{index}]")
        for index, email in enumerate(self.emails):
            problems += optional_text(email, f"emails[{index}]")
        for index, item in enumerate(self.per_user_data):
            problems += item.problems(f"per_user_data[{index}]")
        return problems


@broadcast_router.post("/v1/campaigns/{campaign_id}/triggers")
async def broadcast(
    campaign_id: str, body: BroadcastBody, client: Client, _: Annotated[str, Depends(app_auth)]
) -> dict[str, Any]:
    """Trigger a broadcast: the journey whose ``broadcast_id`` (or name) is ``campaign_id``."""
    require(body.problems())
    journey = _journey_of(client, campaign_id)
    recipients: list[str] = list(body.ids)
    personal: dict[str, dict[str, Any]] = {}
    for email in body.emails:
        recipients.append(await client.resolve_person(email=email, create=True))
    for item in body.per_user_data:
        pid = await client.resolve_person(id=item.id, email=item.email, create=True)
        recipients.append(pid)
        personal[pid] = item.data
    handle = await client.trigger(
        journey, list(dict.fromkeys(recipients)), data=body.data, per_recipient_data=personal
    )
    return {"id": handle.trigger_id, **_handle(handle)}


def _journey_of(client: JourneysClient, campaign_id: str) -> str:
    names = client.library.names()
    if campaign_id in names:
        return campaign_id
    for name in names:
        plan = client.library.compile(name)
        if plan.broadcast_id is not None and str(plan.broadcast_id) == campaign_id:
            return name
    raise UnknownJourneyError(campaign_id, names)
