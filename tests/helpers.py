"""Shared helpers: bounded waiting on conditions, and a per-test engine."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.journey import JourneyActivities
from journeys.client import JourneysClient
from journeys.config import Settings
from journeys.models import RunStatus
from journeys.sinks import MailCatcher, WebhookSink
from tests.peers import FcmPeer, TwilioPeer

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "journeys"


async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    *,
    timeout: float = 30.0,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until ``until`` accepts its value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.1)


@dataclass
class Engine:
    """A worker on its own task queue, a client, local peers and a journeys directory."""

    client: JourneysClient
    temporal: Client
    settings: Settings
    directory: Path
    mail: MailCatcher
    hooks: WebhookSink
    twilio: TwilioPeer | None = None
    fcm: FcmPeer | None = None
    activities: JourneyActivities | None = None

    def write(self, name: str, text: str) -> Path:
        """Write a journey (or ``templates/x``, ``segments``) YAML file."""
        path = self.directory / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    async def run_status(self, run_id: str) -> RunStatus:
        status = await self.client.status(run_id)
        assert isinstance(status, RunStatus)
        return status

    async def until_done(self, run_id: str, timeout: float = 30.0) -> RunStatus:
        return await eventually(
            lambda: self.run_status(run_id),
            lambda s: s.done,
            timeout=timeout,
            what=f"end of run {run_id}",
        )

    async def until_at(self, run_id: str, step: str, timeout: float = 30.0) -> RunStatus:
        return await eventually(
            lambda: self.run_status(run_id),
            lambda s: s.current_step == step or s.done,
            timeout=timeout,
            what=f"run {run_id} at {step}",
        )

    async def history_events(self, workflow_id: str, run_id: str) -> list[Any]:
        handle = self.temporal.get_workflow_handle(workflow_id, run_id=run_id)
        return [e async for e in handle.fetch_history_events()]

    async def pending_timers(self, workflow_id: str, run_id: str) -> list[Any]:
        """TimerStarted events with no TimerFired/TimerCanceled yet."""
        events = await self.history_events(workflow_id, run_id)
        started = {
            e.event_id: e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
        }
        for e in events:
            if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
                started.pop(e.timer_fired_event_attributes.started_event_id, None)
            if e.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
                started.pop(e.timer_canceled_event_attributes.started_event_id, None)
        return list(started.values())


def copy_examples(target: Path) -> Path:
    """A copy of the repo's journeys directory (YAML only) to edit freely."""
    target.mkdir(parents=True, exist_ok=True)
    for path in EXAMPLES.glob("*.yaml"):
        shutil.copy(path, target / path.name)
    shutil.copytree(EXAMPLES / "templates", target / "templates", dirs_exist_ok=True)
    return target
