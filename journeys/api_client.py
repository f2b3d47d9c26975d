"""A Python client for the native HTTP API of ``journeys serve``: sync and async.

::

    from journeys import Client

    with Client("https://journeys.internal:8080", token="...") as api:
        api.identify("u42", {"email": "ana@example.com"})   # queued
        api.track("u42", "signed_up", {"plan": "pro"})       # queued
        api.trigger("onboarding", ["u42"])                   # sent now
    # leaving the block flushes the queue

``identify`` and ``track`` go into a buffer sent in batches (``batch_size`` operations at
a time, or when ``flush()`` or ``close()`` is called); each tracked event carries an
``event_id`` so a retried batch never records it twice. Requests are retried with
exponential backoff on 429 (honouring ``Retry-After``), 5xx and connection errors, never on
other 4xx answers.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias
from urllib.parse import quote

import httpx

from definitions.errors import (
    APIError,
    AuthenticationError,
    EngineUnavailableError,
    InvalidRequestError,
    RateLimitError,
    UnknownRunError,
)
from definitions.values import JSONValue

__all__ = [
    "ENDPOINTS",
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "Endpoint",
    "RateLimitError",
]


@dataclass(frozen=True)
class Endpoint:
    """One operation of the native API, as the server's OpenAPI document names it."""

    method: str
    """The HTTP method."""
    path: str
    """The path template, with ``{name}`` for each path parameter."""

    def url(self, **parameters: str) -> str:
        """The path with each parameter put in, percent-encoded (an id may hold ``/``)."""
        return self.path.format(**{k: quote(v, safe="") for k, v in parameters.items()})


ENDPOINTS = {
    "trigger": Endpoint("POST", "/v1/journeys/{journey}/trigger"),
    "status": Endpoint("GET", "/v1/runs/{run_id}"),
    "cancel": Endpoint("POST", "/v1/runs/{run_id}/cancel"),
    "person": Endpoint("GET", "/v1/people/{person_id}"),
    "delete_person": Endpoint("DELETE", "/v1/people/{person_id}"),
    "segment_members": Endpoint("GET", "/v1/segments/{name}/members"),
    "batch": Endpoint("POST", "/v1/batch"),
}
"""Every operation both clients send, by name: the one place their paths are written.

``tests/test_api_client.py`` checks each against the server's OpenAPI document, and
that :class:`Client` and :class:`AsyncClient` offer the same methods.
"""


_Query: TypeAlias = str | int | float | bool | None
"""A query parameter's value, as httpx takes it."""

Params: TypeAlias = Mapping[str, _Query | Sequence[_Query]]
"""A request's query parameters."""


def _object(answer: JSONValue, operation: str) -> dict[str, JSONValue]:
    """An operation's answer, which the server sends as a JSON object."""
    if not isinstance(answer, dict):
        raise EngineUnavailableError(
            f"{operation}: expected a JSON object from the server, found {type(answer).__name__}"
        )
    return answer


def _error(response: httpx.Response) -> Exception:
    try:
        body = response.json()
    except ValueError:
        body = None
    message = (body or {}).get("meta", {}).get("error") if isinstance(body, dict) else None
    message = message or f"HTTP {response.status_code}"
    status = response.status_code
    if status in (401, 403):
        return AuthenticationError(message, status=status, body=body)
    if status == 429:
        return RateLimitError(message, status=status, body=body, retry_after=_retry_after(response))
    if status in (400, 413, 415, 422):
        problems = [f"{e['field']}: {e['message']}" for e in (body or {}).get("errors", [])]
        return InvalidRequestError(problems or [message])
    if status == 404:
        return UnknownRunError(message)
    return EngineUnavailableError(f"{message} (HTTP {status})")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _retryable(response: httpx.Response) -> bool:
    return response.status_code == 429 or response.status_code >= 500


