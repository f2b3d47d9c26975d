"""The benchmark's report: previous figures beside the new, targets, and by how much one is missed."""

from __future__ import annotations

from typing import Any

from benchmarks.profiling import summarize, top_packages
from benchmarks.report import Target, markdown, rows


def engine(count: int, workers: int, rate: float, over_limit: float, **extra: Any) -> dict:
    return {
        "recipients": count,
        "workers": workers,
        "seconds": count / rate,
        "trigger_seconds": 0.5,
        "recipients_per_second": rate,
        "history_events_per_recipient": 0.12,
        "worker_peak_rss_mb": 250.0,
        "engine_over_limit": over_limit,
        **extra,
    }


PREVIOUS = {
    "machine": {"cpus": 2, "python": "3.11.7", "when": "2026-11-22T23:42:46+00:00"},
    "limit_10000": {"recipients": 10000, "seconds": 50.0, "recipients_per_second": 200.0},
    # The old file named a two-worker run like a one-worker one: matched by its fields.
    "engine_10000": engine(10000, 2, 125.0, 0.5),
    "track": {"single_events_per_second": 137.0, "batch_events_per_second": 266.0},
}

RESULTS = {
    "machine": {"cpus": 2, "python": "3.11.7", "when": "2026-12-07T20:00:00+00:00"},
    "limit_10000": {
        "recipients": 10000,
        "seconds": 25.0,
        "recipients_per_second": 400.0,
        "client_cpu_ms_per_recipient": 2.5,
        "peers_cpu_ms_per_recipient": 0.4,
    },
    "raw_10000": {"recipients": 10000, "seconds": 20.0, "recipients_per_second": 500.0},
    "engine_10000": engine(10000, 1, 340.0, 0.85),
    "engine_10000_w2": engine(
        10000, 2, 300.0, 0.75, profile_top=["40.0 % sqlalchemy", "20.0 % temporalio"]
    ),
    "engine_100000": engine(
        100000,
        1,
        300.0,
        0.7,
        worker_peak_rss_mb=500.0,
        accounted=1.0,
        recipients_accounted=99_998,
        duplicate_message_keys=2,
        messages_to_strangers=0,
        problems={"webhook accepted twice": 2},
    ),
    "track_sqlite": {
        "single_events_per_second": 1200.0,
        "batch_events_per_second": 4000.0,
        "batch_size": 100,
        "profile_top": ["40.0 % sqlalchemy"],
    },
    "segments_postgresql": {"status": "skipped: no server"},
}


def cells(benchmark: str) -> list[str]:
    table = {r.cells()[0]: r.cells() for r in rows(RESULTS, PREVIOUS)}
    return table[benchmark]


def test_targets_say_whether_they_are_met_and_by_how_much_not() -> None:
    assert Target(">=", 0.8).met(0.8) and not Target(">=", 0.8).met(0.79)
    assert Target(">=", 0.8).shortfall(0.6) == "missed by 25 %"
    assert Target("<=", 400).shortfall(500) == "over by 25 %"
    assert str(Target(">=", 5000)) == "≥ 5,000"


def test_rows_put_the_previous_figure_and_the_target_beside_the_new_one() -> None:
    assert cells("limit: channel code, no Temporal, 10,000 recipients")[2:4] == [
        "200 rec/s",
        "400 rec/s",
    ]
    limit_notes = cells("limit: channel code, no Temporal, 10,000 recipients")[4]
    assert "limit/raw 0.80" in limit_notes
    assert "CPU per recipient: sender 2.50 ms, peers 0.40 ms" in limit_notes
    assert cells("raw: aiosmtplib + httpx, no channel code, 10,000 recipients")[2] == "–"
    one = cells("engine/limit, 10,000 recipients, 1 worker")
    assert one[1:4] == ["≥ 0.8", "–", "0.85"] and one[4] == "met"
    two = cells("engine/limit, 10,000 recipients, 2 workers")
    assert two[1:4] == ["≥ 0.9", "0.50", "0.75"]
    assert two[4].startswith("**missed by 17 %**")
    assert "bound (worker profile): 40.0 % sqlalchemy, 20.0 % temporalio" in two[4]


def test_the_largest_run_is_held_to_memory_and_history_targets() -> None:
    rss = cells("worker peak RSS, 100,000 recipients, 1 worker")
    assert rss[1] == "≤ 400" and rss[3] == "500 MB" and rss[4].startswith("**over by 25 %**")
    history = cells("history events per recipient, 100,000 recipients, 1 worker")
    assert history[4] == "met"
    notes = cells("engine (cohorts), 100,000 recipients, 1 worker")[4]
    assert "accounted for 99,998 of 100,000" in notes
    assert "**2 messages accepted twice**" in notes
    assert "unknown recipients" not in notes


def test_track_rows_compare_with_the_old_sqlite_figure() -> None:
    single = cells("track, one event per request, SQLite")
    assert single[1:5] == ["≥ 1,000", "137 ev/s", "1200 ev/s", "met"]
    batch = cells("track, batches of 100, SQLite")
    assert batch[4] == "**missed by 20 %**; bound (server profile): 40.0 % sqlalchemy"
    # A target met names no bound.
    assert "bound" not in cells("track, one event per request, SQLite")[4]


def test_the_markdown_table_has_a_row_per_figure_and_says_what_was_skipped() -> None:
    text = markdown(RESULTS, PREVIOUS)
    assert "| benchmark | target | previous | now | notes |" in text
    assert "previous: 2026-11-22 23:42 UTC" in text
    assert "| segments_postgresql |  | – | – | skipped: no server |" in text
    assert markdown(RESULTS).count("\n| ") == len(rows(RESULTS)) + 1


def test_a_profile_names_the_packages_and_functions_time_went_to() -> None:
    raw = (
        "thread (1);run (asyncio/base_events.py);execute (sqlalchemy/engine/base.py) 6\n"
        "thread (1);run (asyncio/base_events.py);send (aiosmtplib/smtp.py) 2\n"
        "thread (2);render (/x/site-packages/liquid/template.py) 2\n"
    )
    text = summarize(raw, "a worker")
    assert "10 samples" in text
    assert top_packages(text, 2) == ["60.0 % sqlalchemy", "20.0 % aiosmtplib"]
    assert "100.0 %  run (asyncio/base_events.py)" not in text  # 80 %: thread 2 is elsewhere
    assert " 80.0 %  run (asyncio/base_events.py)" in text
