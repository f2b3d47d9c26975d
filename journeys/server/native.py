"""The native API: journeys, runs, people, events, segments and messages (Bearer token)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from definitions.errors import UnknownJourneyError
from journeys.client import JourneysClient
from journeys.models import TriggerHandle
from journeys.server.auth import Credentials
from journeys.server.track_api import client

__all__ = ["broadcast_router", "router"]

router = APIRouter(prefix="/v1", tags=["Native API"])
broadcast_router = APIRouter(tags=["Broadcasts (Customer.io App API)"])


def native_auth(request: Request) -> str:
    """A Bearer token of the native API."""
    credentials: Credentials = request.app.state.credentials
    return credentials.native(request)


def app_auth(request: Request) -> str:
    """The App API key."""
    credentials: Credentials = request.app.state.credentials
    return credentials.app(request)


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
    idempotency_key: str | None = Field(default=None, max_length=255)


@router.post("/journeys/{journey}/trigger", status_code=202)
async def trigger(journey: str, body: TriggerBody, client: Client, _: Auth) -> dict[str, Any]:
    """Start a journey; returns the trigger id and a run per recipient."""
    handle = await client.trigger(
        journey, body.recipients, data=body.data, idempotency_key=body.idempotency_key
    )
    return _handle(handle)


@router.get("/runs/{run_id:path}")
async def status(run_id: str, client: Client, _: Auth) -> dict[str, Any]:
    """The status of a run or of a trigger (``trg_…``)."""
    return asdict(await client.status(run_id))


@router.post("/runs/{run_id:path}/cancel")
async def cancel(run_id: str, client: Client, _: Auth) -> dict[str, Any]:
    """Cancel a run, or every run of a trigger."""
    return asdict(await client.cancel(run_id))


class IdentifyBody(BaseModel):
    """Attributes to merge into a person."""

    model_config = ConfigDict(extra="forbid")

    attributes: dict[str, Any] = Field(default_factory=dict)
    anonymous_id: str | None = None


@router.put("/people/{person_id}")
async def identify(person_id: str, body: IdentifyBody, client: Client, _: Auth) -> dict[str, Any]:
    """Create or update a person."""
    started = await client.identify(person_id, body.attributes, anonymous_id=body.anonymous_id)
    return {"started": [asdict(r) for r in started]}


@router.get("/people")
async def people(
    client: Client,
    _: Auth,
    email: str | None = None,
    attribute: Annotated[str | None, Query(description="key:value")] = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """People, a page at a time, filtered by email or ``attribute=key:value``."""
    pair = None
    if attribute is not None:
        key, _, value = attribute.partition(":")
        pair = (key, value)
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

    name: str = Field(min_length=1, max_length=255)
    person_id: str | None = None
    anonymous_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    timestamp: float | None = None
    event_id: str | None = Field(default=None, max_length=255)


@router.post("/events")
async def track(body: EventBody, client: Client, _: Auth) -> dict[str, Any]:
    """Record an event; it reaches and starts journeys."""
    from journeys.people import _time

    if body.person_id:
        result = await client.track(
            body.person_id,
            body.name,
            body.data,
            timestamp=_time(body.timestamp),
            event_id=body.event_id,
        )
    else:
        result = await client.track_anonymous(
            body.anonymous_id,
            body.name,
            body.data,
            timestamp=_time(body.timestamp),
            event_id=body.event_id,
        )
    return asdict(result)


class BatchBody(BaseModel):
    """Operations applied in order (see ``JourneysClient.batch``)."""

    operations: list[dict[str, Any]] = Field(min_length=1)


@router.post("/batch")
async def batch(body: BatchBody, client: Client, _: Auth) -> dict[str, Any]:
    """Apply operations in order, each with its own result."""
    return {"results": [asdict(r) for r in await client.batch(body.operations)]}


class SegmentBody(BaseModel):
    """A segment defined through the API: a condition, or a manual list."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
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

    id: str | None = None
    email: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class BroadcastBody(BaseModel):
    """Customer.io's broadcast trigger body."""

    ids: list[str] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    per_user_data: list[PerUser] = Field(default_factory=list)
    id_ignore_missing: bool = False


@broadcast_router.post("/v1/campaigns/{campaign_id}/triggers")
async def broadcast(
    campaign_id: str, body: BroadcastBody, client: Client, _: Annotated[str, Depends(app_auth)]
) -> dict[str, Any]:
    """Trigger a broadcast: the journey whose ``broadcast_id`` (or name) is ``campaign_id``."""
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