def _verify(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify


def _trigger_body(
    recipients: Sequence[str | Mapping[str, JSONValue]],
    data: Mapping[str, JSONValue] | None,
    idempotency_key: str | None,
) -> dict[str, JSONValue]:
    return {
        "recipients": [r if isinstance(r, str) else dict(r) for r in recipients],
        "data": dict(data or {}),
        "idempotency_key": idempotency_key,
    }


def _identify_op(
    person_id: str, attributes: Mapping[str, JSONValue] | None
) -> dict[str, JSONValue]:
    return {"type": "identify", "id": person_id, "attributes": dict(attributes or {})}


def _page(after: str | None, limit: int) -> dict[str, str | int]:
    return {"limit": limit, **({"after": after} if after else {})}


def _track_op(
    person_id: str,
    event: str,
    data: Mapping[str, JSONValue] | None,
    timestamp: datetime | float | None,
) -> dict[str, JSONValue]:
    when = timestamp.timestamp() if isinstance(timestamp, datetime) else timestamp
    return {
        "type": "track",
        "id": person_id,
        "event": event,
        "data": dict(data or {}),
        "timestamp": when,
        "event_id": str(uuid.uuid4()),
    }


class _Base:
    _transport: Any = None

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        max_retries: int = 3,
        backoff: float = 0.5,
        batch_size: int = 100,
        timeout: float = 10.0,
        verify: bool | str | ssl.SSLContext = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.max_retries = max_retries
        self.backoff = backoff
        self.batch_size = batch_size
        self.queue: list[dict[str, JSONValue]] = []
        """Operations waiting to be sent."""
        self._http = self._transport(
            base_url=self.base_url,
            timeout=timeout,
            verify=_verify(verify),
            headers={"authorization": f"Bearer {token}"},
        )

    def _after(
        self, attempt: int, response: httpx.Response | None, error: Exception | None
    ) -> float | None:
        """Seconds to wait before trying again, or None to stop with this answer."""
        if error is not None:
            if attempt == self.max_retries:
                raise EngineUnavailableError(f"cannot reach {self.base_url}: {error}") from error
            return self._delay(attempt, None)
        assert response is not None
        if _retryable(response) and attempt < self.max_retries:
            return self._delay(attempt, response)
        return None

    @staticmethod
    def _answer(response: httpx.Response) -> JSONValue:
        if response.status_code >= 400:
            raise _error(response)
        answer: JSONValue = response.json()
        return answer

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        hinted = _retry_after(response) if response is not None else None
        return hinted if hinted is not None else min(30.0, self.backoff * 2**attempt)

    @staticmethod
    def _check_batch(answer: dict[str, JSONValue]) -> None:
        results = answer["results"]
        listed = results if isinstance(results, list) else []
        failed = [r for r in listed if isinstance(r, dict) and not r.get("ok")]
        if failed:
            raise InvalidRequestError([f"operation {r['index']}: {r.get('error')}" for r in failed])


class Client(_Base):
    """The native API, synchronously.

    Args:
        base_url: the server, e.g. ``https://journeys.internal:8080``.
        token: a Bearer token of the server (``JOURNEYS_SERVER_TOKENS``).
        max_retries: retries of a request on 429, 5xx and connection errors.
        backoff: the first retry's delay in seconds; it doubles each time.
        batch_size: operations per batch request.
        timeout: seconds per request.
        verify: TLS verification: True, False, or a CA bundle path.

    """

    _transport = httpx.Client

    def request(
        self, method: str, path: str, json: JSONValue = None, params: Params | None = None
    ) -> JSONValue:
        """Send a request with retries; the decoded JSON answer, or a typed error."""
        for attempt in range(self.max_retries + 1):
            response, error = None, None
            try:
                response = self._http.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                error = exc
            wait = self._after(attempt, response, error)
            if wait is None:
                break
            time.sleep(wait)
        assert response is not None
        return self._answer(response)

    def call(
        self,
        operation: str,
        /,
        json: JSONValue = None,
        params: Params | None = None,
        **path: str,
    ) -> dict[str, JSONValue]:
        """Send ``operation`` of :data:`ENDPOINTS`, its path parameters filled in."""
        endpoint = ENDPOINTS[operation]
        return _object(self.request(endpoint.method, endpoint.url(**path), json, params), operation)

    def trigger(
        self,
        journey: str,
        recipients: Sequence[str | Mapping[str, JSONValue]],
        *,
        data: Mapping[str, JSONValue] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, JSONValue]:
        """Start a journey (sent at once, not queued)."""
        body = _trigger_body(recipients, data, idempotency_key)
        result = self.call("trigger", body, journey=journey)
        return result

    def status(self, run_or_trigger_id: str) -> dict[str, JSONValue]:
        """A run's or a trigger's status."""
        result = self.call("status", run_id=run_or_trigger_id)
        return result

    def cancel(self, run_or_trigger_id: str) -> dict[str, JSONValue]:
        """Cancel a run or a trigger."""
        result = self.call("cancel", run_id=run_or_trigger_id)
        return result

    def identify(self, person_id: str, attributes: Mapping[str, JSONValue] | None = None) -> None:
        """Queue an identify."""
        self._enqueue(_identify_op(person_id, attributes))

    def track(
        self,
        person_id: str,
        event: str,
        data: Mapping[str, JSONValue] | None = None,
        *,
        timestamp: datetime | float | None = None,
    ) -> None:
        """Queue an event."""
        self._enqueue(_track_op(person_id, event, data, timestamp))

    def person(self, person_id: str) -> dict[str, JSONValue]:
        """A person (flushes the queue first, so it is up to date)."""
        self.flush()
        result = self.call("person", person_id=person_id)
        return result

    def delete_person(self, person_id: str) -> bool:
        """Delete a person and everything about them (flushes the queue first)."""
        self.flush()
        return bool(self.call("delete_person", person_id=person_id)["deleted"])

    def segment_members(
        self, segment: str, *, after: str | None = None, limit: int = 100
    ) -> dict[str, JSONValue]:
        """A page of a segment's members (flushes the queue first)."""
        self.flush()
        params = _page(after, limit)
        result = self.call("segment_members", params=params, name=segment)
        return result

    def _enqueue(self, operation: dict[str, JSONValue]) -> None:
        self.queue.append(operation)
        if len(self.queue) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Send the queued operations in batches; unsent ones stay queued on error."""
        while self.queue:
            chunk: list[JSONValue] = [*self.queue[: self.batch_size]]
            answer = self.call("batch", {"operations": chunk})
            del self.queue[: len(chunk)]
            self._check_batch(answer)

    def close(self) -> None:
        """Flush the queue and close the connections."""
        try:
            self.flush()
        finally:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Base):
    """The native API for asyncio programs; the same methods as :class:`Client`."""

    _transport = httpx.AsyncClient

    async def request(
        self, method: str, path: str, json: JSONValue = None, params: Params | None = None
    ) -> JSONValue:
        """Send a request with retries; the decoded JSON answer, or a typed error."""
        for attempt in range(self.max_retries + 1):
            response, error = None, None
            try:
                response = await self._http.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                error = exc
            wait = self._after(attempt, response, error)
            if wait is None:
                break
            await asyncio.sleep(wait)
        assert response is not None
        return self._answer(response)

    async def call(
        self,
        operation: str,
        /,
        json: JSONValue = None,
        params: Params | None = None,
        **path: str,
    ) -> dict[str, JSONValue]:
        """Send ``operation`` of :data:`ENDPOINTS`, its path parameters filled in."""
        endpoint = ENDPOINTS[operation]
        answer = await self.request(endpoint.method, endpoint.url(**path), json, params)
        return _object(answer, operation)

    async def trigger(
        self,
        journey: str,
        recipients: Sequence[str | Mapping[str, JSONValue]],
        *,
        data: Mapping[str, JSONValue] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, JSONValue]:
        """Start a journey (sent at once, not queued)."""
        body = _trigger_body(recipients, data, idempotency_key)
        result = await self.call("trigger", body, journey=journey)
        return result

    async def status(self, run_or_trigger_id: str) -> dict[str, JSONValue]:
        """A run's or a trigger's status."""
        result = await self.call("status", run_id=run_or_trigger_id)
        return result

    async def cancel(self, run_or_trigger_id: str) -> dict[str, JSONValue]:
        """Cancel a run or a trigger."""
        result = await self.call("cancel", run_id=run_or_trigger_id)
        return result

    async def identify(
        self, person_id: str, attributes: Mapping[str, JSONValue] | None = None
    ) -> None:
        """Queue an identify."""
        await self._enqueue(_identify_op(person_id, attributes))

    async def track(
        self,
        person_id: str,
        event: str,
        data: Mapping[str, JSONValue] | None = None,
        *,
        timestamp: datetime | float | None = None,
    ) -> None:
        """Queue an event."""
        await self._enqueue(_track_op(person_id, event, data, timestamp))

    async def person(self, person_id: str) -> dict[str, JSONValue]:
        """A person (flushes the queue first, so it is up to date)."""
        await self.flush()
        result = await self.call("person", person_id=person_id)
        return result

    async def delete_person(self, person_id: str) -> bool:
        """Delete a person and everything about them (flushes the queue first)."""
        await self.flush()
        return bool((await self.call("delete_person", person_id=person_id))["deleted"])

    async def segment_members(
        self, segment: str, *, after: str | None = None, limit: int = 100
    ) -> dict[str, JSONValue]:
        """A page of a segment's members (flushes the queue first)."""
        await self.flush()
        params = _page(after, limit)
        result = await self.call("segment_members", params=params, name=segment)
        return result

    async def _enqueue(self, operation: dict[str, JSONValue]) -> None:
        self.queue.append(operation)
        if len(self.queue) >= self.batch_size:
            await self.flush()

    async def flush(self) -> None:
        """Send the queued operations in batches; unsent ones stay queued on error."""
        while self.queue:
            chunk: list[JSONValue] = [*self.queue[: self.batch_size]]
            answer = await self.call("batch", {"operations": chunk})
            del self.queue[: len(chunk)]
            self._check_batch(answer)

    async def aclose(self) -> None:
        """Flush the queue and close the connections."""
        try:
            await self.flush()
        finally:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
