"""``journeys dev``: the Temporal dev server, a worker, the catchers and the inbox page.

It stops cleanly on the first Ctrl-C or SIGTERM: the worker, the catchers, the page and the
Temporal server are stopped and the command exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from definitions.errors import ConfigurationError
from journeys.config import Settings
from journeys.dev.inbox import Inbox, Origin
from journeys.dev.page import InboxPage

__all__ = ["run_dev"]

Say = Callable[[str], None]


class _Stop(Exception):
    """Ctrl-C or SIGTERM arrived while starting (before the event loop took them over)."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A second signal while stopping: stopping is already under way."""


@contextlib.contextmanager
def _signals(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _say(line: str) -> None:
    print(line, flush=True)


def run_dev(settings: Settings, *, worker: bool = True, say: Say = _say) -> int:
    """Run until Ctrl-C or SIGTERM; returns the exit code (0).

    Args:
        settings: the configuration (``[dev]`` and the channels' sections).
        worker: run a worker (with catchers and the inbox); False: only the Temporal server.
        say: where the startup lines go.

    Raises:
        EngineUnavailableError: the Temporal dev server did not start.

    """
    from journeys.devserver import DevServer

    dev = settings.dev
    state = Path(dev.db_file)
    state.parent.mkdir(parents=True, exist_ok=True)
    page = _inbox_page(settings) if worker else None
    server = DevServer(
        port=dev.port,
        ui_port=dev.ui_port,
        db_file=state,
        log_file=state.with_suffix(".log"),
    )
    try:
        with _signals(_stop):
            server.start()
            say(f"Temporal dev server on {server.address}, state kept in {dev.db_file}")
            say(f"Temporal UI: {server.ui_url}")
            if page is not None:
                asyncio.run(_serve(settings, server.address, page, say))
            else:
                say("no worker started (--no-worker); Ctrl-C to stop")
                asyncio.run(_wait())
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        with _signals(_ignore):
            say("stopping …")
            server.stop()
            if page is not None:
                page.stop()
    return 0


def _inbox_page(settings: Settings) -> InboxPage:
    """The inbox page, its port taken (before anything else starts: a clear error if busy).

    Raises:
        ConfigurationError: the port is in use or cannot be had.

    """
    port = settings.dev.inbox_port
    try:
        return InboxPage(Inbox(settings.dev.inbox_file), port=port)
    except OSError as exc:
        raise ConfigurationError(
            f"[dev] inbox_port {port}: cannot listen on it ({exc.strerror or exc}); is another "
            "`journeys dev` running? Stop it, or choose another port in journeys.toml"
        ) from None


async def _wait() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _serve(settings: Settings, address: str, page: InboxPage, say: Say) -> None:
    from activities.channels import Channel, build_channels
    from activities.journey import JourneyActivities
    from journeys.dev.catchers import Catchers, origin_in_store
    from journeys.dev.webhooks import CaughtWebhookChannel
    from journeys.store import Store
    from workers.worker import configure_logging, rate_limits, running_worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    configure_logging()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per connection
    temporal = settings.temporal.model_copy(update={"address": address})
    settings = settings.model_copy(update={"temporal": temporal})
    async with contextlib.AsyncExitStack() as stack:
        store = await Store.open(settings.store.url)
        stack.push_async_callback(store.close)

        def resolve(message_id: str) -> Origin:
            # Called from a catcher's thread; the store belongs to this loop.
            future = asyncio.run_coroutine_threadsafe(origin_in_store(store, message_id), loop)
            return future.result(timeout=10)

        catchers = Catchers(settings, page.inbox, resolve).start()
        stack.callback(catchers.stop)
        page.start()
        stack.callback(page.stop)
        worker_settings = catchers.worker_settings()
        channels: dict[str, Channel] = dict(build_channels(worker_settings))
        webhook_catcher = catchers.url("webhook")
        if webhook_catcher:
            await channels["webhook"].close()
            channels["webhook"] = CaughtWebhookChannel(
                worker_settings.webhook, catcher_url=webhook_catcher
            )

        async def close_channels() -> None:
            for channel in channels.values():
                await channel.close()

        stack.push_async_callback(close_channels)
        activities = JourneyActivities(
            store,
            channels,
            worker_settings.preferences,
            rate_limits=rate_limits(worker_settings),
        )
        await stack.enter_async_context(running_worker(worker_settings, activities=activities))
        say(f"Inbox: {page.url} (or `journeys inbox`), kept in {settings.dev.inbox_file}")
        for line in catchers.describe():
            say(line)
        say(f"worker polling task queue {settings.temporal.task_queue!r}; Ctrl-C to stop")
        await stop.wait()
    sys.stdout.flush()
