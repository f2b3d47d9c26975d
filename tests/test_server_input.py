"""Hostile input to the HTTP API: a 4xx naming the field, never a 500, nothing half-written.

One row per input: the route, the bytes sent, the status and the field expected. After the
table has run, the people, a person, their export and a segment's members still read back
(a value the store cannot give back would make them 500).
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import Engine
from tests.test_server import API_KEY, APP_KEY, SITE_ID, TOKEN, Api, serve

AUTH = {
    "track": "Basic " + base64.b64encode(f"{SITE_ID}:{API_KEY}".encode()).decode(),
    "native": f"Bearer {TOKEN}",
    "app": f"Bearer {APP_KEY}",
    "none": "",
}


@dataclass(frozen=True)
class Row:
    """One hostile request and what the API must answer."""

    what: str
    method: str
    path: str
    body: str | bytes | None = None
    """JSON text as sent (NaN and all), or raw bytes."""
    status: int = 422
    field: str | None = None
    """The first ``errors[].field``; for a 200 batch, the start of results[0].error."""
    auth: str = "track"
    content_type: str = "application/json"


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


EVENT = "/api/v1/customers/p1/events"
V2 = "/api/v2/batch"


def v2(op: str) -> str:
    return '{"batch": [{"type": "person", "identifiers": {"id": "p1"}, ' + op + "}]}"


# fmt: off
ROWS = [
    # Values that poison the store: refused, the field named.
    Row("NaN", "PUT", "/api/v1/customers/p1", '{"n": NaN}', field="n"),
    Row("Infinity", "PUT", "/api/v1/customers/p1", '{"n": Infinity}', field="n"),
    Row("-Infinity", "PUT", "/api/v1/customers/p1", '{"a": {"n": -Infinity}}', field="a.n"),
    Row("1e400 overflows", "PUT", "/api/v1/customers/p1", '{"n": 1e400}', field="n"),
    Row("int over 64 bits", "PUT", "/api/v1/customers/p1", '{"n": 99999999999999999999}', field="n"),
    Row("int of 5000 digits", "PUT", "/api/v1/customers/p1", '{"n": ' + "9" * 5000 + "}", field="body"),
    Row("500 deep", "PUT", "/api/v1/customers/p1", '{"d": ' + deep(500) + "}", field="d" + "[0]" * 34),
    Row("33 deep", "PUT", "/api/v1/customers/p1", '{"d": ' + deep(33) + "}", field="d" + "[0]" * 31),
    Row("20000 deep", "PUT", "/api/v1/customers/p1", deep(10000), field="body"),
    Row("lone surrogate", "PUT", "/api/v1/customers/p1", '{"s": "\\ud800"}', field="s"),
    Row("lone surrogate key", "PUT", "/api/v1/customers/p1", '{"\\udc00": 1}', field="body"),
    Row("NUL in text", "PUT", "/api/v1/customers/p1", '{"s": "a\\u0000b"}', field="s"),
    Row("native NaN", "PUT", "/v1/people/p1", '{"attributes": {"n": NaN}}', field="attributes.n", auth="native"),
    Row("native 33 deep", "PUT", "/v1/people/p1", '{"attributes": {"d": ' + deep(33) + "}}", field="attributes.d" + "[0]" * 31, auth="native"),
    Row("trigger data Infinity", "POST", "/v1/journeys/onboarding/trigger", '{"recipients": ["p1"], "data": {"x": Infinity}}', field="data.x", auth="native"),
    Row("recipient id with a control character", "POST", "/v1/journeys/onboarding/trigger", '{"recipients": ["a\\u0001"]}', field="recipients[0]", auth="native"),
    Row("recipient id of 256 characters", "POST", "/v1/journeys/onboarding/trigger", '{"recipients": [{"id": "' + "r" * 256 + '"}]}', field="recipients[0].id", auth="native"),
    Row("recipient fields 33 deep", "POST", "/v1/journeys/onboarding/trigger", '{"recipients": [{"id": "r", "d": ' + deep(32) + "}]}", field="recipients[0].d" + "[0]" * 31, auth="native"),
    Row("idempotency key with NUL", "POST", "/v1/journeys/onboarding/trigger", '{"recipients": ["r"], "idempotency_key": "k\\u0000"}', field="idempotency_key", auth="native"),
    Row("broadcast data 1e400", "POST", "/v1/campaigns/onboarding/triggers", '{"ids": ["p1"], "data": {"x": 1e400}}', field="data.x", auth="app"),
    Row("broadcast id with NUL", "POST", "/v1/campaigns/onboarding/triggers", '{"ids": ["a\\u0000"]}', field="ids[0]", auth="app"),
    Row("segment value NaN", "POST", "/v1/segments", '{"name": "s", "condition": {"attribute": "a", "op": "gt", "value": NaN}}', field="condition.value", auth="native"),
    Row("event data NaN", "POST", EVENT, '{"name": "e", "data": {"x": NaN}}', field="data.x"),
    # Bodies that are not JSON.
    Row("invalid UTF-8", "PUT", "/api/v1/customers/p1", b'{"s": "\xff"}', status=400, field="body"),
    Row("not JSON", "PUT", "/api/v1/customers/p1", '{"n": }', status=400, field="body"),
    Row("a UTF-8 BOM", "PUT", "/api/v1/customers/p1", "\ufeff{}", status=400, field="body"),
    Row("text/plain", "PUT", "/api/v1/customers/p1", "{}", status=415, field="content-type", content_type="text/plain"),
    Row("no content type", "POST", EVENT, '{"name": "e"}', status=415, field="content-type", content_type=""),
    # Timestamps: Unix seconds, Customer.io's unit.
    Row("event ms", "POST", EVENT, '{"name": "e", "timestamp": 1700000000000}', field="timestamp"),
    Row("event 1e20", "POST", EVENT, '{"name": "e", "timestamp": 1e20}', field="timestamp"),
    Row("event -1e11", "POST", EVENT, '{"name": "e", "timestamp": -1e11}', field="timestamp"),
    Row("event NaN time", "POST", EVENT, '{"name": "e", "timestamp": NaN}', field="timestamp"),
    Row("event text time", "POST", EVENT, '{"name": "e", "timestamp": "soon"}', field="timestamp"),
    Row("event boolean time", "POST", EVENT, '{"name": "e", "timestamp": true}', field="timestamp"),
    Row("anonymous ms", "POST", "/api/v1/events", '{"name": "e", "anonymous_id": "a1", "timestamp": 1700000000000}', field="timestamp"),
    Row("last_used ms", "PUT", "/api/v1/customers/p1/devices", '{"device": {"id": "t", "platform": "ios", "last_used": 1700000000000}}', field="device.last_used"),
    Row("last_used 1e20", "PUT", "/api/v1/customers/p1/devices", '{"device": {"id": "t", "platform": "ios", "last_used": 1e20}}', field="device.last_used"),
    Row("last_used false (found by Schemathesis)", "PUT", "/api/v1/customers/p1/devices", '{"device": {"id": "t", "platform": "ios", "last_used": false}}', field="device.last_used"),
    Row("native event ms", "POST", "/v1/events", '{"name": "e", "person_id": "p1", "timestamp": 1700000000000}', field="timestamp", auth="native"),
    Row("native event -1e11", "POST", "/v1/events", '{"name": "e", "anonymous_id": "a1", "timestamp": -1e11}', field="timestamp", auth="native"),
    Row("native event text time (found by Schemathesis)", "POST", "/v1/events", '{"name": "e", "person_id": "p1", "timestamp": "1700000000"}', field="timestamp", auth="native"),
    Row("native event boolean time", "POST", "/v1/events", '{"name": "e", "person_id": "p1", "timestamp": false}', field="timestamp", auth="native"),
    Row("v2 batch ms", "POST", V2, v2('"action": "event", "name": "e", "timestamp": 1700000000000'), status=200, field="batch[0].timestamp"),
    Row("v2 batch 1e20", "POST", V2, v2('"action": "event", "name": "e", "timestamp": 1e20'), status=200, field="batch[0].timestamp"),
    Row("v2 device last_used", "POST", V2, v2('"action": "add_device", "device": {"token": "t", "last_used": 1700000000000}'), status=200, field="batch[0].device.last_used"),
    Row("native batch 1e20", "POST", "/v1/batch", '{"operations": [{"type": "track", "id": "p1", "event": "e", "timestamp": 1e20}]}', status=200, field="operations[0].timestamp", auth="native"),
    Row("native batch -1e11", "POST", "/v1/batch", '{"operations": [{"type": "track_anonymous", "anonymous_id": "a", "event": "e", "timestamp": -1e11}]}', status=200, field="operations[0].timestamp", auth="native"),
    # anonymous_id that is not a string.
    Row("identify anonymous_id 5", "PUT", "/api/v1/customers/p1", '{"anonymous_id": 5}', field="anonymous_id"),
    Row("identify anonymous_id {}", "PUT", "/api/v1/customers/p1", '{"anonymous_id": {"a": 1}}', field="anonymous_id"),
    Row("event anonymous_id 5", "POST", "/api/v1/events", '{"name": "e", "anonymous_id": 5}', field="anonymous_id"),
    Row("native anonymous_id []", "PUT", "/v1/people/p1", '{"anonymous_id": []}', field="anonymous_id", auth="native"),
    Row("v2 anonymous_id 5", "POST", V2, v2('"action": "identify", "attributes": {"anonymous_id": 5}'), status=200, field="batch[0].attributes.anonymous_id"),
    Row("native batch anonymous_id 5", "POST", "/v1/batch", '{"operations": [{"type": "identify", "id": "p1", "anonymous_id": 5}]}', status=200, field="operations[0].anonymous_id", auth="native"),
    Row("native event without anyone", "POST", "/v1/events", '{"name": "e"}', field="person_id", auth="native"),
    # Filters and query strings.
    Row('attribute with "', "GET", '/v1/people?attribute=a"b:1', auth="native", field="attribute"),
    Row("attribute with NUL", "GET", "/v1/people?attribute=a%00:1", auth="native", field="attribute"),
    Row("attribute value NUL", "GET", "/v1/people?attribute=plan:%00", auth="native", field="attribute"),
    Row("attribute without :", "GET", "/v1/people?attribute=plan", auth="native", field="attribute"),
    Row("email with NUL", "GET", "/v1/people?email=a%00b", auth="native", field="email"),
    Row("after with NUL", "GET", "/v1/segments/pro_users/members?after=%00", auth="native", field="after"),
    Row("query not UTF-8", "GET", "/v1/people?email=%FF", auth="native", status=400, field="query"),
    # Unsubscribe tokens.
    Row("token without a dot", "GET", "/unsubscribe?token=abc", auth="none", status=400, field="token"),
    Row("token forged", "POST", "/unsubscribe?token=e30.AAAA", auth="none", status=400, field="token"),
    Row("token empty", "GET", "/unsubscribe?token=", auth="none", field="token"),
    # Ids in paths.
    Row("path not UTF-8", "PUT", "/api/v1/customers/%FF", "{}", status=400, field="path"),
    Row("path not UTF-8 (native)", "GET", "/v1/people/%FE", auth="native", status=400, field="path"),
    Row("control character id", "PUT", "/api/v1/customers/a%01b", "{}", field="identifier"),
    Row("NUL id", "GET", "/v1/people/a%00", auth="native", field="person_id"),
    Row("blank id", "PUT", "/api/v1/customers/%20", "{}", field="identifier"),
    Row("256-character id", "PUT", "/api/v1/customers/" + "x" * 256, "{}", field="identifier"),
    Row("device token NUL", "DELETE", "/api/v1/customers/p1/devices/t%00", field="device_id"),
    # The framework's own errors, in the documented shape.
    Row("unknown route", "GET", "/v1/nothing-here", auth="native", status=404),
    Row("unknown route, no credentials", "POST", "/api/v9/x", auth="none", status=404),
    Row("method not allowed", "DELETE", "/v1/segments", auth="native", status=405),
    Row("GET of a cancel (found by Schemathesis)", "GET", "/v1/runs/0/cancel", auth="native", status=405),
    Row("missing body", "POST", EVENT, status=422, field="body"),
    Row("wrong type", "POST", EVENT, '{"name": 5}', field="name"),
    Row("list index in the field", "POST", "/v1/campaigns/onboarding/triggers", '{"ids": ["a", 5]}', field="ids[1]", auth="app"),
]
# fmt: on


@pytest.fixture
async def api(engine: Engine, tmp_path: Path) -> AsyncIterator[Api]:
    async for served in serve(engine, tmp_path, rate_limit=10_000.0):
        yield served


def encode(body: str | bytes | None) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    return body.encode("utf-8", "surrogatepass")


async def send(api: Api, row: Row) -> tuple[int, Any]:
    headers = {"authorization": AUTH[row.auth]} if row.auth != "none" else {}
    if row.body is not None and row.content_type:
        headers["content-type"] = row.content_type
    async with api.http(**headers) as http:
        request = http.build_request(row.method, row.path, content=encode(row.body))
        if not row.content_type:
            request.headers.pop("content-type", None)
        response = await http.send(request)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def mismatch(row: Row, status: int, body: Any) -> str | None:
    """What is wrong with the answer to ``row``, or None."""
    if status != row.status:
        return f"status {status}, expected {row.status}: {body}"
    if not isinstance(body, dict):
        return f"body {body!r} is not an object"
    if status == 200:
        error = body["results"][0].get("error") or ""
        return None if error.startswith(f"{row.field}:") else f"result error {error!r}"
    if not isinstance(body.get("meta", {}).get("error"), str):
        return f"no meta.error in {body}"
    if row.field is not None:
        fields = [e["field"] for e in body.get("errors", [])]
        if row.field not in fields:
            return f"fields {fields}, expected {row.field!r}: {body['meta']['error']}"
    return None


async def test_hostile_inputs_get_a_4xx_naming_the_field(api: Api) -> None:
    client = api.engine.client
    await client.identify("p1", {"plan": "pro"})
    wrong = []
    for row in ROWS:
        status, body = await send(api, row)
        problem = mismatch(row, status, body)
        if problem is not None:
            wrong.append(f"{row.what} ({row.method} {row.path}): {problem}")
    assert not wrong, "\n".join(wrong)
    # Nothing unreadable was stored: everything about p1 reads back.
    async with api.native() as native:
        for path in (
            "/v1/people",
            "/v1/people/p1",
            "/v1/people/p1/export",
            "/v1/people/p1/activity",
            "/v1/segments/pro_users/members",
        ):
            answer = await native.get(path)
            assert answer.status_code == 200, (path, answer.text)
    person = await client.person("p1")
    assert person.attributes == {"plan": "pro"}
    assert await client.store.events.count("p1", "e") == 0
    assert (await client.people()).ids == ["p1"]  # no "\ufffd", no "a\x01b", no "x" * 256


async def test_ids_may_hold_a_slash(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_server import customerio_client

    cio = customerio_client(api, monkeypatch)
    await asyncio.to_thread(cio.identify, "team/ana", plan="pro")
    await asyncio.to_thread(cio.track, "team/ana", "login")
    await asyncio.to_thread(cio.add_device, "team/ana", "tok/1", "ios")
    client = api.engine.client
    person = await client.person("team/ana")
    assert person.attributes == {"plan": "pro"}
    assert [d["token"] for d in person.devices] == ["tok/1"]
    assert await client.store.events.count("team/ana", "login") == 1
    async with api.native() as native:
        read = await native.get("/v1/people/team%2Fana")
        spelled = await native.get("/v1/%70eople/team%2Fana")  # a fixed part percent-encoded
        percent = await native.put("/v1/people/50%25", json={"attributes": {"a": 1}})
        both = await native.put("/v1/people/a%2F%25", json={})
    assert read.status_code == 200 and read.json()["id"] == "team/ana"
    assert spelled.status_code == 200 and spelled.json()["id"] == "team/ana"
    assert percent.status_code == 200 and (await client.person("50%")).attributes == {"a": 1}
    assert both.status_code == 200 and await client.store.profiles.get("a/%") is not None
    await asyncio.to_thread(cio.delete_device, "team/ana", "tok/1")
    assert (await client.person("team/ana")).devices == []
    await asyncio.to_thread(cio.delete, "team/ana")
    assert await client.store.profiles.get("team/ana") is None


async def batch_results(http: httpx.AsyncClient, path: str, body: Any) -> list[dict[str, Any]]:
    r = await http.post(path, json=body)
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    return results


async def test_one_bad_operation_is_its_own_result(api: Api) -> None:
    client = api.engine.client
    operations = [
        {"type": "identify", "id": "o1", "attributes": {"plan": "pro"}},
        {"type": "track", "id": "o1", "event": "e", "timestamp": 1e20},
        {"type": "identify", "id": "o2", "anonymous_id": {"x": 1}},
        {"type": "track", "id": "o1", "event": "ok", "timestamp": 1700000000},
        {"type": "fly", "id": "o1"},
        {"type": "remove_device", "id": "o1", "token": 7},
        {"type": "identify", "id": "o4", "attributes": {"plan": "free"}},
    ]
    async with api.native() as native:
        results = await batch_results(native, "/v1/batch", {"operations": operations})
    assert [x["ok"] for x in results] == [True, False, False, True, False, False, True]
    assert results[1]["error"].startswith("operations[1].timestamp: expected Unix seconds")
    assert results[2]["error"].startswith("operations[2].anonymous_id: expected an id")
    assert "expected identify, track" in results[4]["error"]
    assert results[5]["error"].startswith("operations[5].token")
    assert await client.store.profiles.get("o2") is None  # refused before anything was written
    assert await client.store.events.count("o1", "ok") == 1
    assert await client.store.events.count("o1", "e") == 0
    assert (await client.person("o4")).attributes == {"plan": "free"}

    # A value outside the domain anywhere refuses the whole body, before anything is written.
    too_deep = [
        {"type": "identify", "id": "o5"},
        {"type": "identify", "id": "o6", "attributes": {"d": json.loads(deep(40))}},
    ]
    async with api.native() as native:
        r = await native.post("/v1/batch", json={"operations": too_deep})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "operations[1].attributes.d" + "[0]" * 31
    assert await client.store.profiles.get("o5") is None

    v2_ops: list[dict[str, Any]] = [
        {"type": "person", "action": "identify", "identifiers": {"id": "w1"}},
        {"type": "person", "action": "fly", "identifiers": {"id": "w1"}},
        {"type": "object", "action": "identify"},
        {
            "type": "person",
            "action": "event",
            "identifiers": {"id": "w1"},
            "name": "e",
            "timestamp": 1700000000000,
        },
        {"type": "person", "action": "identify", "identifiers": {}},
        {"type": "person", "action": "merge", "primary": {"id": "w1"}},
        {"type": "person", "action": "event", "identifiers": {"id": "w1"}, "name": "ok"},
    ]
    async with api.basic() as basic:
        results = await batch_results(basic, "/api/v2/batch", {"batch": v2_ops})
    assert [x["ok"] for x in results] == [True, False, False, False, False, False, True]
    assert results[1]["error"].startswith("batch[1].action: Input should be")
    assert results[2]["error"].startswith("batch[2].type: Input should be 'person'")
    assert results[3]["error"].startswith("batch[3].timestamp: expected Unix seconds")
    assert results[4]["error"] == "batch[4].identifiers: expected 'id' or 'email', found neither"
    assert results[5]["error"].startswith("batch[5].secondary: expected the identifiers")
    assert await client.store.events.count("w1", "ok") == 1


async def test_errors_of_the_framework_have_the_documented_shape(api: Api) -> None:
    async with api.native() as native, api.http() as anonymous:
        unknown = await anonymous.get("/nope")
        method = await native.patch("/v1/people/x", json={})
        invalid = await native.get("/v1/people", params={"limit": "many"})
        options = await native.options("/v1/runs/0/cancel")  # found by Schemathesis
    assert unknown.status_code == 404
    assert unknown.json() == {"meta": {"error": "not found: no route GET /nope"}}
    assert method.status_code == 405
    assert set(method.headers["allow"].split(", ")) == {"GET", "PUT", "DELETE"}
    assert method.json()["meta"]["error"].startswith("method PATCH not allowed")
    assert options.status_code == 405 and options.headers["allow"] == "POST"
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "limit"


async def test_unsubscribe_without_a_signing_secret_is_a_404(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.engine.client, "signing_secret", None)
    async with api.http() as anonymous:
        r = await anonymous.get("/unsubscribe", params={"token": "abc.def"})
    assert r.status_code == 404
    assert r.json()["errors"] == [
        {"field": "token", "message": "unsubscribe links are not enabled on this server"}
    ]


async def test_a_crash_is_a_500_in_the_documented_shape_with_the_traceback_logged(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.engine.client, "segment_definitions", broken)
    async with api.native() as native:
        r = await native.get("/v1/segments")
    assert r.status_code == 500
    assert r.json() == {"meta": {"error": "internal server error: the server log has the details"}}
    assert "secret internals" not in r.text
    logged = [rec for rec in caplog.records if rec.name == "journeys.server"]
    assert logged and logged[0].exc_info and "secret internals" in str(logged[0].exc_info[1])


def chunked_request(api: Api, path: str, authorization: str, head: bytes, size: int) -> bytes:
    """PUT/POST ``head`` then 1 KiB chunks up to ``size`` bytes, never finish; the answer.

    The terminating chunk is never sent: an answer proves the server refused the body as it
    arrived instead of reading it all. Nothing is sent after the server's limit is passed,
    so it closes the connection cleanly (no reset racing its answer).
    """
    method = "POST" if path.endswith("/batch") else "PUT"
    context = ssl.create_default_context(cafile=api.ca)
    with (
        socket.create_connection(("127.0.0.1", api.port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {authorization}"
            "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        tls.sendall(b"%x\r\n%s\r\n" % (len(head), head))
        for _ in range(size // 1024):
            tls.sendall(b"%x\r\n%s\r\n" % (1024, b"a" * 1024))
        answer = b""
        while data := tls.recv(65536):
            answer += data
    return answer


@pytest.mark.parametrize(
    ("path", "head", "size", "message"),
    [
        ("/api/v1/customers/big", b'{"pad": "', 33 * 1024, "at most 32768 bytes"),
        ("/v1/people/big", b'{"attributes": {"pad": "', 33 * 1024, "at most 32768 bytes"),
        ("/v1/people/big%2Fbatch", b'{"attributes": {"pad": "', 33 * 1024, "at most 32768"),
        (
            "/api/v2/batch",
            b'{"batch": [{"type": "person", "action": "identify", "identifiers": {"id": "big"}, '
            b'"attributes": {"pad": "',
            501 * 1024,
            "batch too large: expected at most 512000 bytes",
        ),
    ],
)
async def test_body_limits_hold_for_chunked_bodies(
    api: Api, path: str, head: bytes, size: int, message: str
) -> None:
    authorization = AUTH["native" if path.startswith("/v1/") else "track"]
    answer = await asyncio.to_thread(chunked_request, api, path, authorization, head, size)
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 413"), answer[:300]
    assert message in json.loads(body)["meta"]["error"]
    assert await api.engine.client.store.profiles.get("big") is None
    assert await api.engine.client.store.profiles.get("big/batch") is None


async def test_a_chunked_body_under_the_limit_is_taken(api: Api) -> None:
    async def stream() -> AsyncIterator[bytes]:
        yield b'{"batch": [{"type": "person", "action": "identify", "identifiers": {"id": "c"},'
        yield b' "attributes": {"pad": "'
        for _ in range(10):
            yield b"b" * 4096
        yield b'"}}]}'

    async with api.basic() as basic:
        r = await basic.post(
            "/api/v2/batch", content=stream(), headers={"content-type": "application/json"}
        )
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 200 and r.json()["results"] == [{"index": 0, "ok": True}]
    assert (await api.engine.client.person("c")).attributes == {"pad": "b" * 40960}


async def test_openapi_declares_credentials_and_every_error(api: Api) -> None:
    async with api.http() as anonymous:
        spec = (await anonymous.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["trackBasic"] == {
        "type": "http",
        "scheme": "basic",
        "description": "Customer.io Track API: HTTP Basic site_id:api_key.",
    }
    assert schemes["nativeBearer"]["scheme"] == schemes["appBearer"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in json.dumps(spec)
    public = {("/healthz", "get"), ("/unsubscribe", "get"), ("/unsubscribe", "post")}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert {"400", "500"} <= codes, (path, method)
            if (path, method) not in public:
                [requirement] = operation["security"]
                assert set(requirement) <= set(schemes), (path, method)
                assert {"401", "403", "429", "503"} <= codes, (path, method)
            if "requestBody" in operation:
                assert {"413", "415", "422"} <= codes, (path, method)
            if "{" in path:
                assert "404" in codes, (path, method)
            for code in codes - {"200", "201", "202"}:
                content = operation["responses"][code]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Error"}
    assert spec["paths"]["/api/v2/batch"]["post"]["security"] == [{"trackBasic": []}]
    assert spec["paths"]["/v1/people"]["get"]["security"] == [{"nativeBearer": []}]
    assert spec["paths"]["/v1/campaigns/{campaign_id}/triggers"]["post"]["security"] == [
        {"appBearer": []}
    ]
