"""What the send activities share: ids, what a batch read, when to stop retrying, heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity

from definitions.durations import format_duration
from definitions.runtime import message_id_for, retry_delay
from journeys.consent import Preferences
from journeys.store import MessageRecord

__all__ = [
    "DONE_STATES",
    "HEARTBEAT_EVERY",
    "Known",
    "gave_up",
    "gives_up",
    "heartbeating",
    "message_id_for",
    "next_delay",
]

HEARTBEAT_EVERY = 2.0
"""Seconds between a send activity's heartbeats (its timeout is 10 s)."""

DONE_STATES = ("sent", "delivered", "skipped")
"""Message states after which a message is never sent again."""


@dataclass(frozen=True)
class Known:
    """What a batch of sends read from the store at once, for every message in it."""

    messages: dict[str, MessageRecord]
    """The log's earlier records of the batch's messages."""
    profiles: dict[str, dict[str, Any]]
    preferences: dict[str, Preferences]


def next_delay(retry_after: float | None = None) -> timedelta:
    """When a send failing now tries again (see :func:`definitions.runtime.retry_delay`)."""
    failing_for = datetime.now(UTC) - activity.info().scheduled_time
    return retry_delay(failing_for, retry_after)


def gives_up(retry_until: datetime | None, retry_after: float | None = None) -> bool:
    """Whether a transient failure in this attempt is the last one to be retried.

    Args:
        retry_until: the end of the message's retry window; None for runs started before
            retry windows, whose retry policy's ``maximum_attempts`` decides.
        retry_after: seconds the provider asked to wait before the next try, if it did.

    """
    info = activity.info()
    if retry_until is None:
        policy = info.retry_policy
        return bool(policy and policy.maximum_attempts and info.attempt >= policy.maximum_attempts)
    return datetime.now(UTC) + next_delay(retry_after) > retry_until


def gave_up(error: str) -> str:
    """The reason a message failed after its retries: how long, how many, the last error."""
    info = activity.info()
    spent = (datetime.now(UTC) - info.scheduled_time).total_seconds()
    over = format_duration(max(1.0, round(spent)))
    attempts = f"{info.attempt} attempt{'s' if info.attempt != 1 else ''}"
    return f"gave up after {attempts} over {over}: {error}"


@contextlib.asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    """Heartbeat while the body runs, so a dead worker's send is retried within seconds.

    A send waiting for its turn (the process's limit of messages in flight, a rate limit)
    is alive and keeps beating.
    """

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
