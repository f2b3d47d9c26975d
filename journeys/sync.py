"""The synchronous API: ``trigger``, ``status``, ``cancel`` and ``track`` as plain functions.

They share one :class:`~journeys.client.JourneysClient`, connected on first use from the
configuration and driven by an event loop on a background thread, so they work in any
synchronous program (a Django view, a script, a Celery task).
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from journeys.client import JourneysClient
from journeys.client.people import TrackResult
from journeys.config import Settings
from journeys.models import RunStatus, TriggerHandle, TriggerStatus
from journeys.store import MessageRecord

__all__ = ["cancel", "configure", "status", "track", "trigger"]

T = TypeVar("T")


class _Background:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="journeys", daemon=True)
        self.thread.start()
        self.client: Future[JourneysClient] | None = None

    def run(self, coro: Coroutine[object, object, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self.client is not None and self.client.done() and not self.client.exception():
            self.run(self.client.result().close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


_lock = threading.Lock()
_background: _Background | None = None
_settings: Settings | None = None
_directory: str | None = None


def configure(settings: Settings | None = None, *, directory: str | None = None) -> None:
    """Use these settings (instead of journeys.toml) for the functions of this module.

    Args:
        settings: the configuration to connect with.
        directory: the journeys directory.

    """
    global _settings, _directory
    with _lock:
        _shutdown()
        _settings, _directory = settings, directory


def _client() -> tuple[_Background, JourneysClient]:
    global _background
    with _lock:
        if _background is None:
            _background = _Background()
        background = _background
        if background.client is None or background.client.exception():
            background.client = asyncio.run_coroutine_threadsafe(
                JourneysClient.connect(_settings, directory=_directory), background.loop
            )
    return background, background.client.result()


def _shutdown() -> None:
    global _background
    if _background is not None:
        _background.stop()
        _background = None


atexit.register(_shutdown)


def trigger(
    journey: str,
    recipients: Sequence[str | Mapping[str, object]],
    *,
    data: Mapping[str, object] | None = None,
    idempotency_key: str | None = None,
    per_recipient_data: Mapping[str, Mapping[str, object]] | None = None,
    cohorts: bool | None = None,
) -> TriggerHandle:
    """Start a journey for recipients; see :meth:`JourneysClient.trigger`."""
    background, client = _client()
    return background.run(
        client.trigger(
            journey,
            recipients,
            data=data,
            idempotency_key=idempotency_key,
            per_recipient_data=per_recipient_data,
            cohorts=cohorts,
        )
    )


def status(run_or_trigger_id: str, *, recipient: str | None = None) -> RunStatus | TriggerStatus:
    """The status of a run, a trigger or one recipient of it; see JourneysClient.status."""
    background, client = _client()
    return background.run(client.status(run_or_trigger_id, recipient=recipient))


def cancel(run_or_trigger_id: str) -> RunStatus | TriggerStatus:
    """Cancel a run or trigger; see :meth:`JourneysClient.cancel`."""
    background, client = _client()
    return background.run(client.cancel(run_or_trigger_id))


def track(recipient_id: str, event: str, data: Mapping[str, object] | None = None) -> TrackResult:
    """Record an event for a recipient; see :meth:`JourneysClient.track`."""
    background, client = _client()
    return background.run(client.track(recipient_id, event, data))


def message_status(message_id: str) -> MessageRecord:
    """A message from the log; see :meth:`JourneysClient.message_status`."""
    background, client = _client()
    return background.run(client.message_status(message_id))


def messages(*, recipient: str | None = None, run: str | None = None) -> list[MessageRecord]:
    """Messages of a recipient or run; see :meth:`JourneysClient.messages`."""
    background, client = _client()
    return background.run(client.messages(recipient=recipient, run=run))


def preview(
    template: str,
    channel: str,
    *,
    recipient: str | None = None,
    profile: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Render a template for a profile; see :meth:`JourneysClient.preview`."""
    background, client = _client()
    return background.run(
        client.preview(template, channel, recipient=recipient, profile=profile, data=data)
    )


def call(action: Callable[[JourneysClient], Coroutine[object, object, T]]) -> T:
    """Run ``action`` on the shared client and wait for its result (for journeys.preferences)."""
    background, client = _client()
    return background.run(action(client))
