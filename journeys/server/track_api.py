"""Customer.io's Track API (v1 and the v2 batch), so its SDKs can point at journeys.

Same paths, bodies and status codes as Customer.io; HTTP Basic ``site_id:api_key``.
Identifiers in paths are person ids (any text; ``/`` percent-encoded). Timestamps are Unix
seconds (Customer.io's unit): one in milliseconds is refused, naming the field.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Request
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from definitions.errors import InvalidRequestError, UnknownRunError
from definitions.values import check_document, check_id, check_timestamp, require_timestamp
from journeys.client import JourneysClient
from journeys.server.auth import track_auth
from journeys.server.fields import (
    Id,
    Seconds,
    operation_problems,
    optional_document,
    optional_id,
    optional_text,
    require,
)
from journeys.server.routing import Route

__all__ = ["router"]

router = APIRouter(tags=["Customer.io Track API"], route_class=Route)
log = logging.getLogger("journeys.server")


async def client(request: Request) -> JourneysClient:
    """The server's journeys client."""
    found: JourneysClient = request.app.state.client
    return found


Client = Annotated[JourneysClient, Depends(client)]
Auth = Annotated[str, Depends(track_auth)]
OK: dict[str, Any] = {}


class Event(BaseModel):
    """A customer event."""

    model_config = ConfigDict(extra="allow")

    name: Id
    data: dict[str, Any] = Field(default_factory=dict)
    timestamp: Seconds = None
    id: Id | None = None
    """Recorded once: the same id again is a no-op."""
    type: Literal["event", "page", "screen"] | None = None

    def problems(self) -> list[str]:
        """Problems with the values (what the types do not say)."""
        return [
            *check_id(self.name, "name"),
            *check_document(self.data, "data"),
            *check_timestamp(self.timestamp, "timestamp"),
            *optional_id(self.id, "id"),
        ]


class AnonymousEvent(Event):
    """An event of someone not identified yet."""

    anonymous_id: Id | None = None

    def problems(self) -> list[str]:
        """Problems with the values, ``anonymous_id`` included."""
        return [*super().problems(), *optional_id(self.anonymous_id, "anonymous_id")]


class Device(BaseModel):
    """A device and its push token (``id``)."""

    model_config = ConfigDict(extra="allow")

    id: Id
    platform: Literal["ios", "android"]
    last_used: Seconds = None


class DeviceBody(BaseModel):
    """``{"device": {...}}``."""

    device: Device


class Identifier(BaseModel):
    """``{"id": …}`` or ``{"email": …}`` (``cio_id`` is not supported)."""

    model_config = ConfigDict(extra="forbid")

    id: Id | None = None
    email: str | None = None

    def problems(self, where: str) -> list[str]:
        """Problems with the values."""
        return [*optional_id(self.id, f"{where}.id"), *optional_text(self.email, f"{where}.email")]


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
    require(check_document(values, "body"), optional_id(anonymous_id, "anonymous_id"))
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
    require(event.problems())
    await client.track(
        identifier,
        event.name,
        event.data,
        timestamp=require_timestamp(event.timestamp),
        event_id=event.id,
    )
    return OK


@router.post("/api/v1/events")
async def track_anonymous(event: AnonymousEvent, client: Client, _: Auth) -> dict[str, Any]:
    """Track an anonymous event."""
    require(event.problems())
    await client.track_anonymous(
        event.anonymous_id,
        event.name,
        event.data,
        timestamp=require_timestamp(event.timestamp),
        event_id=event.id,
    )
    return OK


