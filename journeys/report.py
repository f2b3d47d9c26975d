"""Plain-text renderings of statuses, for the command line and the demo."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from journeys.models import RunStatus, TimelineEntry, TriggerStatus

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "as_json",
    "cohort_text",
    "outcome",
    "plural",
    "progress_bar",
    "run_text",
    "status_json",
    "trigger_text",
    "ui_link",
]


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun``, in the plural unless ``count`` is 1: "1 journey", "2 journeys".

    Args:
        count: how many.
        noun: the singular; the last word takes an "s" unless ``many`` is given.
        many: the plural, where adding "s" is wrong ("people").

    """
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def ui_link(ui_url: str, namespace: str, run: RunStatus) -> str:
    """The Temporal UI page of a run."""
    return (
        f"{ui_url}/namespaces/{quote(namespace)}/workflows/"
        f"{quote(run.workflow_id, safe='')}/{run.run_id}/history"
    )


def outcome(entry: TimelineEntry) -> str:
    """What one timeline entry did, in words: "sent via email to ana@example.com"."""
    detail = dict(entry.detail)
    parts = [entry.outcome]
    if entry.kind == "send":
        where = detail.get("address") or detail.get("reason") or detail.get("error")
        parts.append(
            f"via {detail.get('channel')}"
            + (
                f" to {where}"
                if where and entry.outcome == "sent"
                else f" ({where})"
                if where
                else ""
            )
        )
        if entry.outcome == "failed" and detail.get("error"):
            parts[-1] = f"via {detail.get('channel')}: {detail['error']}"
    elif entry.kind == "exit" and detail.get("reason"):
        parts.append(f"({detail['reason']})")
    return " ".join(parts)


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def run_text(run: RunStatus) -> str:
    """A run's state and timeline as an aligned table."""
    lines = [
        f"run        {run.run_id}",
        f"journey    {run.journey}   recipient {run.recipient_id}   trigger {run.trigger_id}",
        f"state      {run.state}"
        + (f" at {run.current_step}" if run.current_step else "")
        + (f" ({run.exit_reason})" if run.exit_reason else ""),
        f"started    {_time(run.started_at)}"
        + (f"   ended {_time(run.closed_at)}" if run.closed_at else ""),
    ]
    if run.timeline:
        width = max(len(e.step) for e in run.timeline)
        lines.append("timeline")
        for entry in run.timeline:
            lines.append(
                f"  {entry.at.strftime('%H:%M:%S.%f')[:-3]}  "
                f"{entry.step:<{width}}  {entry.kind:<8}  {outcome(entry)}"
            )
            if entry.detail.get("attempts"):
                tried = " · ".join(
                    f"{a['channel']} {a['state']}"
                    + (f" ({a['reason']})" if a.get("reason") else "")
                    for a in entry.detail["attempts"]
                )
                lines.append(f"  {'':12}  {'':<{width}}  attempts: {tried}")
    elif run.state != "running":
        lines.append("timeline   (not available: no worker answered)")
    for message in run.retrying:
        detail = message.detail
        lines.append(
            f"retrying   {message.step}: {message.channel} to {message.address}, waiting for a "
            f"retry after attempt {detail.get('attempt', '?')} failed: "
            f"{detail.get('last_error', '')}"
        )
    return "\n".join(lines)


_STEP_COLUMNS = ("reached", "sent", "skipped", "failed", "exited", "waiting")


def progress_bar(trigger: TriggerStatus, width: int = 30) -> str:
    """One line: how many of a trigger's recipients have finished, and how many started."""
    total = trigger.recipients or len(trigger.runs) or 1
    counts = trigger.counts
    ended = sum(n for state, n in counts.items() if state not in ("running", "pending"))
    filled = round(width * ended / total)
    started = f"  started {trigger.started}/{total}" if trigger.starting else ""
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {ended}/{total} done"
        + "".join(f", {n} {state}" for state, n in sorted(counts.items()))
        + started
    )


def cohort_text(trigger: TriggerStatus) -> str:
    """A cohort trigger: recipients by state, what happened at each step, its cohorts."""
    lines = [
        f"trigger {trigger.trigger_id}  journey {trigger.journey}  "
        f"{plural(trigger.recipients, 'recipient')} in cohorts",
        "  " + progress_bar(trigger),
    ]
    if trigger.skipped:
        lines.append(f"  {trigger.skipped} already in this journey (their runs were kept)")
    steps = trigger.steps
    if steps:
        width = max(len(s) for s in steps)
        others = sorted({k for v in steps.values() for k in v} - set(_STEP_COLUMNS))
        columns = [c for c in _STEP_COLUMNS if any(c in v for v in steps.values())] + others
        lines.append(f"  {'step':<{width}}  " + "  ".join(f"{c:>9}" for c in columns))
        for step, counts in steps.items():
            lines.append(
                f"  {step:<{width}}  " + "  ".join(f"{counts.get(c, 0):>9}" for c in columns)
            )
    for cohort in trigger.cohorts:
        states = ", ".join(f"{n} {s}" for s, n in sorted(cohort.states.items()))
        lines.append(f"  {cohort.workflow_id}  {cohort.state}  ({states})")
    return "\n".join(lines)


def trigger_text(trigger: TriggerStatus) -> str:
    """A trigger's runs, one line each, with counts by state."""
    if trigger.recipients and not trigger.runs and (trigger.cohorts or trigger.starting):
        return cohort_text(trigger)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(trigger.counts.items()))
    lines = [f"trigger {trigger.trigger_id}  journey {trigger.journey}  {counts}"]
    width = max((len(r.recipient_id) for r in trigger.runs), default=0)
    for run in trigger.runs:
        where = run.current_step or run.exit_reason or ""
        lines.append(f"  {run.recipient_id:<{width}}  {run.state:<9}  {where:<20}  {run.run_id}")
    return "\n".join(lines)


def status_json(status: RunStatus | TriggerStatus) -> str:
    """A status as JSON."""
    data = asdict(status)
    if isinstance(status, TriggerStatus):
        data["counts"] = status.counts
        data["steps"] = status.steps
    return json.dumps(data, indent=2, default=str)


def as_json(value: DataclassInstance | Sequence[DataclassInstance]) -> str:
    """Dataclasses (or lists of them) as JSON."""
    if isinstance(value, Sequence):
        return json.dumps([asdict(v) for v in value], indent=2, default=str)
    return json.dumps(asdict(value), indent=2, default=str)
