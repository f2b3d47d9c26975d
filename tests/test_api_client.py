"""journeys.Client and journeys.AsyncClient held to the server's own description of its API.

Every method of both clients is called; each request it sends must be an operation of the
OpenAPI document (method and path), with query parameters it declares and a body valid
against its schema, and the real application must route it (an anonymous request is
refused with 401, never 404 or 405). The two clients offer the same methods with the same
signatures and send the same requests, so neither can fall behind the other.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI

from journeys import AsyncClient, Client
from journeys.api_client import ENDPOINTS
from journeys.config import Settings
from journeys.server import create_app

CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("trigger", ("onboarding", ["u1", {"id": "u/2", "email": "a@example.com"}]), {"data": {"a": 1}, "idempotency_key": "k1"}),
    ("status", ("onboarding/u1",), {}),
    ("cancel", ("trg_0123",), {}),
    ("identify", ("u1", {"email": "ana@example.com"}), {}),
    ("track", ("u1", "signed_up", {"plan": "pro"}), {"timestamp": 1_700_000_000.0}),
    ("flush", (), {}),
    ("person", ("a/b",), {}),
    ("delete_person", ("u1",), {}),
    ("segment_members", ("vip",), {"after": "u1", "limit": 10}),
]  # fmt: skip
"""A call of every operation method, with values that put the paths to the test (``/``)."""

TRANSPORT = {"request", "call", "close", "aclose"}
"""Methods that send what they are given, or close the connection: not operations."""


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        ("close" if name == "aclose" else name): inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(Settings())


@pytest.fixture(scope="module")
def document(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def operation_of(document: dict[str, Any], request: httpx.Request) -> dict[str, Any]:
    """The operation of the document that ``request`` is, or a failure naming it."""
    path = request.url.raw_path.decode().partition("?")[0]
    for template, item in document["paths"].items():
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path) and request.method.lower() in item:
            found: dict[str, Any] = item[request.method.lower()]
            return found
    pytest.fail(f"{request.method} {path} is not an operation of the OpenAPI document")


def check_request(document: dict[str, Any], request: httpx.Request) -> None:
    operation = operation_of(document, request)
    declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    assert set(request.url.params) <= declared, (request.url, declared)
    if request.content:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        body = json.loads(request.content)
        jsonschema.validate(body, {**schema, "components": document["components"]})
    else:
        assert not operation.get("requestBody", {}).get("required"), request.url


def answer(request: httpx.Request) -> httpx.Response:
    """What the server would answer, in the shape the clients read."""
    if request.url.path == "/v1/batch":
        operations = json.loads(request.content)["operations"]
        return httpx.Response(
            200, json={"results": [{"index": i, "ok": True} for i in range(len(operations))]}
        )
    if request.method == "DELETE":
        return httpx.Response(200, json={"deleted": True})
    return httpx.Response(200, json={})


def recorder() -> tuple[list[httpx.Request], httpx.MockTransport]:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer(request)

    return sent, httpx.MockTransport(handle)


def test_both_clients_offer_the_same_methods_with_the_same_signatures() -> None:
    assert public_methods(Client) == public_methods(AsyncClient)
    for name, member in inspect.getmembers(AsyncClient, inspect.isfunction):
        if not name.startswith("_") and name != "call":
            assert inspect.iscoroutinefunction(member), name


def test_every_operation_method_is_called_here() -> None:
    assert {name for name, _, _ in CALLS} == set(public_methods(Client)) - TRANSPORT


def test_every_endpoint_is_an_operation_of_the_server(document: dict[str, Any]) -> None:
    for name, endpoint in ENDPOINTS.items():
        assert endpoint.method.lower() in document["paths"].get(endpoint.path, {}), name


async def test_what_both_clients_send_is_in_the_document(
    document: dict[str, Any], app: FastAPI
) -> None:
    sent, transport = recorder()
    sync = Client("http://journeys.test", "token", batch_size=1)
    sync._http = httpx.Client(transport=transport, base_url=sync.base_url)
    for name, args, kwargs in CALLS:
        getattr(sync, name)(*args, **kwargs)
    sync.close()
    by_sync = list(sent)
    sent.clear()
    asynchronous = AsyncClient("http://journeys.test", "token", batch_size=1)
    asynchronous._http = httpx.AsyncClient(transport=transport, base_url=asynchronous.base_url)
    for name, args, kwargs in CALLS:
        await getattr(asynchronous, name)(*args, **kwargs)
    await asynchronous.aclose()
    assert [(r.method, r.url) for r in sent] == [(r.method, r.url) for r in by_sync]
    await check_all(by_sync + sent, document, app)


async def check_all(sent: list[httpx.Request], document: dict[str, Any], app: FastAPI) -> None:
    """Each request is in the document and routed by the app; every endpoint was sent."""
    operations = [operation_of(document, request) for request in sent]
    for name, endpoint in ENDPOINTS.items():
        expected = document["paths"][endpoint.path][endpoint.method.lower()]
        assert any(o is expected for o in operations), f"{name} was never sent"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://journeys.test"
    ) as anonymous:
        for request in sent:
            check_request(document, request)
            routed = await anonymous.request(
                request.method,
                request.url.raw_path.decode(),
                content=request.content,
                headers={"content-type": "application/json"},
            )
            assert routed.status_code == 401, (request.method, request.url, routed.text)
