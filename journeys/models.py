"""What the client returns: handles and statuses of runs and triggers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from definitions.contract import TimelineEntry

__all__ = ["RunHandle", "RunStatus", "TimelineEntry", "TriggerHandle", "TriggerStatus"]


@dataclass(frozen=True)
class RunHandle:
    """One recipient's run, as trigger() started or found it."""

    run_id: str
    """The Temporal run id: pass it to status() and cancel()."""
    workflow_id: str
    """``<journey>/<recipient>``: the run's workflow id in the Temporal UI."""
    journey: str
    recipient_id: str
    started: bool = True
    """False when the recipient was already in this journey and that run was kept."""


@dataclass(frozen=True)
class TriggerHandle:
    """What trigger() did: a trigger id for the whole call and a handle per recipient."""

    trigger_id: str
    journey: str
    runs: list[RunHandle]

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
    """``running``, ``completed``, ``exited``, ``cancelled`` or ``failed``."""
    current_step: str | None = None
    steps_done: list[str] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    """Per step, in order: what happened (sent where, waited, branched) and when."""
    exit_reason: str | None = None
    trigger_id: str = ""
    started_at: datetime | None = None
    closed_at: datetime | None = None

    @property
    def done(self) -> bool:
        """True once the run has ended, in any way."""
        return self.state != "running"


@dataclass(frozen=True)
class TriggerStatus:
    """The runs of one trigger() call."""

    trigger_id: str
    journey: str
    runs: list[RunStatus]

    @property
    def counts(self) -> dict[str, int]:
        """How many runs are in each state."""
        counts: dict[str, int] = {}
        for run in self.runs:
            counts[run.state] = counts.get(run.state, 0) + 1
        return counts

    @property
    def done(self) -> bool:
        """True once every run has ended."""
        return all(run.done for run in self.runs)
