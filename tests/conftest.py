"""One Temporal dev server for the session; a worker on its own task queue per test."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client

from activities.channels import build_channels
from activities.journey import JourneyActivities
from journeys.client import JourneysClient
from journeys.config import Settings, TemporalSettings
from journeys.devserver import DevServer
from journeys.sinks import MailCatcher, WebhookSink
from journeys.store import Store
from journeys.temporal import connect
from tests.browser import browser  # noqa: F401  (the fixture, for every test module)
from tests.helpers import Engine, copy_examples
from tests.peers import FcmPeer, TwilioPeer
from workers.worker import running_worker

POSTGRES = os.environ.get("JOURNEYS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    log = tmp_path_factory.mktemp("temporal") / "server.log"
    with DevServer(log_file=log) as server:
        yield server


@pytest.fixture(scope="session")
async def temporal(temporal_server: DevServer) -> Client:
    return await connect(TemporalSettings(address=temporal_server.address))


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for the session, dropped afterwards."""
    name = f"journeys_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(POSTGRES)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """A store on each backend, migrated."""
    opened = await Store.open(store_url)
    yield opened
    await opened.close()


@pytest.fixture
def mail() -> Iterator[MailCatcher]:
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


@pytest.fixture
def hooks() -> Iterator[WebhookSink]:
    sink = WebhookSink().start()
    yield sink
    sink.stop()


SIGNING_SECRET = "test-signing-secret"


def engine_settings(
    address: str,
    store_url: str,
    mail_port: int,
    *,
    twilio: TwilioPeer | None = None,
    fcm: FcmPeer | None = None,
) -> Settings:
    settings: dict[str, Any] = {
        "temporal": {"address": address, "task_queue": f"test-{secrets.token_hex(6)}"},
        "store": {"url": store_url},
        "email": {"host": "127.0.0.1", "port": mail_port},
        "webhook": {"timeout": 5, "allow_private": ["127.0.0.0/8"]},
        "preferences": {
            "unsubscribe_url": "https://acme.example/unsubscribe",
            "signing_secret": SIGNING_SECRET,
        },
    }
    if twilio is not None:
        settings["sms"] = {
            "base_url": twilio.http.url,
            "account_sid": twilio.account_sid,
            "auth_token": twilio.auth_token,
            "from_number": "+15005550006",
            "default_region": "GB",
        }
    if fcm is not None:
        settings["push"] = {
            "base_url": fcm.http.url,
            "service_account": json.dumps(fcm.service_account()),
        }
    return Settings.model_validate(settings)


@pytest.fixture
def twilio() -> Iterator[TwilioPeer]:
    peer = TwilioPeer()
    yield peer
    peer.http.stop()


@pytest.fixture(scope="session")
def fcm_session() -> Iterator[FcmPeer]:
    peer = FcmPeer()  # one RSA key for the session: generating one takes a while
    yield peer
    peer.http.stop()


@pytest.fixture
def fcm(fcm_session: FcmPeer) -> FcmPeer:
    fcm_session.sent.clear()
    fcm_session.errors.clear()
    fcm_session.unregistered.clear()
    return fcm_session


@pytest.fixture
async def engine(
    temporal_server: DevServer,
    temporal: Client,
    tmp_path: Path,
    mail: MailCatcher,
    hooks: WebhookSink,
    twilio: TwilioPeer,
    fcm: FcmPeer,
) -> AsyncIterator[Engine]:
    """Workers on task queues of their own, with a client on a copy of the examples."""
    settings = engine_settings(
        temporal_server.address, f"sqlite:///{tmp_path}/store.db", mail.port, twilio=twilio, fcm=fcm
    )
    directory = copy_examples(tmp_path / "journeys")
    store = await Store.open(settings.store.url)
    activities = JourneyActivities(store, build_channels(settings), settings.preferences)
    try:
        async with (
            running_worker(settings, client=temporal, activities=activities),
            await JourneysClient.connect(settings, directory=directory) as client,
        ):
            yield Engine(
                client, temporal, settings, directory, mail, hooks, twilio, fcm, activities
            )
    finally:
        for channel in activities.channels.values():
            await channel.close()
        await store.close()
