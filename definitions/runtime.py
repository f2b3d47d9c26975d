"""What the journey workflows share: search attributes, patch names, retry policies.

Pure and deterministic: imported by workflow code through the sandbox's pass-through.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)

if TYPE_CHECKING:
    from definitions.contract import SendResult
    from definitions.steps.send import SendStep

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
    "search_attributes",
    "send_entry",
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


def search_attributes(journey: str, recipient: str, trigger_id: str) -> TypedSearchAttributes:
    """A journey workflow's search attributes when it starts (its step not reached yet)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(JOURNEY_KEY, journey),
            SearchAttributePair(RECIPIENT_KEY, recipient),
            SearchAttributePair(TRIGGER_KEY, trigger_id),
            SearchAttributePair(STEP_KEY, "-"),
        ]
    )


def send_entry(step: SendStep, attempts: list[SendResult]) -> tuple[str, dict[str, Any]]:
    """A send step's timeline outcome and detail from the attempts on its channels."""
    last = attempts[-1]
    states = {a.state for a in attempts}
    state = "sent" if "sent" in states else "skipped" if states == {"skipped"} else "failed"
    detail: dict[str, Any] = {
        "channel": last.channel,
        "address": last.address,
        "message_id": last.message_id,
        **last.detail,
    }
    if last.reason:
        detail["reason" if last.state == "skipped" else "error"] = last.reason
    if len(step.channels) > 1:
        detail["attempts"] = [
            {
                "channel": a.channel,
                "state": a.state,
                **({"reason": a.reason} if a.reason else {}),
            }
            for a in attempts
        ]
    return state, detail