@router.put("/api/v1/customers/{identifier}/devices")
async def add_device(identifier: str, body: DeviceBody, client: Client, _: Auth) -> dict[str, Any]:
    """Add or update a customer's device."""
    extra = dict(body.device.model_extra or {})
    require(
        check_id(body.device.id, "device.id"),
        check_timestamp(body.device.last_used, "device.last_used"),
        check_document(extra, "device"),
    )
    await client.add_device(
        identifier,
        body.device.id,
        body.device.platform,
        attributes=extra,
        last_used=require_timestamp(body.device.last_used, "device.last_used"),
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


@router.post(
    "/api/v1/merge_customers",
    responses={404: {"description": "No person has the email of an identifier."}},
)
async def merge(body: MergeBody, client: Client, _: Auth) -> dict[str, Any]:
    """Merge two customers."""
    require(body.primary.problems("primary"), body.secondary.problems("secondary"))
    primary = await client.resolve_person(id=body.primary.id, email=body.primary.email)
    secondary = await client.resolve_person(id=body.secondary.id, email=body.secondary.email)
    await client.merge_people(primary, secondary)
    return OK


class BatchOperation(BaseModel):
    """One v2 batch operation (``type: person``).

    One that does not fit this schema does not refuse the batch: it gets an error as its
    own result, and the others are applied.
    """

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
    name: Id | None = None
    timestamp: Seconds = None
    id: Id | None = None
    device: dict[str, Any] | None = None
    primary: Identifier | None = None
    secondary: Identifier | None = None

    _malformed: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_malformed(
        cls, data: object, handler: ModelWrapValidatorHandler[BatchOperation]
    ) -> BatchOperation:
        try:
            return handler(data)
        except ValidationError as exc:
            op = cls.model_construct()  # type: ignore[call-arg]  # only _malformed is read
            op._malformed = [
                f"{'.'.join(str(p) for p in e['loc']) or 'operation'}: {e['msg']}"
                for e in exc.errors()
            ]
            return op

    def problems(self, where: str) -> list[str]:
        """Problems with the operation: its shape, then its values."""
        if self._malformed:
            return [f"{where}.{p}" for p in self._malformed]
        problems: list[str] = []
        for name in ("identifiers", "primary", "secondary"):
            who: Identifier | None = getattr(self, name)
            if who is not None:
                problems += who.problems(f"{where}.{name}")
        attributes = self.attributes or {}
        problems += optional_document(self.attributes, f"{where}.attributes")
        problems += optional_id(attributes.get("anonymous_id"), f"{where}.attributes.anonymous_id")
        problems += optional_id(self.name, f"{where}.name")
        problems += optional_id(self.id, f"{where}.id")
        problems += check_timestamp(self.timestamp, f"{where}.timestamp")
        if self.device is not None:
            problems += check_document(self.device, f"{where}.device")
            problems += optional_id(self.device.get("token"), f"{where}.device.token")
            problems += optional_text(self.device.get("platform"), f"{where}.device.platform")
            problems += check_timestamp(self.device.get("last_used"), f"{where}.device.last_used")
        return problems


class Batch(BaseModel):
    """``{"batch": [operations]}``."""

    batch: list[BatchOperation] = Field(min_length=1)


@router.post("/api/v2/batch")
async def batch(body: Batch, client: Client, _: Auth) -> dict[str, Any]:
    """Apply person operations in order; each gets its own result, errors included."""
    results = []
    for index, op in enumerate(body.batch):  # in order: an identify may make an email known
        where = f"batch[{index}]"
        try:
            native = _invalid(op.problems(where)) or await _native(op, client)
        except InvalidRequestError as exc:
            native = _invalid([f"{where}.{p}" for p in exc.problems])
        except UnknownRunError as exc:
            native = _invalid([str(exc)])
        except Exception:  # the operation's own result, never the batch's
            log.exception("batch operation %d failed", index)
            native = _invalid(["internal error: see the server log"])
        native = _invalid(operation_problems(native, where)) or native
        [result] = await client.batch([native])
        results.append(
            {"index": index, "ok": result.ok, **({"error": result.error} if result.error else {})}
        )
    return {"results": results}


def _invalid(problems: list[str]) -> dict[str, Any]:
    """A native operation that fails with ``problems`` (empty when there are none)."""
    return {"type": "invalid", "error": "; ".join(problems)} if problems else {}


async def _native(op: BatchOperation, client: JourneysClient) -> dict[str, Any]:
    """A v2 operation as a native batch operation.

    Raises:
        InvalidRequestError: identifiers without an id or an email.
        UnknownRunError: an email that belongs to nobody.

    """
    if op.action == "merge":
        missing = [n for n in ("primary", "secondary") if getattr(op, n) is None]
        if op.primary is None or op.secondary is None:
            raise InvalidRequestError(
                [f"{n}: expected the identifiers of a person, found nothing" for n in missing]
            )
        primary = await client.resolve_person(id=op.primary.id, email=op.primary.email)
        secondary = await client.resolve_person(id=op.secondary.id, email=op.secondary.email)
        return {"type": "merge", "primary": primary, "secondary": secondary}
    who = op.identifiers or Identifier()
    person = await client.resolve_person(id=who.id, email=who.email, create=op.action == "identify")
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
            "data": op.attributes or {},
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
