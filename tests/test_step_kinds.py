"""A step kind that asks the store is one module and one line: the test-only nap kind.

``tests/steps/nap.py`` is the whole kind: its YAML, its compiled step, its
:class:`~definitions.steps.base.Question` (the activity's name, input and result) and the
answer from the store. Registering the kind and the answer (the fixture's two lines, one
per layer) is all it takes for the compiler, the plan, the interpreter and the worker to
know it; ``window`` asks its delays the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from activities.steps import ANSWERS
from definitions import steps
from definitions.compiler import Library
from definitions.errors import DefinitionError
from definitions.steps import KINDS, StepKind
from journeys.client import JourneysClient
from journeys.config import load_settings
from journeys.devserver import DevServer
from journeys.models import RunStatus
from tests.helpers import eventually
from tests.steps import nap
from workers.worker import running_worker

JOURNEY = """\
journey: siesta
steps:
  - nap: siesta
  - branch: rested
    if: { attribute: nap, op: gte, value: 1 }
    then:
      - nap: again
        attribute: second_nap
"""


@pytest.fixture
def registered() -> Iterator[StepKind[nap.NapSpec, nap.NapStep]]:
    steps.register(nap.KIND)  # the kind's one line (a built-in kind: one in _MODULES)
    ANSWERS.register(nap.ANSWER)  # its answer's one line (built-in: activities/steps)
    yield nap.KIND
    ANSWERS.unregister(nap.NAPS.activity)
    steps.unregister(nap.KIND.name)


def directory(root: Path, journey: str = JOURNEY) -> Path:
    root.mkdir(parents=True)
    (root / "siesta.yaml").write_text(journey)
    return root


def test_unregistered_it_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match=r"unknown step kind: expected one of .*, found"):
        Library(directory(tmp_path / "journeys")).compile("siesta")
    assert "nap" not in KINDS


@pytest.mark.usefixtures("registered")
def test_the_language_knows_it(tmp_path: Path) -> None:
    plan = Library(directory(tmp_path / "good")).compile("siesta")
    assert plan.steps["siesta"] == nap.NapStep("siesta", "nap")
    assert plan.steps["again"] == nap.NapStep("again", "second_nap")  # nested in a branch
    cases = [
        ("  - nap: siesta\n    atribute: x\n", "unknown key 'atribute'"),
        ("  - nap: two words\n", "expected a step id"),
        ("  - nep: siesta\n", "unknown step kind: expected one of send, wait, wait_for, branch"),
    ]
    for i, (step, message) in enumerate(cases):
        journey = "journey: siesta\nsteps:\n" + step
        with pytest.raises(DefinitionError) as caught:
            Library(directory(tmp_path / str(i), journey)).compile("siesta")
        assert message in str(caught.value)
    assert "did you mean 'nap'" in str(caught.value)


@pytest.mark.usefixtures("registered")
async def test_a_worker_runs_it(
    temporal_server: DevServer, temporal: Client, tmp_path: Path
) -> None:
    path = tmp_path / "journeys.toml"
    path.write_text(
        f"directory = '{directory(tmp_path / 'journeys')}'\n"
        f"[temporal]\naddress = '{temporal_server.address}'\ntask_queue = 'naps'\n"
        f"[store]\nurl = 'sqlite:///{tmp_path}/store.db'\n"
    )
    settings = load_settings(path, environ={})
    people = [
        {"id": "n1", "nap": 1, "second_nap": 1},
        {"id": "n2", "nap": 2},
        {"id": "n3", "nap": 0},
        {"id": "n4"},
    ]
    async with (
        running_worker(settings, client=temporal),
        await JourneysClient.connect(settings) as client,
    ):
        cohort = await client.trigger("siesta", people, cohorts=True)
        await eventually(
            lambda: client.status(cohort.trigger_id),
            lambda s: s.counts == {"completed": 2, "exited": 2},
            what="the cohort's end",
        )
        timelines = {}
        for person in people:
            found = await client.status(cohort.trigger_id, recipient=person["id"])
            assert isinstance(found, RunStatus)
            timelines[person["id"]] = [(e.step, e.outcome) for e in found.timeline]
        alone = await client.trigger(
            "siesta", [{"id": "n5", "nap": 1, "second_nap": 2}]
        )  # a cohort of one
        single = await eventually(
            lambda: client.status(alone.run_id),
            lambda s: isinstance(s, RunStatus) and s.state == "completed",
            what="the run's end",
        )
    woke_after_branch = [("siesta", "woke"), ("rested", "then"), ("again", "woke")]
    assert timelines == {
        "n1": woke_after_branch,
        "n2": [
            ("siesta", "woke"),
            ("rested", "then"),
            ("again", "awake"),
            ("again", "left the journey"),
        ],
        "n3": [("siesta", "woke"), ("rested", "else")],
        "n4": [("siesta", "awake"), ("siesta", "left the journey")],
    }
    assert isinstance(single, RunStatus)
    assert [(e.step, e.outcome) for e in single.timeline] == woke_after_branch
