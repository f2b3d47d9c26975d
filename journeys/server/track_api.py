"""Customer.io's Track API (v1 and the v2 batch), so its SDKs can point at journeys.

Same paths, bodies and status codes as Customer.io; HTTP Basic ``site_id:api_key``.
Identifiers in paths are person ids. Timestamps are Unix seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from journeys.client import JourneysClient
from journeys.server.auth import Credentials

__all__ = ["router"]

router = APIRouter(tags=["Customer.io Track API"])


def client(request: Request) -> JourneysClient:
    """The server's journeys client."""
    found: JourneysClient = request.app.state.client
    return found


def track_auth(request: Request) -> str:
    """HTTP Basic site id and API key."""
    credentials: Credentials = request.app.state.credentials
    return credentials.track(request)


Client = Annotated[JourneysClient, Depends(client)]
Auth = Annotated[str, Depends(track_auth)]
OK: dict[str, Any] = {}


def _time(value: int | float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


class Event(BaseModel):
    """A customer event."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=255)
    data: dict[str, Any] = Field(default_factory=dict)
    timestamp: int | None = None
    id: str | None = Field(default=None, max_length=255)
    type: Literal["event", "page", "screen"] | None = None


class AnonymousEvent(Event):
    """An event of someone not identified yet."""

    anonymous_id: str | None = Field(default=None, max_length=255)


class Device(BaseModel):
    """A device and its push token (``id``)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=4096)
    platform: Literal["ios", "android"]
    last_used: int | None = None


class DeviceBody(BaseModel):
    """``{"device": {...}}``."""

    device: Device


class Identifier(BaseModel):
    """``{"id": …}`` or ``{"email": …}`` (``cio_id`` is not supported)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    email: str | None = None


class MergeBody(BaseModel):
    """Fold ``secondary`` into ``primary``."""

    primary: Identifier
    secondary: Identifier


@router.put("/api/v1/customers/{identifier}")
async def identify(
    identifier: str, client: Client, _: Auth, attributes: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Create or update a customer; ``anonymous_id`` merges that visitor's events."""
    values = dict(attributes)
    anonymous_id = values.pop("anonymous_id", None)
    values.pop("_update", None)
    await client.identify(identifier, values, anonymous_id=anonymous_id)
    return OK


@router.delete("/api/v1/customers/{identifier}")
async def delete_customer(identifier: str, client: Client, _: Auth) -> dict[str, Any]:
    """Delete a customer and everything about them."""
    await client.delete_person(identifier)
    return OK


@router.post("/api/v1/customers/{identifier}/events")
async def track(identifier: str, event: Event, client: Client, _: Auth) -> dict[str, Any]:
    """Track an event of a customer."""
    await client.track(
        identifier, event.name, event.data, timestamp=_time(event.timestamp), event_id=event.id
    )
    return OK


@router.post("/api/v1/events")
async def track_anonymous(event: AnonymousEvent, client: Client, _: Auth) -> dict[str, Any]:
    """Track an anonymous event."""
    await client.track_anonymous(
        event.anonymous_id,
        event.name,
        event.data,
        timestamp=_time(event.timestamp),
        event_id=event.id,
    )
    return OK


@router.put("/api/v1/customers/{identifier}/devices")
async def add_device(identifier: str, body: DeviceBody, client: Client, _: Auth) -> dict[str, Any]:
    """Add or update a customer's device."""
    extra = {k: v for k, v in (body.device.model_extra or {}).items()}
    await client.add_device(
        identifier,
        body.device.id,
        body.device.platform,
        attributes=extra,
        last_used=_time(body.device.last_used),
    )
    return OK


@router.delete("/api/v1/customers/{identifier}/devices/{device_id}")
async def delete_device(identifier: str, device_id: str, client: Client, _: Auth) -> dict[str, Any]:
    """Remove a customer's device."""
    await client.remove_device(identifier, device_id)
    return OK


@router.post("/api/v1/customers/{identifier}/suppress")
async def suppress(identifier: str, client: Client, _: Auth) -> dict[str, Any]:
    """Suppress a customer: nothing is sent to them, transactional messages included."""
    await client.suppress(identifier, kind="person", reason="suppressed through the Track API")
    return OK


@router.post("/api/v1/customers/{identifier}/unsuppress")
async def unsuppress(identifier: str, client: Client, _: Auth) -> dict[str, Any]:
    """Lift a customer's suppression."""
    await client.unsuppress(identifier, kind="person")
    return OK


@router.post("/api/v1/merge_customers")
async def merge(body: MergeBody, client: Client, _: Auth) -> dict[str, Any]:
    """Merge two customers."""
    primary = await client.resolve_person(id=body.primary.id, email=body.primary.email)
    secondary = await client.resolve_person(id=body.secondary.id, email=body.secondary.email)
    await client.merge_people(primary, secondary)
    return OK


class BatchOperation(BaseModel):
    """One v2 batch operation (``type: person``)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["person"]
    action: Literal[
        "identify",
        "delete",
        "event",
        "page",
        "screen",
        "add_device",
        "delete_device",
        "suppress",
        "unsuppress",
        "merge",
    ]
    identifiers: Identifier | None = None
    attributes: dict[str, Any] | None = None
    name: str | None = None
    timestamp: int | None = None
    id: str | None = None
    device: dict[str, Any] | None = None
    primary: Identifier | None = None
    secondary: Identifier | None = None


class Batch(BaseModel):
    """``{"batch": [operations]}``."""

    batch: list[BatchOperation] = Field(min_length=1)


@router.post("/api/v2/batch")
async def batch(body: Batch, client: Client, _: Auth) -> dict[str, Any]:
    """Apply person operations in order; each gets its own result."""
    results = []
    for index, op in enumerate(body.batch):  # in order: an identify may make an email known
        [result] = await client.batch([await _native(op, client)])
        results.append(
            {"index": index, "ok": result.ok, **({"error": result.error} if result.error else {})}
        )
    return {"results": results}


async def _native(op: BatchOperation, client: JourneysClient) -> dict[str, Any]:
    """A v2 operation as a native batch operation (errors surface in its result)."""
    if op.action == "merge":
        if op.primary is None or op.secondary is None:
            return {"type": "invalid", "error": "merge needs primary and secondary"}
        try:
            primary = await client.resolve_person(id=op.primary.id, email=op.primary.email)
            secondary = await client.resolve_person(id=op.secondary.id, email=op.secondary.email)
        except Exception as exc:
            return {"type": "invalid", "error": str(exc)}
        return {"type": "merge", "primary": primary, "secondary": secondary}
    who = op.identifiers or Identifier()
    try:
        person = await client.resolve_person(
            id=who.id, email=who.email, create=op.action == "identify"
        )
    except Exception as exc:
        return {"type": "invalid", "error": str(exc)}
    if op.action == "identify":
        attributes = dict(op.attributes or {})
        return {
            "type": "identify",
            "id": person,
            "attributes": attributes,
            "anonymous_id": attributes.pop("anonymous_id", None),
        }
    if op.action in ("event", "page", "screen"):
        return {
            "type": "track",
            "id": person,
            "event": op.name or op.action,
            "data": (op.model_extra or {}).get("attributes") or op.attributes or {},
            "timestamp": op.timestamp,
            "event_id": op.id,
        }
    if op.action == "add_device":
        device = op.device or {}
        return {
            "type": "add_device",
            "id": person,
            "token": device.get("token"),
            "platform": device.get("platform"),
        }
    if op.action == "delete_device":
        return {"type": "remove_device", "id": person, "token": (op.device or {}).get("token")}
    return {"type": op.action, "id": person}
