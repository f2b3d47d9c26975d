"""How runs and triggers are Temporal workflows: their ids, and their states in journeys' words."""

from __future__ import annotations

from datetime import datetime

from temporalio.client import WorkflowExecutionStatus

from definitions import contract as c
from journeys.models import RunStatus
from journeys.store import RunRecord

__all__ = ["STATES", "run_status", "trigger_workflow_id", "workflow_id_for"]

STATES = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "cancelled",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "running",
}
"""Temporal's workflow states as journeys names them."""


def workflow_id_for(journey: str, recipient_id: str) -> str:
    """The workflow id of a recipient's run of a journey: one active run per pair."""
    return f"{journey}/{recipient_id}"


def trigger_workflow_id(journey: str, trigger_id: str) -> str:
    """The workflow id of a cohort trigger's parent workflow."""
    return f"{journey}/{trigger_id}"


def run_status(
    run: RunRecord,
    state: str,
    progress: c.RunProgress | None,
    *,
    started_at: datetime | None,
    closed_at: datetime | None,
) -> RunStatus:
    """A run's status from its record, its state and (when known) its progress."""
    return RunStatus(
        run_id=run.run_id,
        workflow_id=run.workflow_id,
        journey=run.journey,
        recipient_id=run.recipient_id,
        state=state,
        current_step=progress.current_step if progress and state == "running" else None,
        steps_done=list(progress.steps_done) if progress else [],
        timeline=list(progress.timeline) if progress else [],
        exit_reason=progress.exit_reason if progress else None,
        trigger_id=run.trigger_id,
        started_at=started_at,
        closed_at=closed_at,
    )
