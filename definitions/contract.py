"""The dataclasses that cross the Temporal boundary, and the names of the activities.

The workflow calls activities by these names, so workflow code never imports the
activities' dependencies (databases, HTTP, SMTP). Every field has a default or comes
last, so fields can be added without breaking runs in flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from definitions.conditions import Condition
from definitions.plan import Plan
from definitions.steps.send import SendStep
from definitions.steps.window import WindowStep
from definitions.templates import CompiledTemplate

__all__ = [
    "EVALUATE",
    "SEND",
    "WINDOW",
    "WORKFLOW",
    "EvaluateInput",
    "EventSignal",
    "JourneyInput",
    "RunInfo",
    "RunProgress",
    "SendInput",
    "SendResult",
    "TimelineEntry",
    "WindowInput",
]

WORKFLOW = "Journey"
EVALUATE = "evaluate_condition"
SEND = "send_message"
WINDOW = "window_delay"

EVENT_SIGNAL = "event"
PROGRESS_QUERY = "progress"


@dataclass(frozen=True)
class RunInfo:
    """Who and what a run is, as activities need to know it."""

    journey: str
    recipient_id: str
    workflow_id: str = ""
    run_id: str = ""
    trigger_id: str = ""


@dataclass(frozen=True)
class JourneyInput:
    """The input of a journey workflow: a compiled plan and whom it runs for."""

    plan: Plan
    recipient_id: str
    trigger_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    """Data passed to trigger(), seen by templates as ``trigger.*``."""
    event: dict[str, Any] = field(default_factory=dict)
    """The event that started the run, seen by templates as ``event.*``."""


@dataclass(frozen=True)
class EventSignal:
    """An event the recipient did, sent to their running journeys by ``track``."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened in a run."""

    step: str
    kind: str
    outcome: str
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunProgress:
    """Where a run is and what it has done (the ``progress`` query and the result)."""

    journey: str
    recipient_id: str
    state: str
    """``running``, ``completed`` or ``exited`` (cancelled/failed come from Temporal)."""
    current_step: str | None = None
    steps_done: list[str] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    exit_reason: str | None = None


@dataclass(frozen=True)
class EvaluateInput:
    """Evaluate a condition for a recipient."""

    condition: Condition
    recipient_id: str


@dataclass(frozen=True)
class SendInput:
    """Deliver one send step's message to one recipient."""

    run: RunInfo
    step: SendStep
    template: CompiledTemplate | None = None
    data: dict[str, Any] = field(default_factory=dict)
    event: dict[str, Any] = field(default_factory=dict)
    channel: str = ""
    """The channel to try (one of the step's channels); empty means the step's first."""


@dataclass(frozen=True)
class SendResult:
    """What became of a message."""

    message_id: str
    channel: str
    state: str
    """``sent``, ``skipped`` or ``failed``."""
    address: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    """Why it was skipped or failed: opted out, no address, invalid address, suppressed…"""


@dataclass(frozen=True)
class WindowInput:
    """How long until a window opens for a recipient, from a given time."""

    step: WindowStep
    recipient_id: str
    now: datetime
