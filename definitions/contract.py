"""The dataclasses that cross the Temporal boundary, and the names of the activities.

The workflow calls activities by these names, so workflow code never imports the
activities' dependencies (databases, HTTP, SMTP). Every field has a default or comes
last, so fields can be added without breaking runs in flight.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from definitions.conditions import Condition
from definitions.plan import Plan
from definitions.steps.send import SendStep
from definitions.steps.window import (
    WINDOW_MANY,
    WINDOW_MANY_V2,
    WindowManyInput,
    WindowManyResult,
    WindowStep,
)
from definitions.templates import CompiledTemplate

__all__ = [
    "CANCEL_RECIPIENT_UPDATE",
    "CLAIM",
    "CLOSE",
    "CLOSE_V2",
    "COUNTS_QUERY",
    "EVALUATE",
    "EVALUATE_MANY",
    "EVALUATE_MANY_V2",
    "EVALUATE_V2",
    "MEMBER_QUERY",
    "SEND",
    "SEND_MANY",
    "TRIGGER_WORKFLOW",
    "WINDOW",
    "WINDOW_MANY",
    "WINDOW_MANY_V2",
    "WITHDRAW",
    "WORKFLOW",
    "ClaimInput",
    "ClaimResult",
    "CloseInput",
    "CloseResult",
    "CohortCounts",
    "CohortMember",
    "CohortSnapshot",
    "EvaluateInput",
    "EvaluateManyInput",
    "EvaluateManyResult",
    "EvaluateResult",
    "EventSignal",
    "GroupSnapshot",
    "JourneyInput",
    "MemberRequest",
    "MemberState",
    "MessageRef",
    "RunInfo",
    "RunProgress",
    "SendInput",
    "SendManyInput",
    "SendManyResult",
    "SendResult",
    "TimelineEntry",
    "TriggerInput",
    "TriggerProgress",
    "WindowInput",
    "WindowManyInput",
    "WindowManyResult",
    "WithdrawInput",
    "WithdrawResult",
    "progress_json",
]

WORKFLOW = "Journey"
TRIGGER_WORKFLOW = "JourneyTrigger"
EVALUATE = "evaluate_condition"
EVALUATE_MANY = "evaluate_conditions"
SEND = "send_message"
SEND_MANY = "send_messages"
WINDOW = "window_delay"
CLAIM = "claim_cohort"
CLOSE = "close_runs"
WITHDRAW = "withdraw_messages"

# Activities returning a result dataclass, called by runs that have the
# ``typed-activity-results`` patch marker (``runtime.TYPED_RESULTS_PATCH``). The names
# above them return bare values and stay registered for runs started before, whose
# histories hold those bare payloads (and for ``definitions.legacy``, the only caller of
# ``WINDOW``: the cohort interpreter asks ``WINDOW_MANY`` even for a cohort of one).
# ``WINDOW_MANY`` and ``WINDOW_MANY_V2`` are the window step's own (its ``DELAYS``
# question), named in ``definitions/steps/window.py`` and re-exported here.
EVALUATE_V2 = "evaluate_condition_v2"
EVALUATE_MANY_V2 = "evaluate_conditions_v2"
CLOSE_V2 = "close_runs_v2"

EVENT_SIGNAL = "event"
PROGRESS_QUERY = "progress"
COUNTS_QUERY = "counts"
MEMBER_QUERY = "member"
CANCEL_RECIPIENT_UPDATE = "cancel_recipient"


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
    members: list[CohortMember] = field(default_factory=list)
    """A cohort's recipients; empty for a cohort of one (``recipient_id``)."""
    cohort: str = ""
    """The cohort's name in its trigger (``cohort-3``); empty for a cohort of one."""
    batch_sizes: dict[str, int] = field(default_factory=dict)
    """Recipients per send activity, by channel (default 100)."""
    history_limit: int = 10_000
    """History events after which the cohort continues as new at its next quiet moment."""
    resume: CohortSnapshot | None = None
    """Where every recipient stood when the previous run continued as new."""
    retry_windows: dict[str, float] = field(default_factory=dict)
    """Seconds a channel's transient failures are retried: every channel's, from the client
    (runs started without one: ``runtime.DEFAULT_RETRY_WINDOWS``)."""


@dataclass(frozen=True)
class CohortMember:
    """One recipient of a cohort."""

    recipient_id: str
    run_id: str
    """The recipient's run id in the cohort (``m_…``): message ids and status use it."""
    data: dict[str, Any] = field(default_factory=dict)
    """Values for this recipient only, over the trigger's data."""


@dataclass(frozen=True)
class EventSignal:
    """An event the recipient did, sent to their running journeys by ``track``."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    recipient_id: str = ""
    """Whose event it is; needed by a cohort of more than one."""


@dataclass(frozen=True)
class MemberRequest:
    """Names one recipient of a cohort (the ``member`` query, the cancel update)."""

    recipient_id: str


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
    counts: CohortCounts | None = None
    """For a cohort of more than one: how many recipients did what (no timeline)."""


def progress_json(progress: RunProgress) -> dict[str, Any]:
    """A run's final progress as JSON for the store (times as ISO strings)."""
    data = asdict(progress)
    for entry in data["timeline"]:
        entry["at"] = entry["at"].isoformat()
    return data


