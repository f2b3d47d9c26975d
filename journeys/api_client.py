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
from typing import Any
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
    recipients: Sequence[str | Mapping[str, Any]],
    data: Mapping[str, Any] | None,
    idempotency_key: str | None,
) -> dict[str, Any]:
    return {
        "recipients": list(recipients),
        "data": dict(data or {}),
        "idempotency_key": idempotency_key,
    }


def _identify_op(person_id: str, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"type": "identify", "id": person_id, "attributes": dict(attributes or {})}


def _page(after: str | None, limit: int) -> dict[str, Any]:
    return {"limit": limit, **({"after": after} if after else {})}


def _track_op(
    person_id: str, event: str, data: Mapping[str, Any] | None, timestamp: datetime | float | None
) -> dict[str, Any]:
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
        self.queue: list[dict[str, Any]] = []
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
    def _answer(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise _error(response)
        return response.json()

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        hinted = _retry_after(response) if response is not None else None
        return hinted if hinted is not None else min(30.0, self.backoff * 2**attempt)

    @staticmethod
    def _check_batch(results: list[dict[str, Any]]) -> None:
        failed = [r for r in results if not r.get("ok")]
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
        self, method: str, path: str, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
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
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        **path: str,
    ) -> Any:
        """Send ``operation`` of :data:`ENDPOINTS`, its path parameters filled in."""
        endpoint = ENDPOINTS[operation]
        return self.request(endpoint.method, endpoint.url(**path), json, params)

    def trigger(
        self,
        journey: str,
        recipients: Sequence[str | Mapping[str, Any]],
        *,
        data: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Start a journey (sent at once, not queued)."""
        body = _trigger_body(recipients, data, idempotency_key)
        result: dict[str, Any] = self.call("trigger", body, journey=journey)
        return result

    def status(self, run_or_trigger_id: str) -> dict[str, Any]:
        """A run's or a trigger's status."""
        result: dict[str, Any] = self.call("status", run_id=run_or_trigger_id)
        return result

    def cancel(self, run_or_trigger_id: str) -> dict[str, Any]:
        """Cancel a run or a trigger."""
        result: dict[str, Any] = self.call("cancel", run_id=run_or_trigger_id)
        return result

    def identify(self, person_id: str, attributes: Mapping[str, Any] | None = None) -> None:
        """Queue an identify."""
        self._enqueue(_identify_op(person_id, attributes))

    def track(
        self,
        person_id: str,
        event: str,
        data: Mapping[str, Any] | None = None,
        *,
        timestamp: datetime | float | None = None,
    ) -> None:
        """Queue an event."""
        self._enqueue(_track_op(person_id, event, data, timestamp))

    def person(self, person_id: str) -> dict[str, Any]:
        """A person (flushes the queue first, so it is up to date)."""
        self.flush()
        result: dict[str, Any] = self.call("person", person_id=person_id)
        return result

    def delete_person(self, person_id: str) -> bool:
        """Delete a person and everything about them (flushes the queue first)."""
        self.flush()
        return bool(self.call("delete_person", person_id=person_id)["deleted"])

    def segment_members(
        self, segment: str, *, after: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        """A page of a segment's members (flushes the queue first)."""
        self.flush()
        params = _page(after, limit)
        result: dict[str, Any] = self.call("segment_members", params=params, name=segment)
        return result

    def _enqueue(self, operation: dict[str, Any]) -> None:
        self.queue.append(operation)
        if len(self.queue) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Send the queued operations in batches; unsent ones stay queued on error."""
        while self.queue:
            chunk = self.queue[: self.batch_size]
            answer = self.call("batch", {"operations": chunk})
            del self.queue[: len(chunk)]
            self._check_batch(answer["results"])

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
        self, method: str, path: str, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
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
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        **path: str,
    ) -> Any:
        """Send ``operation`` of :data:`ENDPOINTS`, its path parameters filled in."""
        endpoint = ENDPOINTS[operation]
        return await self.request(endpoint.method, endpoint.url(**path), json, params)

    async def trigger(
        self,
        journey: str,
        recipients: Sequence[str | Mapping[str, Any]],
        *,
        data: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Start a journey (sent at once, not queued)."""
        body = _trigger_body(recipients, data, idempotency_key)
        result: dict[str, Any] = await self.call("trigger", body, journey=journey)
        return result

    async def status(self, run_or_trigger_id: str) -> dict[str, Any]:
        """A run's or a trigger's status."""
        result: dict[str, Any] = await self.call("status", run_id=run_or_trigger_id)
        return result

    async def cancel(self, run_or_trigger_id: str) -> dict[str, Any]:
        """Cancel a run or a trigger."""
        result: dict[str, Any] = await self.call("cancel", run_id=run_or_trigger_id)
        return result

    async def identify(self, person_id: str, attributes: Mapping[str, Any] | None = None) -> None:
        """Queue an identify."""
        await self._enqueue(_identify_op(person_id, attributes))

    async def track(
        self,
        person_id: str,
        event: str,
        data: Mapping[str, Any] | None = None,
        *,
        timestamp: datetime | float | None = None,
    ) -> None:
        """Queue an event."""
        await self._enqueue(_track_op(person_id, event, data, timestamp))

    async def person(self, person_id: str) -> dict[str, Any]:
        """A person (flushes the queue first, so it is up to date)."""
        await self.flush()
        result: dict[str, Any] = await self.call("person", person_id=person_id)
        return result

    async def delete_person(self, person_id: str) -> bool:
        """Delete a person and everything about them (flushes the queue first)."""
        await self.flush()
        return bool((await self.call("delete_person", person_id=person_id))["deleted"])

    async def segment_members(
        self, segment: str, *, after: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        """A page of a segment's members (flushes the queue first)."""
        await self.flush()
        params = _page(after, limit)
        result: dict[str, Any] = await self.call("segment_members", params=params, name=segment)
        return result

    async def _enqueue(self, operation: dict[str, Any]) -> None:
        self.queue.append(operation)
        if len(self.queue) >= self.batch_size:
            await self.flush()

    async def flush(self) -> None:
        """Send the queued operations in batches; unsent ones stay queued on error."""
        while self.queue:
            chunk = self.queue[: self.batch_size]
            answer = await self.call("batch", {"operations": chunk})
            del self.queue[: len(chunk)]
            self._check_batch(answer["results"])

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
