"""The HTTP API over HTTPS: Customer.io's own Python package, broadcasts, the native API."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import customerio
import httpx
import pytest
import trustme
import uvicorn

from journeys import (
    AsyncClient,
    AuthenticationError,
    Client,
    EngineUnavailableError,
    InvalidRequestError,
    RateLimitError,
)
from journeys.devserver import free_port
from journeys.server import create_app
from tests.helpers import Engine, eventually
from tests.peers import HttpPeer

SITE_ID, API_KEY, TOKEN, APP_KEY = "site-1", "track-key", "native-token", "app-key"


@dataclass
class Api:
    url: str
    ca: str
    engine: Engine
    port: int

    def http(self, **headers: str) -> httpx.AsyncClient:
        context = ssl.create_default_context(cafile=self.ca)
        return httpx.AsyncClient(base_url=self.url, verify=context, headers=headers)

    def native(self) -> httpx.AsyncClient:
        return self.http(authorization=f"Bearer {TOKEN}")

    def basic(self, site: str = SITE_ID, key: str = API_KEY) -> httpx.AsyncClient:
        raw = base64.b64encode(f"{site}:{key}".encode()).decode()
        return self.http(authorization=f"Basic {raw}")


async def serve(engine: Engine, tmp_path: Path, **server: Any) -> AsyncIterator[Api]:
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1", "localhost")
    ca, certfile, keyfile = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    authority.cert_pem.write_to_path(str(ca))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    settings = engine.settings.model_copy(
        update={
            "server": engine.settings.server.model_copy(
                update={
                    "site_id": SITE_ID,
                    "api_key": API_KEY,
                    "tokens": [TOKEN],
                    "app_api_key": APP_KEY,
                    **server,
                }
            )
        }
    )
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, engine.client),
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(certfile),
        ssl_keyfile=str(keyfile),
        log_level="warning",
        # a client a test left open (a browser's TLS connection) would otherwise hold the
        # shutdown for asyncio's 30-second TLS close; `journeys serve` bounds it too
        timeout_graceful_shutdown=1,
    )
    server_task = uvicorn.Server(config)
    task = asyncio.create_task(server_task.serve())
    await eventually(lambda: asyncio.sleep(0, server_task.started), bool, what="the server")
    try:
        yield Api(f"https://127.0.0.1:{port}", str(ca), engine, port)
    finally:
        server_task.should_exit = True
        await task


@pytest.fixture
async def api(engine: Engine, tmp_path: Path) -> AsyncIterator[Api]:
    async for served in serve(engine, tmp_path):
        yield served


def customerio_client(api: Api, monkeypatch: pytest.MonkeyPatch) -> customerio.CustomerIO:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", api.ca)
    return customerio.CustomerIO(SITE_ID, API_KEY, host="127.0.0.1", port=api.port, retries=0)


async def test_the_official_customerio_package_works_against_the_server(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    cio = customerio_client(api, monkeypatch)
    client = api.engine.client

    def calls() -> None:
        cio.track_anonymous("anon-1", "viewed_pricing", {"plan": "pro"})
        cio.identify(
            "c1", email="c1@example.com", plan="pro", anonymous_id="anon-1", created_at=1700000000
        )
        cio.identify("c1", first_name="Cy")
        cio.track("c1", "purchase", {"amount": 42}, id="evt-1")
        cio.track("c1", "purchase", {"amount": 42}, id="evt-1")  # same id: recorded once
        cio.add_device("c1", "device-token-1", "ios", last_used=1700000100)
        cio.add_device("c2", "device-token-2", "android")
        cio.delete_device("c2", "device-token-2")
        cio.suppress("c2")
        cio.identify("c3", plan="free", city="Lyon")
        cio.merge_customers("id", "c1", "id", "c3")
        cio.batch(
            [
                {
                    "type": "person",
                    "action": "identify",
                    "identifiers": {"id": "c4"},
                    "attributes": {"email": "c4@example.com"},
                },
                {
                    "type": "person",
                    "action": "event",
                    "identifiers": {"email": "c4@example.com"},
                    "name": "login",
                },
            ]
        )
        cio.unsuppress("c2")
        cio.delete("c2")

    await asyncio.to_thread(calls)
    person = await client.person("c1")
    assert person.attributes == {
        "email": "c1@example.com",
        "plan": "pro",
        "first_name": "Cy",
        "created_at": 1700000000,
        "city": "Lyon",
    }
    assert [d["token"] for d in person.devices] == ["device-token-1"]
    assert await client.store.events.count("c1", "viewed_pricing") == 1  # the anonymous one
    assert await client.store.events.count("c1", "purchase") == 1
    assert await client.store.events.count("c4", "login") == 1
    with pytest.raises(Exception, match="unknown person 'c3'"):
        await client.person("c3")
    with pytest.raises(Exception, match="unknown person 'c2'"):
        await client.person("c2")
    assert await client.store.consent.suppression("c2", []) is None


async def test_a_tracked_event_starts_its_journey(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.engine.write(
        "hello_on_signup",
        "journey: hello_on_signup\n"
        "trigger: { event: signed_up }\nsteps:\n  - send: hello\n"
        "    channel: email\n    template: welcome\n",
    )
    cio = customerio_client(api, monkeypatch)
    await asyncio.to_thread(cio.identify, "t1", email="t1@example.com", first_name="Tess")
    await asyncio.to_thread(cio.track, "t1", "signed_up")
    mails = await asyncio.to_thread(api.engine.mail.wait_for, 1, 30)
    assert [m["Subject"] for m in mails] == ["Welcome to Acme, Tess!"]


async def test_bad_credentials(api: Api) -> None:
    async with (
        api.basic(key="wrong") as wrong,
        api.http() as anonymous,
        api.native() as native,
        api.basic() as basic,
        api.http(authorization=f"Bearer {APP_KEY}") as app,
        api.http(authorization="Bearer nope") as nope,
    ):
        r = await wrong.put("/api/v1/customers/x", json={})
        assert r.status_code == 401 and r.json()["meta"]["error"].startswith("unauthorized")
        assert r.headers["www-authenticate"] == "Basic"
        assert (await anonymous.put("/api/v1/customers/x", json={})).status_code == 401
        assert (await native.put("/api/v1/customers/x", json={})).status_code == 403
        assert (await basic.get("/v1/people")).status_code == 403
        assert (await app.get("/v1/people")).status_code == 403
        assert (await nope.get("/v1/people")).status_code == 401
        assert (await anonymous.get("/v1/people")).status_code == 401


async def test_bad_bodies_name_the_field(api: Api) -> None:
    async with api.basic() as basic, api.native() as native:
        r = await basic.post("/api/v1/customers/x/events", json={"data": {}})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "name"
        r = await basic.put(
            "/api/v1/customers/x/devices", json={"device": {"id": "t", "platform": "windows"}}
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "device.platform"
        r = await native.post("/v1/journeys/onboarding/trigger", json={"recipients": []})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "recipients"
        r = await native.post("/v1/journeys/onboarding/trigger", json={"recipients": ["ok", 42]})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "recipients[1]"
        r = await native.post("/v1/journeys/nope/trigger", json={"recipients": ["a"]})
        assert r.status_code == 404 and "expected one of demo, onboarding" in r.text
        r = await native.post("/v1/segments", json={"name": "s", "condition": {"atribute": 1}})
        assert r.status_code == 422 and "did you mean 'attribute'" in r.text
        r = await native.get("/v1/runs/no-such-run")
        assert r.status_code == 404


async def test_oversize_bodies_and_batches(api: Api) -> None:
    async with api.basic() as basic:
        big = {"name": "x", "data": {"blob": "a" * 40_000}}
        r = await basic.post("/api/v1/customers/x/events", json=big)
        assert r.status_code == 413 and "at most 32768 bytes" in r.json()["meta"]["error"]
        ops = [
            {
                "type": "person",
                "action": "event",
                "identifiers": {"id": "x"},
                "name": "e",
                "attributes": {"pad": "b" * 1000},
            }
            for _ in range(600)
        ]
        r = await basic.post("/api/v2/batch", json={"batch": ops})
        assert r.status_code == 413 and "batch too large" in r.json()["meta"]["error"]
        r = await basic.post("/api/v2/batch", json={"batch": []})
        assert r.status_code == 422
        r = await basic.post(
            "/api/v2/batch",
            json={
                "batch": [
                    {
                        "type": "person",
                        "action": "event",
                        "identifiers": {"email": "ghost@x.io"},
                        "name": "e",
                    },
                    {"type": "person", "action": "identify", "identifiers": {"id": "ok"}},
                ]
            },
        )
        assert r.status_code == 200
        assert r.json()["results"] == [
            {"index": 0, "ok": False, "error": "no person with email 'ghost@x.io'"},
            {"index": 1, "ok": True},
        ]


async def test_rate_limit_answers_429_with_retry_after(engine: Engine, tmp_path: Path) -> None:
    async for api in serve(engine, tmp_path, rate_limit=1.0):
        async with api.native() as native:
            answers = [await native.get("/v1/segments") for _ in range(4)]
        assert [a.status_code for a in answers[:2]] == [200, 200]  # a burst of two
        limited = [a for a in answers if a.status_code == 429]
        assert limited and int(limited[0].headers["retry-after"]) >= 1


async def test_broadcast_trigger_with_per_user_data(api: Api) -> None:
    api.engine.write(
        "templates/promo",
        'email: { subject: "{{ trigger.offer }} for '
        "{{ trigger.name | default: 'you' }}\", text: x }",
    )
    api.engine.write(
        "promo",
        "journey: promo\nbroadcast_id: 7\nsteps:\n  - send: offer\n"
        "    channel: email\n    template: promo\n",
    )
    await api.engine.client.identify("b1", {"email": "b1@example.com"})
    async with api.http(authorization=f"Bearer {APP_KEY}") as app:
        r = await app.post(
            "/v1/campaigns/7/triggers",
            json={
                "ids": ["b1"],
                "data": {"offer": "20% off"},
                "per_user_data": [{"email": "b2@example.com", "data": {"name": "Bo"}}],
            },
        )
    assert r.status_code == 200, r.text
    assert r.json()["id"].startswith("trg_")
    mails = await asyncio.to_thread(api.engine.mail.wait_for, 2, 30)
    assert sorted(m["Subject"] for m in mails) == ["20% off for Bo", "20% off for you"]


async def test_native_client_sync_and_async(api: Api) -> None:
    def use_sync() -> tuple[dict[str, Any], dict[str, Any]]:
        with Client(api.url, TOKEN, verify=api.ca, batch_size=50) as sync:
            for i in range(3):
                sync.identify(f"n{i}", {"email": f"n{i}@example.com"})
                sync.track(f"n{i}", "login")
            assert len(sync.queue) == 6  # buffered until flushed
            handle = sync.trigger("onboarding", ["n0"])
            cancelled = sync.cancel(handle["trigger_id"])
            person = sync.person("n2")  # flushes first
        return cancelled, person

    cancelled, person = await asyncio.to_thread(use_sync)
    assert cancelled["runs"][0]["state"] == "cancelled"
    assert person["attributes"] == {"email": "n2@example.com"}
    assert await api.engine.client.store.events.count("n1", "login") == 1

    async with AsyncClient(api.url, TOKEN, verify=api.ca, batch_size=2) as client:
        await client.track("a1", "ping")
        assert len(client.queue) == 1
        await client.track("a1", "ping")  # the second one fills the batch: sent
        assert client.queue == []
        await client.track("a1", "pong")
    assert await api.engine.client.store.events.count("a1", "pong") == 1  # flushed on close

    def typed_errors() -> list[type[Exception]]:
        seen = []
        for token, call in (
            ("bad", lambda c: c.status("x")),
            (TOKEN, lambda c: c.trigger("onboarding", [])),
            (TOKEN, lambda c: c.segment_members("nope")),
        ):
            try:
                with Client(api.url, token, verify=api.ca) as client:
                    call(client)
            except Exception as exc:
                seen.append(type(exc))
        return seen

    from journeys import UnknownRunError

    assert await asyncio.to_thread(typed_errors) == [
        AuthenticationError,
        InvalidRequestError,
        UnknownRunError,
    ]


def test_client_retries_429_and_5xx_only() -> None:
    answers = iter([(503, {}), (429, {}), (202, {"trigger_id": "trg_1", "runs": []})])
    peer = HttpPeer(lambda request: next(answers))
    try:
        client = Client(peer.url, TOKEN, backoff=0.01)
        assert client.trigger("j", ["a"])["trigger_id"] == "trg_1"
        assert len(peer.requests) == 3
        assert peer.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    finally:
        peer.stop()
    bad = HttpPeer(
        lambda request: (
            422,
            {"meta": {"error": "x"}, "errors": [{"field": "data", "message": "bad"}]},
        )
    )
    try:
        with pytest.raises(InvalidRequestError, match="data: bad"):
            Client(bad.url, TOKEN, backoff=0.01).trigger("j", ["a"])
        assert len(bad.requests) == 1  # a 4xx is not retried
    finally:
        bad.stop()
    busy = HttpPeer(lambda request: (429, {"meta": {"error": "slow down"}}))
    try:
        with pytest.raises(RateLimitError, match="slow down"):
            Client(busy.url, TOKEN, backoff=0.01, max_retries=2).trigger("j", ["a"])
        assert len(busy.requests) == 3
    finally:
        busy.stop()
    with pytest.raises(EngineUnavailableError, match="cannot reach"):
        Client(f"http://127.0.0.1:{free_port()}", TOKEN, backoff=0.01, max_retries=1).trigger(
            "j", ["a"]
        )


def test_queued_operations_survive_a_failed_flush() -> None:
    down = HttpPeer(lambda request: (503, {"meta": {"error": "down"}}))
    try:
        client = Client(down.url, TOKEN, backoff=0.01, max_retries=1)
        client.track("q1", "e")
        with pytest.raises(EngineUnavailableError):
            client.flush()
        assert [op["event"] for op in client.queue] == ["e"]  # nothing lost
        event_ids = {json.loads(r.body)["operations"][0]["event_id"] for r in down.requests}
        assert len(event_ids) == 1  # retried with the same event id: recorded once at most
    finally:
        down.stop()


async def test_openapi_describes_the_api(api: Api) -> None:
    async with api.http() as anonymous:
        spec = (await anonymous.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in (
        "/api/v1/customers/{identifier}",
        "/api/v1/customers/{identifier}/events",
        "/api/v1/events",
        "/api/v1/merge_customers",
        "/api/v2/batch",
        "/v1/campaigns/{campaign_id}/triggers",
        "/v1/journeys/{journey}/trigger",
        "/v1/people/{person_id}/export",
        "/v1/segments/{name}/members",
    ):
        assert path in paths


async def test_unsubscribe_link_served_by_the_api(api: Api) -> None:
    from journeys.consent import sign_unsubscribe
    from tests.conftest import SIGNING_SECRET

    token = sign_unsubscribe(SIGNING_SECRET, "u-unsub", "news")
    async with api.http() as anonymous:
        page = await anonymous.post(  # what a mail client sends (RFC 8058)
            "/unsubscribe", params={"token": token}, data={"List-Unsubscribe": "One-Click"}
        )
        forged = await anonymous.get("/unsubscribe", params={"token": token + "x"})
    assert page.status_code == 200 and "unsubscribed" in page.text
    assert forged.status_code == 400
    prefs = await api.engine.client.preferences("u-unsub")
    assert prefs.topics == {"news": False}
