"""Recorded histories of the example journeys replay without non-determinism.

The histories in tests/histories/ were recorded by ``python -m tests.record_histories``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

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
