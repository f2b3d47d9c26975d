"""What the client returns: handles and statuses of runs and triggers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from definitions.contract import TimelineEntry

if TYPE_CHECKING:
    from journeys.store import MessageRecord

__all__ = [
    "CohortStatus",
    "RunHandle",
    "RunStatus",
    "TimelineEntry",
    "TrackResult",
    "TriggerHandle",
    "TriggerStatus",
]


@dataclass(frozen=True)
class RunHandle:
    """One recipient's run, as trigger() started or found it."""

    run_id: str
    """The Temporal run id: pass it to status() and cancel()."""
    workflow_id: str
    """The run's workflow id in the Temporal UI: ``<journey>/<recipient>`` for a run of
    its own, ``<journey>/<trigger>/cohort-<n>`` for a recipient of a cohort."""
    journey: str
    recipient_id: str
    started: bool = True
    """False when the recipient was already in this journey and that run was kept."""


@dataclass(frozen=True)
class TrackResult:
    """What recording an event did."""

    recorded: bool
    """False when an event with the same ``event_id`` was recorded before."""
    reached: int = 0
    """Running journeys of the person the event was sent to."""
    started: list[RunHandle] = field(default_factory=list)
    """Journeys the event (or a segment it put the person in) started."""


@dataclass(frozen=True)
class TriggerHandle:
    """What trigger() did: a trigger id for the whole call and a handle per recipient."""

    trigger_id: str
    journey: str
    runs: list[RunHandle]
    """A handle per recipient; empty for a trigger run as cohorts (see ``cohorts``)."""
    recipients: int = 0
    """How many recipients the call named."""
    cohorts: bool = False
    """True when the recipients run as cohorts: their runs are started by the trigger's
    workflow, in pages, and ``status(trigger_id)`` shows the progress."""

    @property
    def run_id(self) -> str:
        """The run id when one recipient was triggered (else the trigger id)."""
        return self.runs[0].run_id if len(self.runs) == 1 else self.trigger_id


@dataclass(frozen=True)
class RunStatus:
    """Where a run is and what it has done."""

    run_id: str
    workflow_id: str
    journey: str
    recipient_id: str
    state: str
    """``running``, ``completed``, ``exited``, ``cancelled`` or ``failed``; ``pending`` for a
    recipient of a cohort trigger whose workflow has not put them in a cohort yet."""
    current_step: str | None = None
    steps_done: list[str] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    """Per step, in order: what happened (sent where, waited, branched) and when."""
    exit_reason: str | None = None
    trigger_id: str = ""
    started_at: datetime | None = None
    closed_at: datetime | None = None
    retrying: list[MessageRecord] = field(default_factory=list)
    """Messages of a running run that failed for now and wait for their next attempt (state
    ``queued``; their ``detail`` holds ``last_error`` and ``attempt``), from the message log."""

    @property
    def done(self) -> bool:
        """True once the run has ended, in any way."""
        return self.state not in ("running", "pending")


@dataclass(frozen=True)
class CohortStatus:
    """One cohort workflow of a trigger."""

    workflow_id: str
    state: str
    """The workflow's state: ``running``, ``completed``, ``cancelled`` or ``failed``."""
    members: int = 0
    states: dict[str, int] = field(default_factory=dict)
    """Recipients by state."""
    steps: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per step: ``reached``, outcomes (``sent``, ``skipped``, ``failed``, ``then``…) and
    ``waiting`` (there now)."""


@dataclass(frozen=True)
class TriggerStatus:
    """The runs of one trigger() call.

    For a trigger run as cohorts, ``runs`` is empty and the counts come from the cohorts:
    ask ``status(trigger_id, recipient=…)`` for one recipient's timeline.
    """

    trigger_id: str
    journey: str
    runs: list[RunStatus]
    recipients: int = 0
    """How many recipients the trigger named."""
    started: int = 0
    """Recipients put in a cohort so far (cohort triggers)."""
    skipped: int = 0
    """Recipients left out because they were already in the journey (cohort triggers)."""
    starting: bool = False
    """True while the trigger's workflow is still starting cohorts."""
    cohorts: list[CohortStatus] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """How many recipients are in each state."""
        counts: dict[str, int] = {}
        for run in self.runs:
            counts[run.state] = counts.get(run.state, 0) + 1
        for cohort in self.cohorts:
            for state, n in cohort.states.items():
                counts[state] = counts.get(state, 0) + n
        return counts

    @property
    def steps(self) -> dict[str, dict[str, int]]:
        """Per step, summed over the cohorts: reached, outcomes and waiting."""
        total: dict[str, dict[str, int]] = {}
        for cohort in self.cohorts:
            for step, counts in cohort.steps.items():
                into = total.setdefault(step, {})
                for what, n in counts.items():
                    into[what] = into.get(what, 0) + n
        return total

    @property
    def done(self) -> bool:
        """True once every run has ended."""
        return (
            not self.starting
            and all(run.done for run in self.runs)
            and all(cohort.state != "running" for cohort in self.cohorts)
        )
