"""The journeys worker: runs journey workflows and their activities."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.channels import build_channels
from activities.journey import JourneyActivities
from definitions.workflow import JourneyWorkflow
from journeys.config import Settings
from journeys.store import Store
from journeys.temporal import connect, ensure_search_attributes

__all__ = ["PASSTHROUGH", "build_worker", "run_worker", "running_worker", "workflow_runner"]

log = logging.getLogger("journeys.worker")

PASSTHROUGH = (
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "ruamel",
    "liquid",
    "jinja2",
    "markupsafe",
    "definitions",
)
"""Modules the workflow sandbox shares instead of re-importing: pure, deterministic code."""


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox runner used by workers and replay tests alike."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def build_worker(client: Client, activities: JourneyActivities, task_queue: str) -> Worker:
    """A worker for the journey workflow and the given activities on a task queue."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[JourneyWorkflow],
        activities=activities.all(),
        workflow_runner=workflow_runner(),
    )


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, *, client: Client | None = None, task_queue: str | None = None
) -> AsyncIterator[Worker]:
    """A worker running in the background of the current event loop until the block ends."""
    client = client or await connect(settings.temporal)
    await ensure_search_attributes(client)
    store = await Store.open(settings.store.url)
    activities = JourneyActivities(store, build_channels(settings))
    worker = build_worker(client, activities, task_queue or settings.temporal.task_queue)
    try:
        async with worker:
            yield worker
    finally:
        for channel in activities.channels.values():
            await channel.close()
        await store.close()


async def run_worker(settings: Settings) -> None:
    """Run a worker until SIGINT or SIGTERM, then finish in-flight tasks and stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with running_worker(settings):
        log.info(
            "worker polling task queue %r on %s",
            settings.temporal.task_queue,
            settings.temporal.address,
        )
        await stop.wait()
        log.info("stopping the worker")
