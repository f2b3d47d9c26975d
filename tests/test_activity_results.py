"""The activities with bare results answer as their typed counterparts do.

Runs started before the ``typed-activity-results`` patch keep calling ``evaluate_condition``,
``evaluate_conditions``, ``window_delays`` and ``close_runs``; new runs call the ``_v2``
names, which return dataclasses. Both must give the same answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from activities.journey import JourneyActivities
from definitions import contract as c
from definitions.conditions import AttributeCondition
from definitions.steps.window import WindowStep
from journeys.store import Store

PRO = AttributeCondition(attribute="plan", value="pro")
NINE_TO_FIVE = WindowStep("hours", (0, 1, 2, 3, 4, 5, 6), 9 * 60, 17 * 60, "every_day 09:00-17:00")
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


@pytest.fixture
async def activities(tmp_path: Path) -> AsyncIterator[JourneyActivities]:
    store = await Store.open(f"sqlite:///{tmp_path}/store.db")
    await store.profiles.upsert(
        [
            ("ana", {"plan": "pro", "timezone": "Europe/Paris"}),
            ("ben", {"plan": "free", "timezone": "America/New_York"}),
        ]
    )
    yield JourneyActivities(store, {})
    await store.close()


async def test_evaluate(activities: JourneyActivities) -> None:
    for rid, holds in [("ana", True), ("ben", False), ("nobody", False)]:
        request = c.EvaluateInput(PRO, rid)
        assert await activities.evaluate_condition_v2(request) == c.EvaluateResult(holds)
        assert await activities.evaluate_condition(request) is holds


async def test_evaluate_many(activities: JourneyActivities) -> None:
    request = c.EvaluateManyInput(PRO, ["ben", "ana", "nobody"])
    assert await activities.evaluate_conditions_v2(request) == c.EvaluateManyResult(["ana"])
    assert await activities.evaluate_conditions(request) == ["ana"]


async def test_window_delays(activities: JourneyActivities) -> None:
    request = c.WindowManyInput(NINE_TO_FIVE, ["ana", "ben"], NOW)
    # registered from activities.steps, each function named as its activity
    by_name = {f.__name__: f for f in activities.all()}
    assert {c.WINDOW_MANY, c.WINDOW_MANY_V2} <= set(by_name)
    typed = await by_name[c.WINDOW_MANY_V2](request)
    assert typed == c.WindowManyResult([2 * 3600.0, 8 * 3600.0])  # 09:00 Paris, 09:00 New York
    assert await by_name[c.WINDOW_MANY](request) == typed.seconds
    single = c.WindowInput(NINE_TO_FIVE, "ana", NOW)
    assert await activities.window_delay(single) == 2 * 3600.0  # runs before cohorts


async def test_close_runs(activities: JourneyActivities) -> None:
    def done(rid: str) -> c.RunProgress:
        return c.RunProgress("demo", rid, "completed")

    typed = c.CloseInput("demo/t1/cohort-1", [done("ana")], ["m_ana"])
    assert await activities.close_runs_v2(typed) == c.CloseResult(1)
    bare = c.CloseInput("demo/t1/cohort-1", [done("ben")], ["m_ben"])
    assert await activities.close_runs(bare) is None
