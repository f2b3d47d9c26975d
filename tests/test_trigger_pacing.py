"""A large trigger's workflow paces its cohorts and keeps its own history bounded.

At most ``[cohorts] at_once`` cohorts of a trigger run at a time, so a worker holds that
many cohorts' members whatever the number of recipients; the trigger's workflow continues
as new before the pages' members (carried in its history twice) make its history large.
Sizes are small: what is checked is the order of things in Temporal's records, not speed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from benchmarks import reference
from definitions import trigger_workflow
from definitions.compiler import Library
from definitions.trigger_workflow import TriggerWorkflow
from definitions.workflow import JourneyWorkflow
from journeys.models import RunStatus, TriggerStatus
from journeys.store import Store
from journeys.store import tables as t
from tests.helpers import Engine, eventually
from workers.worker import workflow_runner

PACED = """
journey: paced
steps:
  - send: note
    channel: webhook
    url: {sink}/note
  - wait: 1s
  - send: after
    channel: webhook
    url: {sink}/after
"""


def test_only_journeys_that_never_wait_long_are_paced(tmp_path: Path) -> None:
    directory = reference.write(tmp_path)
    (directory / "paced.yaml").write_text(PACED.format(sink="http://127.0.0.1:9"))
    paced = PACED.format(sink="http://127.0.0.1:9")
    (directory / "slow.yaml").write_text(
        paced.replace("paced", "slow").replace("wait: 1s", "wait: 2m")
    )
    (directory / "waits.yaml").write_text(
        paced.replace("paced", "waits").replace(
            "wait: 1s", "wait_for: clicked\n    event: clicked\n    timeout: 1s"
        )
    )
    library = Library(directory)
    assert trigger_workflow.brief(library.compile("reference"))
    assert trigger_workflow.brief(library.compile("paced"))
    assert not trigger_workflow.brief(library.compile("slow"))
    assert not trigger_workflow.brief(library.compile("waits"))


async def _done(engine: Engine, trigger_id: str) -> TriggerStatus:
    async def probe() -> TriggerStatus:
        status = await engine.client.status(trigger_id)
        assert isinstance(status, TriggerStatus)
        return status

    return await eventually(probe, lambda s: s.done, timeout=240, what="the trigger's end")


async def _cohort_spans(engine: Engine, trigger_id: str) -> list[tuple[datetime, datetime]]:
    """(start, close) of each cohort workflow of the trigger, over its runs."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    query = f"JourneyTriggerId = '{trigger_id}' AND WorkflowId STARTS_WITH 'paced/'"
    async for execution in engine.temporal.list_workflows(query):
        if "/cohort-" not in execution.id:
            continue
        assert execution.close_time is not None
        began, ended = spans.get(execution.id, (execution.start_time, execution.close_time))
        spans[execution.id] = (
            min(began, execution.start_time),
            max(ended, execution.close_time),
        )
    return list(spans.values())


