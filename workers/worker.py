"""The journeys worker: runs journey workflows and their activities."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.channels import build_channels
from activities.journey import JourneyActivities
from definitions.channels import CHANNELS
from definitions.runtime import channel_queue
from definitions.trigger_workflow import TriggerWorkflow
from definitions.workflow import JourneyWorkflow
from journeys.config import Settings
from journeys.process import STOP_SIGNALS, WORKER_SHUTDOWN_GRACE
from journeys.store import Store
from journeys.temporal import connect, ensure_search_attributes

__all__ = [
    "PASSTHROUGH",
    "build_workers",
    "channel_queue",
    "configure_logging",
    "rate_limits",
    "run_worker",
    "running_worker",
    "workflow_runner",
]

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


def configure_logging() -> None:
    """The worker's log: its own lines at INFO; HTTP clients' per-request lines left out.

    A cohort sends thousands of webhooks, SMS and pushes a minute: one log line each would
    bury the worker's own lines (failures are in the message log and the Temporal UI).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox runner used by workers and replay tests alike."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def build_workers(
    client: Client,
    activities: JourneyActivities,
    task_queue: str,
    settings: Settings,
    *,
    graceful_shutdown: timedelta = timedelta(),
) -> list[Worker]:
    """The workers of one process: workflows and checks, and one per channel's sends.

    A channel's ``rate_limit`` (messages per second) becomes its task queue's activity rate
    limit, which the Temporal server enforces across every worker polling it.

    Args:
        client: the Temporal client.
        activities: the activities to run.
        task_queue: the main task queue.
        settings: the configuration (channels' rate limits).
        graceful_shutdown: how long running activities may go on once shutdown begins.

    """
    main = Worker(
        client,
        task_queue=task_queue,
        workflows=[JourneyWorkflow, TriggerWorkflow],
        activities=activities.all(),
        workflow_runner=workflow_runner(),
        graceful_shutdown_timeout=graceful_shutdown,
    )
    workers = [main]
    for name in activities.channels:
        rate = settings.channel(name).rate_limit if name in CHANNELS else None
        workers.append(
            Worker(
                client,
                task_queue=channel_queue(task_queue, name),
                activities=activities.sends(),
                max_task_queue_activities_per_second=rate,
                graceful_shutdown_timeout=graceful_shutdown,
            )
        )
    return workers


def rate_limits(settings: Settings) -> dict[str, float]:
    """Each channel's configured messages per second, where one is set."""
    return settings.rate_limits()


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings,
    *,
    client: Client | None = None,
    task_queue: str | None = None,
    activities: JourneyActivities | None = None,
    graceful_shutdown: timedelta = timedelta(),
) -> AsyncIterator[list[Worker]]:
    """The workers running in the background of the current event loop until the block ends.

    Args:
        settings: the configuration.
        client: a Temporal client (default: one connected from the settings).
        task_queue: the main task queue (default: the configured one).
        activities: the activities to run (default: built from the settings).
        graceful_shutdown: once the block ends, how long running activities may go on
            before they are cancelled (default: cancelled at once).

    """
    if warning := settings.preferences.link_warning():
        log.warning(warning)
    client = client or await connect(settings.temporal)
    await ensure_search_attributes(client)
    store = None
    if activities is None:
        store = await Store.open(settings.store.url)
        activities = JourneyActivities(
            store,
            build_channels(settings),
            settings.preferences,
            rate_limits=rate_limits(settings),
        )
    queue = task_queue or settings.temporal.task_queue
    try:
        async with contextlib.AsyncExitStack() as stack:
            workers = build_workers(
                client, activities, queue, settings, graceful_shutdown=graceful_shutdown
            )
            for worker in workers:
                await stack.enter_async_context(worker)
            yield workers
    finally:
        if store is not None:
            for channel in activities.channels.values():
                await channel.close()
            await store.close()


async def run_worker(settings: Settings, *, grace: timedelta = WORKER_SHUTDOWN_GRACE) -> None:
    """Run a worker until SIGINT or SIGTERM, then stop gracefully.

    On the first signal the worker stops polling for new tasks, lets running activities
    (sends, store writes) finish for up to ``grace``, and cancels what is still running
    then: Temporal sees those attempts fail and retries them on another worker, by the
    activity's retry policy (a send's message record keeps a retried send from going out
    twice). A signal while the worker is still connecting stops it at once; more signals
    while it stops are logged and otherwise waited out.

    Args:
        settings: the configuration.
        grace: how long running activities may go on once stopping.

    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    polling = False

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.info("%s again: still stopping (running activities have up to %s)", sig.name, grace)
            return
        stop.set()
        if not polling and task is not None:
            task.cancel()  # still connecting: nothing to finish

    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal, sig)
    try:
        async with running_worker(settings, graceful_shutdown=grace):
            polling = True
            log.info(
                "worker polling task queue %r on %s",
                settings.temporal.task_queue,
                settings.temporal.address,
            )
            await stop.wait()
            log.info("stopping the worker: running activities have up to %s to finish", grace)
    except asyncio.CancelledError:
        if polling or not stop.is_set():
            raise
    finally:
        for sig in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
    log.info("worker stopped")
