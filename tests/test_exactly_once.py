"""Nothing is sent twice: activity retries after a recorded send, and a killed worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from temporalio.client import Client

from activities.channels import build_channels
from activities.journey import JourneyActivities
from journeys.client import JourneysClient
from journeys.config import Settings
from journeys.devserver import DevServer
from journeys.models import TriggerStatus
from journeys.sinks import MailCatcher, WebhookSink
from journeys.store import MessageRecord, MessageStore, Store
from tests.conftest import engine_settings
from tests.helpers import REPO, Engine, copy_examples, eventually
from tests.peers import HttpPeer, Reply, Request
from workers.worker import running_worker


class LosesTheFirstReply(MessageStore):
    """Records a sent message, then fails as if the worker died before reporting it."""

    failed = 0

    async def save(self, message: MessageRecord) -> None:
        await super().save(message)
        if message.state == "sent" and not self.failed:
            self.failed += 1
            raise ConnectionError("lost the connection after recording the send")


async def test_an_activity_retried_after_the_send_was_recorded_sends_nothing_more(
    temporal_server: DevServer,
    temporal: Client,
    tmp_path: Path,
    mail: MailCatcher,
    hooks: WebhookSink,
) -> None:
    settings = engine_settings(temporal_server.address, f"sqlite:///{tmp_path}/store.db", mail.port)
    store = await Store.open(settings.store.url)
    store.messages = log = LosesTheFirstReply(store.db)
    activities = JourneyActivities(store, build_channels(settings), settings.preferences)
    directory = copy_examples(tmp_path / "journeys")
    async with (
        running_worker(settings, client=temporal, activities=activities),
        await JourneysClient.connect(settings, directory=directory) as client,
    ):
        engine = Engine(client, temporal, settings, directory, mail, hooks)
        engine.write(
            "once",
            "journey: once\nsteps:\n  - send: hello\n    channel: email\n    template: welcome\n",
        )
        handle = await client.trigger("once", [{"id": "o1", "email": "o1@example.com"}])
        status = await engine.until_done(handle.run_id)
    assert log.failed == 1
    assert len(mail.messages) == 1
    [entry] = status.timeline
    assert entry.outcome == "sent" and entry.detail["recorded"] is True
    for channel in activities.channels.values():
        await channel.close()
    await store.close()


async def recorded_sent(store: Store, step: str, count: int) -> None:
    async def sent() -> int:
        return sum(
            1 for m in await store.messages.find(limit=1000) if m.step == step and m.state == "sent"
        )

    await eventually(sent, lambda n: n >= count, timeout=60, what=f"{count} {step} sent")


def worker_env(settings: Settings, mail: MailCatcher) -> dict[str, str]:
    """The environment of a worker process on the test's task queue, store and mail catcher."""
    return {
        "JOURNEYS_TEMPORAL_ADDRESS": settings.temporal.address,
        "JOURNEYS_TEMPORAL_TASK_QUEUE": settings.temporal.task_queue,
        "JOURNEYS_STORE_URL": settings.store.url,
        "JOURNEYS_EMAIL_HOST": "127.0.0.1",
        "JOURNEYS_EMAIL_PORT": str(mail.port),
        "JOURNEYS_WEBHOOK_ALLOW_PRIVATE": "127.0.0.0/8",
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "workers"],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


async def test_a_worker_killed_mid_journey_delivers_each_message_once(
    temporal_server: DevServer,
    temporal: Client,
    tmp_path: Path,
    mail: MailCatcher,
    hooks: WebhookSink,
) -> None:
    settings = engine_settings(temporal_server.address, f"sqlite:///{tmp_path}/store.db", mail.port)
    directory = copy_examples(tmp_path / "journeys")
    (directory / "steady.yaml").write_text(f"""
journey: steady
steps:
  - send: first
    channel: email
    template: welcome
  - wait: 2s
  - send: second
    channel: webhook
    url: {hooks.url}/second
  - wait: 2s
  - send: third
    channel: email
    template: pro_tips
""")
    env = worker_env(settings, mail)
    log = tmp_path / "worker.log"
    people = [{"id": f"k{i}", "email": f"k{i}@example.com"} for i in range(3)]
    worker = start_worker(env, log)
    try:
        async with await JourneysClient.connect(settings, directory=directory) as client:
            handle = await client.trigger("steady", people)
            # Kill only once every "first" is recorded as sent: outside any provider call.
            await recorded_sent(client.store, "first", 3)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            worker = start_worker(env, log)
            await recorded_sent(client.store, "second", 3)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            worker = start_worker(env, log)
            statuses: list[Any] = [
                await eventually(
                    lambda run=run: client.status(run.run_id),
                    lambda s: s.done,
                    timeout=120,
                    what="the end of the run",
                )
                for run in handle.runs
            ]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert [s.state for s in statuses] == ["completed"] * 3, log.read_text()[-2000:]
    for person in people:
        subjects = [m["Subject"] for m in mail.to(person["email"])]
        assert sorted(subjects) == sorted(
            ["Welcome to Acme, friend!", "Three things pro users love"]
        )
    assert sorted(r.path for r in hooks.requests) == ["/second"] * 3


async def test_a_cohort_killed_mid_send_resumes_without_resending(
    temporal_server: DevServer,
    temporal: Client,
    tmp_path: Path,
    mail: MailCatcher,
    hooks: WebhookSink,
) -> None:
    """The provider takes the first 12 messages of a batch of 30, then answers 503 (so none
    is in flight when the worker dies); the batch is retrying when the worker is killed."""
    accepted: list[str] = []
    gate = threading.Event()
    lock = threading.Lock()

    def provider(request: Request) -> Reply:
        with lock:  # the server answers on several threads
            if len(accepted) >= 12 and not gate.is_set():
                return 503, {"error": "busy"}
            accepted.append(request.json()["customer"]["id"])
        return 200, {}

    peer = HttpPeer(provider)
    settings = engine_settings(temporal_server.address, f"sqlite:///{tmp_path}/store.db", mail.port)
    directory = copy_examples(tmp_path / "journeys")
    (directory / "batched.yaml").write_text(f"""
journey: batched
steps:
  - send: note
    channel: webhook
    url: {peer.url}/note
  - send: hello
    channel: email
    template: welcome
""")
    env = worker_env(settings, mail)
    log = tmp_path / "worker.log"
    people = [{"id": f"m{i:02d}", "email": f"m{i}@example.com"} for i in range(30)]
    worker = start_worker(env, log)
    try:
        async with await JourneysClient.connect(settings, directory=directory) as client:
            handle = await client.trigger("batched", people, cohorts=True)
            await recorded_sent(client.store, "note", 12)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            sent_before = {
                m.recipient_id
                for m in await client.store.messages.find(limit=1000)
                if m.step == "note" and m.state == "sent"
            }
            gate.set()
            worker = start_worker(env, log)
            status = await eventually(
                lambda: client.status(handle.trigger_id),
                lambda s: s.done,
                timeout=120,
                what="the end of the cohort",
            )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        peer.stop()
    assert isinstance(status, TriggerStatus)
    assert status.counts == {"completed": 30}, log.read_text()[-2000:]
    assert len(sent_before) == 12, "killed mid-send: part of the batch was done"
    assert sorted(accepted) == sorted(p["id"] for p in people)  # each accepted exactly once
    assert status.steps["note"] == {"reached": 30, "sent": 30}
    assert len(mail.messages) == 30
