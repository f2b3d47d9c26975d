"""Durations, windows, splits and graphs: the pure parts of the language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from definitions.compiler import Library
from definitions.durations import format_duration, parse_duration, to_timedelta
from definitions.graph import to_mermaid
from definitions.steps.split import SplitPath, SplitStep, choose_path
from definitions.steps.window import WindowStep, seconds_until_open
from tests.helpers import EXAMPLES


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("1h30m", 5400),
        ("0.5s", 0.5),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert to_timedelta(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "3 days", "1y", "0s", "-1h", "h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(5400) == "1h30m"
    assert format_duration(86400 * 8) == "1w1d"


WEEKDAYS_9_TO_5 = WindowStep("w", (0, 1, 2, 3, 4), 9 * 60, 17 * 60, "weekdays 09:00-17:00")


@pytest.mark.parametrize(
    ("now", "zone", "wait"),
    [
        (datetime(2026, 11, 23, 10, 0, tzinfo=UTC), "UTC", 0),  # Monday 10:00, open
        (datetime(2026, 11, 23, 8, 0, tzinfo=UTC), "UTC", 3600),  # Monday 08:00
        (datetime(2026, 11, 23, 18, 0, tzinfo=UTC), "UTC", 15 * 3600),  # to Tuesday 09:00
        (datetime(2026, 11, 28, 12, 0, tzinfo=UTC), "UTC", 45 * 3600),  # Saturday to Monday
        (datetime(2026, 11, 23, 10, 0, tzinfo=UTC), "Asia/Tokyo", 14 * 3600),  # 19:00 in Tokyo
        (datetime(2026, 11, 23, 10, 0, tzinfo=UTC), "Not/AZone", 0),  # unknown: UTC
        (datetime(2026, 11, 23, 10, 0, tzinfo=UTC), None, 0),
    ],
)
def test_window_opening(now: datetime, zone: str | None, wait: float) -> None:
    assert seconds_until_open(WEEKDAYS_9_TO_5, now, zone) == wait


def test_window_across_a_dst_change() -> None:
    daily_nine = WindowStep("w", tuple(range(7)), 9 * 60, 10 * 60, "every_day 09:00-10:00")
    # Saturday 2026-03-28 10:00 in Paris (UTC+1); clocks go forward on Sunday night.
    now = datetime(2026, 3, 28, 9, 0, tzinfo=UTC)
    # Next opening: Sunday 09:00 CEST = 07:00 UTC, 22 hours later.
    assert seconds_until_open(daily_nine, now, "Europe/Paris") == 22 * 3600


def test_split_paths_cover_the_range() -> None:
    step = SplitStep("s", (SplitPath("a", 25, None), SplitPath("b", 75, None)))
    assert choose_path(step, 0).name == "a"
    assert choose_path(step, 24.99).name == "a"
    assert choose_path(step, 25).name == "b"
    assert choose_path(step, 99.99).name == "b"


def test_graph_of_onboarding() -> None:
    text = to_mermaid(Library(EXAMPLES).compile("onboarding"))
    assert text.startswith("flowchart TD\n")
    assert '  s_plan_check{"plan_check: in segment pro_users?"}' in text
    assert "  s_plan_check -->|yes| s_pro_tips" in text
    assert "  s_plan_check -->|no| s_crm_note" in text
    assert "  s_pro_tips --> done" in text and "  s_crm_note --> done" in text


def test_plan_is_self_contained() -> None:
    plan = Library(EXAMPLES).compile("onboarding")
    assert set(plan.templates) == {"welcome", "pro_tips", "crm_note"}
    branch = plan.step("plan_check")
    assert branch.condition.condition.attribute == "plan"  # the segment is inlined
    assert plan.sequences["main"] == ["welcome", "wait_1d", "activation", "plan_check"]
