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

from definitions.errors import PermanentDeliveryError

if TYPE_CHECKING:
    from definitions.contract import RunInfo, SendResult
    from definitions.steps.send import SendStep

__all__ = [
    "CHANNEL_QUEUES_PATCH",
    "CHECK_RETRY",
    "COHORTS_AT_ONCE_PATCH",
    "COHORTS_PATCH",
    "DEFAULT_RETRY_WINDOWS",
    "JOURNEY_KEY",
    "RECIPIENT_KEY",
    "RETRY_FRACTION",
    "RETRY_GRACE",
    "SEARCH_ATTRIBUTES",
    "SEND_ATTEMPTS",
    "SEND_RETRY",
    "STEP_KEY",
    "TRIGGER_KEY",
    "TYPED_RESULTS_PATCH",
    "WINDOWED_RETRY",
    "WINDOWED_SENDS_PATCH",
    "bucket",
    "channel_queue",
    "message_id_for",
    "retry_delay",
    "retry_window",
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

WINDOWED_SENDS_PATCH = "send-retry-window"
"""Sends retried for a window of time, withdrawn on cancel; runs started before keep
five attempts and wait for a send in flight when cancelled."""

COHORTS_AT_ONCE_PATCH = "trigger-cohorts-at-once"
"""A trigger's workflow runs ``cohorts_at_once`` cohorts at a time and continues as new
before its history grows large; those started before start every cohort at once."""

TYPED_RESULTS_PATCH = "typed-activity-results"
"""Conditions, windows and closes through the activities that return a dataclass
(``contract.EVALUATE_V2``…); runs started before keep the ones with bare results."""

CHECK_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
SEND_ATTEMPTS = 5
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=SEND_ATTEMPTS,
    non_retryable_error_types=[PermanentDeliveryError.__name__],
)
"""Sends of runs started before ``WINDOWED_SENDS_PATCH``: five attempts."""

WINDOWED_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=0,
    non_retryable_error_types=[PermanentDeliveryError.__name__],
)
"""Sends: retried until the channel's retry window ends. A provider's failure sets the
next delay itself (:func:`retry_delay`); this policy's backoff applies to what the
activity cannot report (a worker that died, a timeout)."""

RETRY_FRACTION = 0.25
"""The next attempt of a failing send comes after this fraction of the time it has been
failing: an outage of T is noticed at most T/4 after it ends (and at most 5 minutes)."""


def retry_delay(failing_for: timedelta, retry_after: float | None = None) -> timedelta:
    """The wait before a failing send's next attempt.

    The provider's ``Retry-After`` when it gave one; else a quarter of how long the send
    has been failing, between 1 second and 5 minutes. Unlike a backoff counted in
    attempts, it does not grow with attempts made quickly (a provider answering 429 with
    ``Retry-After: 2`` for a while), so the delay after an outage stays in proportion to
    the outage.
    """
    if retry_after:
        return timedelta(seconds=min(retry_after, 3600.0))
    initial = WINDOWED_RETRY.initial_interval
    longest = WINDOWED_RETRY.maximum_interval or timedelta(minutes=5)
    return min(max(failing_for * RETRY_FRACTION, initial), longest)


DEFAULT_RETRY_WINDOWS = {
    "email": timedelta(hours=24),
    "sms": timedelta(hours=4),
    "push": timedelta(hours=4),
    "webhook": timedelta(hours=4),
}
"""How long transient failures were retried, per channel, unless configured, for runs
started before their input carried every channel's window (each channel's default is now
its ``ChannelSpec.retry_window``, passed in by the client); kept as it was for them."""

RETRY_GRACE = timedelta(minutes=15)
"""Beyond its retry window a send activity may still finish its last attempt; past this
too, Temporal times it out (every worker was down) and the workflow records it failed."""


def retry_window(windows: dict[str, float], channel: str) -> timedelta:
    """A channel's retry window from the seconds a run was given (or the default)."""
    seconds = windows.get(channel)
    if seconds is not None:
        return timedelta(seconds=seconds)
    return DEFAULT_RETRY_WINDOWS.get(channel, timedelta(hours=4))


def channel_queue(task_queue: str, channel: str) -> str:
    """The task queue a channel's sends go to (see ``CHANNEL_QUEUES_PATCH``)."""
    return f"{task_queue}.send.{channel}"


def message_id_for(run: RunInfo, step: str, channel: str) -> str:
    """The deterministic id of a step's message on a channel in a run."""
    return f"{run.workflow_id}/{run.run_id}/{step}/{channel}"


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
