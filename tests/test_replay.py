"""Recorded histories of the example journeys replay without non-determinism.

The histories in tests/histories/ were recorded by ``python -m tests.record_histories``;
the suffix says which version of the engine recorded them (``-v1`` … ``-v5``). The
``window-*`` ones (a cohort whose members' windows open at three moments, and a cohort of
one) were recorded once, by the v4 and v5 engines, before the window step asked its delays
through the generic ``Runner.ask``: they hold that path to the same commands.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from definitions import contract as c
from definitions.runtime import TYPED_RESULTS_PATCH
from definitions.trigger_workflow import TriggerWorkflow
from definitions.workflow import JourneyWorkflow
from workers.worker import workflow_runner

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_are_histories_of_both_examples() -> None:
    names = {p.stem.split("-")[0] for p in HISTORIES}
    assert {"demo", "onboarding"} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    data = json.loads(path.read_text())
    assert data["events"], "an empty history proves nothing"
    history = WorkflowHistory.from_json(path.stem, data)
    replayer = Replayer(
        workflows=[JourneyWorkflow, TriggerWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None


TYPED = {c.EVALUATE_V2, c.EVALUATE_MANY_V2, c.WINDOW_MANY_V2, c.CLOSE_V2}
"""The activities returning a dataclass, called by runs with the typed-results patch."""
BARE = {c.EVALUATE, c.EVALUATE_MANY, c.WINDOW, c.WINDOW_MANY, c.CLOSE}
"""Their counterparts with bare results, called by the runs started before."""


def _era(path: Path) -> int:
    return int(path.stem.rsplit("-v", 1)[1])


def _scheduled(data: dict[str, Any]) -> set[str]:
    """The names of the activities a history scheduled."""
    return {
        event["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for event in data["events"]
        if "activityTaskScheduledEventAttributes" in event
    }


def _patches(data: dict[str, Any]) -> set[str]:
    """The patch ids a history recorded markers for."""
    found = set()
    for event in data["events"]:
        marker = event.get("markerRecordedEventAttributes")
        if marker and marker.get("markerName") == "core_patch":
            payload = marker["details"]["patch-data"]["payloads"][0]["data"]
            found.add(json.loads(base64.b64decode(payload))["id"])
    return found


def test_there_are_histories_of_windows_in_both_eras() -> None:
    """The window step's question keeps the activity names its runs recorded."""
    by_era = {
        _era(p): _scheduled(json.loads(p.read_text())) for p in HISTORIES if "window" in p.stem
    }
    assert c.WINDOW_MANY in by_era[4] and c.WINDOW_MANY_V2 in by_era[5]


def test_there_are_histories_of_typed_results() -> None:
    journeys = [p for p in HISTORIES if _era(p) >= 5 and "trigger" not in p.stem]
    assert journeys, "record them: python -m tests.record_histories"
    assert {"demo-cohort-v5", "demo-ana-v5"} <= {p.stem for p in journeys}


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_typed_results_only_for_runs_with_the_patch(path: Path) -> None:
    """New runs call the typed activities; runs started before keep the bare ones."""
    data = json.loads(path.read_text())
    scheduled = _scheduled(data)
    if "trigger" in path.stem:  # a trigger's workflow only claims cohorts
        assert not scheduled & (TYPED | BARE)
        return
    if _era(path) >= 5:
        assert TYPED_RESULTS_PATCH in _patches(data)
        assert scheduled & TYPED, scheduled
        assert not scheduled & BARE, scheduled
    else:
        assert TYPED_RESULTS_PATCH not in _patches(data)
        assert not scheduled & TYPED, scheduled