async def test_a_trigger_runs_at_most_at_once_cohorts_at_a_time(engine: Engine) -> None:
    engine.client.cohort_settings = engine.client.cohort_settings.model_copy(
        update={"size": 4, "at_once": 2}
    )
    engine.write("paced", PACED.format(sink=engine.hooks.url))
    group = [f"q{i:02d}" for i in range(20)]
    handle = await engine.client.trigger("paced", group, cohorts=True)
    status = await _done(engine, handle.trigger_id)
    assert status.counts == {"completed": 20}
    assert len(status.cohorts) == 5
    paths = sorted(f"{r.path}:{r.body['customer']['id']}" for r in engine.hooks.requests)
    assert paths == sorted(f"/{step}:{rid}" for step in ("note", "after") for rid in group)
    spans = await eventually(
        lambda: _cohort_spans(engine, handle.trigger_id),
        lambda found: len(found) == 5,
        what="the cohorts in visibility",
    )
    for began, _ in spans:
        running = [1 for b, e in spans if b <= began < e]
        assert len(running) <= 2, "a cohort started while two others still ran"
    # The paced parent's history replays (its waits for cohorts are deterministic).
    parent = engine.temporal.get_workflow_handle(f"paced/{handle.trigger_id}")
    replayer = Replayer(
        workflows=[JourneyWorkflow, TriggerWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(
        await parent.fetch_history(), raise_on_replay_failure=False
    )
    assert result.replay_failure is None


async def test_a_journey_that_waits_for_events_starts_every_cohort_at_once(
    engine: Engine,
) -> None:
    """Its recipients must not wait for other cohorts' waits: no pacing."""
    engine.client.cohort_settings = engine.client.cohort_settings.model_copy(
        update={"size": 4, "at_once": 1}
    )
    engine.write(
        "paced",
        PACED.format(sink=engine.hooks.url).replace(
            "wait: 1s", "wait_for: clicked\n    event: clicked\n    timeout: 2s"
        ),
    )
    handle = await engine.client.trigger("paced", [f"w{i:02d}" for i in range(12)], cohorts=True)
    status = await _done(engine, handle.trigger_id)
    assert status.counts == {"completed": 12}
    spans = await eventually(
        lambda: _cohort_spans(engine, handle.trigger_id),
        lambda found: len(found) == 3,
        what="the cohorts in visibility",
    )
    spans.sort()
    last_start = spans[-1][0]
    assert any(last_start < ended for _, ended in spans[:-1]), "the last cohort started at once"


async def test_the_trigger_continues_as_new_before_its_history_grows_large(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trigger_workflow, "HISTORY_BYTES", 20_000)
    engine.client.cohort_settings = engine.client.cohort_settings.model_copy(
        update={"size": 3, "at_once": 2}
    )
    engine.write("paced", PACED.format(sink=engine.hooks.url))
    group = [f"h{i:02d}" for i in range(12)]
    personal = {rid: {"note": rid * 400} for rid in group}  # about 1.2 kB each
    handle = await engine.client.trigger("paced", group, cohorts=True, per_recipient_data=personal)
    status = await _done(engine, handle.trigger_id)
    assert status.counts == {"completed": 12}
    assert status.started == 12 and status.skipped == 0
    parent = f"paced/{handle.trigger_id}"
    runs = [e async for e in engine.temporal.list_workflows(f"WorkflowId = '{parent}'")]
    assert len(runs) >= 2, "the trigger's workflow continued as new"
    for run in runs:
        described = await engine.temporal.get_workflow_handle(parent, run_id=run.run_id).describe()
        size = described.raw_description.workflow_execution_info.history_size_bytes
        # One page past the bound at most (the check comes before each claim).
        assert size < 20_000 + 2 * 3 * 1_300 + 20_000


async def test_a_hundred_thousand_recipients_are_kept_and_paged(tmp_path: Path) -> None:
    """The store keeps 100,000 recipients of a trigger, and pages them back in order."""
    store = await Store.open(f"sqlite:///{tmp_path}/members.db")
    try:
        async with store.db.writer.begin() as conn:
            await conn.execute(
                insert(t.triggers),
                [
                    {
                        "id": "trg_big",
                        "journey": "j",
                        "data": {},
                        "created_at": datetime.now(UTC),
                    }
                ],
            )
        recipients = [(f"r{i:06d}", None) for i in range(100_000)]
        await store.members.add("trg_big", recipients)
        await store.members.add("trg_big", recipients[:10])  # a retry changes nothing
        assert await store.members.count("trg_big") == 100_000
        members, last, skipped = await store.members.claim("trg_big", "j", "j/c-100", 98_999, 5000)
        assert [m[0] for m in members] == [f"r{i:06d}" for i in range(99_000, 100_000)]
        assert last == 99_999 and skipped == 0
    finally:
        await store.close()


async def test_a_paced_trigger_is_cancelled_while_it_waits_for_a_cohort(engine: Engine) -> None:
    engine.client.cohort_settings = engine.client.cohort_settings.model_copy(
        update={"size": 4, "at_once": 1}
    )
    engine.write("paced", PACED.format(sink=engine.hooks.url).replace("wait: 1s", "wait: 50s"))
    handle = await engine.client.trigger("paced", [f"c{i:02d}" for i in range(12)], cohorts=True)

    async def first_waiting() -> list[str]:
        found = []
        for rid in ("c00", "c01", "c02", "c03"):
            status = await engine.client.status(handle.trigger_id, recipient=rid)
            assert isinstance(status, RunStatus)
            found.append(status.current_step or "")
        return found

    await eventually(first_waiting, lambda steps: steps == ["wait_50s"] * 4)
    status = await engine.client.cancel(handle.trigger_id)
    assert isinstance(status, TriggerStatus)
    assert status.counts == {"cancelled": 4}
    assert [c.workflow_id for c in status.cohorts] == [f"paced/{handle.trigger_id}/cohort-1"]
    paths = {r.path for r in engine.hooks.requests}
    assert paths == {"/note"}
