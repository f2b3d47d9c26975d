"""What the journey workflows share: search attributes, patch names, retry policies.

Pure and deterministic: imported by workflow code through the sandbox's pass-through.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from temporalio.common import RetryPolicy, SearchAttributeKey

__all__ = [
    "CHANNEL_QUEUES_PATCH",
    "CHECK_RETRY",
    "COHORTS_PATCH",
    "JOURNEY_KEY",
    "RECIPIENT_KEY",
    "SEARCH_ATTRIBUTES",
    "SEND_ATTEMPTS",
    "SEND_RETRY",
    "STEP_KEY",
    "TRIGGER_KEY",
    "bucket",
    "channel_queue",
]

JOURNEY_KEY = SearchAttributeKey.for_keyword("JourneyName")
RECIPIENT_KEY = SearchAttributeKey.for_keyword("JourneyRecipient")
STEP_KEY = SearchAttributeKey.for_keyword("JourneyStep")
TRIGGER_KEY = SearchAttributeKey.for_keyword("JourneyTriggerId")
SEARCH_ATTRIBUTES = (JOURNEY_KEY, RECIPIENT_KEY, STEP_KEY, TRIGGER_KEY)
"""The search attributes journeys registers, all keywords."""

CHANNEL_QUEUES_PATCH = "sends-on-channel-task-queues"
"""Runs started before sends moved to per-channel task queues keep sending on the main one."""

COHORTS_PATCH = "cohorts"
"""Runs started before the cohort interpreter replay through :mod:`definitions.legacy`."""

CHECK_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
SEND_ATTEMPTS = 5
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=SEND_ATTEMPTS,
    non_retryable_error_types=["PermanentDeliveryError"],
)


def channel_queue(task_queue: str, channel: str) -> str:
    """The task queue a channel's sends go to (see ``CHANNEL_QUEUES_PATCH``)."""
    return f"{task_queue}.send.{channel}"


def bucket(salt: str, recipient_id: str) -> float:
    """A number in [0, 100) fixed by the salt and the recipient id (for splits)."""
    digest = hashlib.sha256(f"{salt}:{recipient_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10000 / 100