@dataclass(frozen=True)
class CohortCounts:
    """A cohort at a glance: its recipients' states, and per step what happened."""

    members: int
    states: dict[str, int] = field(default_factory=dict)
    """Recipients by state: running, completed, exited, cancelled."""
    steps: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per step id: ``reached``, outcomes (``sent``, ``skipped``, ``then``…) and ``waiting``."""


@dataclass
class MemberState:
    """What the cohort knows of one recipient (carried over when continuing as new)."""

    member: CohortMember
    state: str = "running"
    current: str | None = None
    done: list[str] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    exit_reason: str | None = None
    unused_events: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupSnapshot:
    """Recipients parked together at a wait, and where they go on from."""

    members: list[str]
    frames: list[tuple[str, int]]
    """The continuation: (sequence, index of the step being waited in), innermost last."""
    deadline: datetime | None = None
    """When the wait ends (None: a wait_for with no timeout)."""


@dataclass(frozen=True)
class CohortSnapshot:
    """A cohort's whole state, handed from one run to the next by continue-as-new."""

    members: list[MemberState]
    groups: list[GroupSnapshot]
    steps: dict[str, dict[str, int]] = field(default_factory=dict)


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
    retry_until: datetime | None = None
    """Transient failures are retried until then, and the message is failed after; None
    (runs started before retry windows): the retry policy's attempts decide."""


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
class EvaluateManyInput:
    """Evaluate a condition for many recipients at once (one query)."""

    condition: Condition
    recipient_ids: list[str]


@dataclass(frozen=True)
class SendManyInput:
    """Deliver one send step's message on one channel to many recipients."""

    step: SendStep
    channel: str
    runs: list[RunInfo]
    template: CompiledTemplate | None = None
    data: list[dict[str, Any]] = field(default_factory=list)
    """Per run (same order), the values templates see as ``trigger.*``."""
    event: dict[str, Any] = field(default_factory=dict)
    final_attempt: int = 5
    """On this attempt, transient errors are reported as failures instead of retried."""
    retry_until: datetime | None = None
    """As :attr:`SendInput.retry_until` (when set, ``final_attempt`` is not used)."""


@dataclass(frozen=True)
class SendManyResult:
    """What became of each message, in the order of the input's runs."""

    results: list[SendResult]
    withdrawn: list[bool] = field(default_factory=list)
    """For each message (same order): True when this withdrawal is what stopped it."""


@dataclass(frozen=True)
class CloseInput:
    """Recipients whose runs have ended, with what they did."""

    workflow_id: str
    runs: list[RunProgress]
    run_ids: list[str]
    """The run id of each (same order)."""


@dataclass(frozen=True)
class TriggerInput:
    """The input of a trigger's parent workflow: start its cohorts, a page at a time."""

    plan: Plan
    trigger_id: str
    data: dict[str, Any] = field(default_factory=dict)
    cohort_size: int = 1000
    batch_sizes: dict[str, int] = field(default_factory=dict)
    history_limit: int = 10_000
    next_cohort: int = 1
    """Carried over by continue-as-new: the number of the next cohort."""
    after: int = -1
    """Carried over: the position of the last recipient already put in a cohort."""
    started: int = 0
    skipped: int = 0
    retry_windows: dict[str, float] = field(default_factory=dict)
    """Passed on to the cohorts (see :attr:`JourneyInput.retry_windows`)."""
    cohorts_at_once: int = 0
    """Cohorts of the trigger running at once at most (0: no bound, as triggers started
    before it); the next is started when one finishes."""


@dataclass(frozen=True)
class ClaimInput:
    """Put the next page of a trigger's recipients in a cohort (idempotent per cohort)."""

    trigger_id: str
    journey: str
    workflow_id: str
    """The cohort's workflow id."""
    after: int
    limit: int


@dataclass(frozen=True)
class ClaimResult:
    """The cohort's members; those already in the journey are counted, not included."""

    members: list[CohortMember]
    last: int
    """The position of the last recipient looked at (-1: none left)."""
    skipped: int = 0


@dataclass(frozen=True)
class TriggerProgress:
    """How far a trigger's parent workflow has come."""

    cohorts: list[str]
    """The workflow ids of the cohorts started so far (this run of the parent)."""
    started: int
    skipped: int
    finished: bool = False


@dataclass(frozen=True)
class WindowInput:
    """How long until a window opens for a recipient, from a given time."""

    step: WindowStep
    recipient_id: str
    now: datetime


@dataclass(frozen=True)
class MessageRef:
    """Names one message of the log: whose, which step, which channel."""

    message_id: str
    run: RunInfo
    step: str
    channel: str


@dataclass(frozen=True)
class WithdrawInput:
    """Messages not to send any more (their recipient was cancelled or left)."""

    messages: list[MessageRef]
    reason: str
    """Recorded as the reason of each message withdrawn before it went out."""
    state: str = "skipped"
    """What a withdrawn message becomes: ``skipped``, or ``failed`` when its retries ran out
    without an answer."""


@dataclass(frozen=True)
class WithdrawResult:
    """What became of each message (same order): withdrawn (``skipped``) or already out."""

    results: list[SendResult]
    withdrawn: list[bool] = field(default_factory=list)
    """For each message (same order): True when this withdrawal is what stopped it."""


@dataclass(frozen=True)
class EvaluateResult:
    """Whether a condition holds for a recipient now."""

    holds: bool


@dataclass(frozen=True)
class EvaluateManyResult:
    """The recipients a condition holds for now, in the order they were given."""

    matched: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CloseResult:
    """How many runs the store marked ended."""

    closed: int = 0
